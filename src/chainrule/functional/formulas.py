"""The formula registry: each activation's and loss's mathematics, written once.

A ``Formula`` holds what a reader needs to see beside the code: the definition, the
derivative, and the chain-rule form d/dw name(f(w)) as the reference solution writes them, in
LaTeX and in plain text for a terminal, plus the same definition and derivative in SymPy syntax
so the tests (and curious users with SymPy installed) can differentiate the definition and
confirm the stated derivative. ``define`` registers a function's primitive (forward + VJPs)
and its formula together, so the two can only live in one place.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chainrule.ops import Primitive, primitive


@dataclass(frozen=True)
class Formula:
    """An activation's or loss's definition, derivative and chain rule.

    ``sympy`` is ``(definition, derivative)`` in SymPy syntax. Elementwise functions use the
    scalar symbol ``wrt`` (``x``, or ``p`` for a prediction, with target ``y``); vector
    functions use ``IndexedBase`` symbols (``x[i]``, summed with ``Sum(..., (k, 1, n))``) and
    the derivative is with respect to component ``wrt`` (e.g. ``z[i]``). The derivative may use
    ``f`` for the function's own value, as the reference writes sigma'(x) = sigma(x)(1 - sigma(x)).
    ``symbols`` names the SymPy symbols and their assumptions (``"x": "real"``).

    ``local`` (elementwise functions) is the derivative of one output element with respect to
    its own input element, as the explainer writes it with a network's names and numbers
    (dyhat/dz = yhat * (1 - yhat) = 0.7137 * (1 - 0.7137)): a ``string.Template`` in Python
    syntax over ``$x`` (the input; a loss's prediction), ``$f`` (the function's value), ``$y``
    (a loss's target) and the primitive's keyword parameters (``$delta``), so that the tests
    can evaluate it against the VJP. ``local_latex`` is the same in LaTeX. For a loss it is the
    derivative of the 'sum' reduction; 'mean' divides it by the number of elements.
    """

    name: str
    title: str
    definition: str
    derivative: str
    chain_rule: str
    definition_text: str
    derivative_text: str
    chain_rule_text: str
    sympy: tuple[str, str] | None = None
    wrt: str = "x"
    symbols: dict[str, str] = field(default_factory=dict)
    note: str = ""
    local: str | None = None
    local_latex: str | None = None

    def latex(self) -> str:
        """The definition, derivative and chain rule in LaTeX, one equation per line."""
        return "\n".join((self.definition, self.derivative, self.chain_rule))

    def text(self) -> str:
        """The three lines in plain unicode for a terminal."""
        return "\n".join((self.definition_text, self.derivative_text, self.chain_rule_text))

    def symbolic(self) -> tuple[Any, Any, dict[str, Any]]:
        """``(definition, derivative, symbols)`` as SymPy objects (needs the ``symbolic`` extra).

        ``f`` in the derivative is replaced by the definition. Differentiate the definition
        with respect to ``symbols_wrt = sympify(formula.wrt, locals=symbols)`` to check it.
        """
        try:
            import sympy as sp
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("Formula.symbolic() needs SymPy: pip install 'chainrule[symbolic]'") from None
        if self.sympy is None:
            raise ValueError(f"formula {self.name!r} has no SymPy form")
        text = " ".join((*self.sympy, self.wrt))
        names = set(re.findall(r"[A-Za-z_]\w*", text)) - set(dir(sp)) - {"True", "False"}
        names |= set(self.symbols)
        indexed = set(re.findall(r"([A-Za-z_]\w*)\[", text))
        ns: dict[str, Any] = {}
        for name in names:
            if name in indexed:
                ns[name] = sp.IndexedBase(name, real=True)
            elif name in ("i", "j", "k", "c"):  # component and summation indices
                ns[name] = sp.Symbol(name, integer=True, positive=True)
            elif name == "n":
                ns[name] = sp.Symbol(name, integer=True, positive=True)
            else:
                assumption = self.symbols.get(name, "real")
                ns[name] = sp.Symbol(name, **{assumption: True})
        definition = sp.sympify(self.sympy[0], locals=ns)
        derivative = sp.sympify(self.sympy[1], locals=ns)
        if "f" in ns:
            derivative = derivative.subs(ns["f"], definition)
        return definition, derivative, ns


FORMULAS: dict[str, Formula] = {}


def define(formula: Formula, forward: Callable[..., Any], *vjps: Callable[..., Any] | None,
           latex: str, fwd: Callable[..., tuple[Any, Any]] | None = None) -> Primitive:
    """Register ``formula`` and the primitive computing it under the same name (``fwd``: see
    ``ops.Primitive``, a forward that also keeps a residual for the VJPs)."""
    if formula.name in FORMULAS:
        raise ValueError(f"formula {formula.name!r} is already registered")
    prim = primitive(formula.name, forward, *vjps, latex=latex, fwd=fwd)
    FORMULAS[formula.name] = formula
    return prim


def formula(name: str) -> Formula:
    """The ``Formula`` of an activation or loss, by its function name (e.g. ``"sigmoid"``)."""
    from chainrule.functional import _canonical  # aliases live with the public registries

    key = _canonical(name)
    if key not in FORMULAS:
        raise ValueError(f"no formula named {name!r}; known: {', '.join(sorted(FORMULAS))}")
    return FORMULAS[key]
