"""What every format shows, in order: the sections of a hand-worked solution, as rows.

Each renderer (text, markdown, LaTeX, HTML) walks ``sections(explanation)`` and writes the rows
its own way, so the formats cannot disagree about what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule.autodiff import no_grad
from chainrule.explain.model import Explanation, GradientArray, GraphNode, Quantity
from chainrule.explain.numbers import fmt, fmt_factor
from chainrule.explain.tex import tex_mono
from chainrule.tensor import Tensor


@dataclass
class Row:
    """``name = symbolic = numeric = value``, each part optional except name and value."""

    name: str
    latex: str
    symbolic: str
    symbolic_latex: str
    numeric: str
    value: str
    kind: str
    numeric_latex: str = ""  # where the numbers need more than the text's notation
    alias: str = ""  # the exercise's own name for it (the network file's [aliases]): out_h1

    @property
    def label(self) -> str:
        """The name, and the alias beside it: ``y_{1-1} (out_h1)``."""
        return f"{self.name} ({self.alias})" if self.alias else self.name

    @property
    def label_latex(self) -> str:
        r"""The LaTeX name, the alias beside it in typewriter type: ``y_{1-1}\ (\mathtt{out\_h1})``."""
        return with_alias_latex(self.latex, self.alias)


def with_alias_latex(latex: str, alias: str) -> str:
    r"""A name's LaTeX with an alias beside it in typewriter type: ``y_{1-1}\ (\mathtt{out\_h1})``."""
    if not alias:
        return latex
    parts = re.split(r"(\^\{[^{}]*\})", alias)  # superscripts stay superscripts: w5^{new}
    tex = "".join(
        "^{" + tex_mono(p[2:-1]) + "}" if k % 2 else (tex_mono(p) if p else "") for k, p in enumerate(parts)
    )
    return rf"{latex}\ ({tex})"


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row]


def _symbolic(q: Quantity, e: Explanation) -> tuple[str, str]:
    if q.terms:
        text = " + ".join(" * ".join(t) for t in q.terms)
        latex = " + ".join(r" \cdot ".join(e[n].latex if n in e else n for n in t) for t in q.terms)
        return text, latex
    if q.equals:
        return q.equals, e[q.equals].latex if q.equals in e else q.equals
    return q.formula, q.formula_latex or ""


def is_given(q: Quantity, e: Explanation) -> bool:
    """Given numbers (inputs, weights) and local derivatives equal to one are shown as written."""
    return q.is_given or bool(q.equals and q.equals in e and e[q.equals].is_given)


def show(name: str, e: Explanation, digits: int) -> str:
    q = e[name]
    return fmt(q.value, digits, is_given(q, e))


def show_factor(name: str, e: Explanation, digits: int) -> str:
    q = e[name]
    return fmt_factor(q.value, digits, is_given(q, e))


def _numeric(q: Quantity, e: Explanation, digits: int) -> str:
    if q.terms:
        if q.kind == "forward":  # the solution's (0.02)(0.36) + ... + 0.7
            parts = []
            for t in q.terms:
                parts.append(
                    "".join(f"({show(n, e, digits)})" for n in t)
                    if len(t) > 1
                    else show_factor(t[0], e, digits)
                )
            return " + ".join(parts)
        return " + ".join(" x ".join(show_factor(n, e, digits) for n in t) for t in q.terms)
    if q.kind == "forward" and q.formula and q.uses and "(" in q.formula:
        # sigmoid(z) -> sigmoid(1.3062); softmax(z_1, z_2)_1 -> softmax(0.428, 0.157)_1
        head, _, rest = q.formula.partition("(")
        inner, _, tail = rest.rpartition(")")
        args = inner.split(", ")
        if all(a in e for a in args):
            return f"{head}({', '.join(show(a, e, digits) for a in args)}){tail}"
    if q.kind == "update" and q.uses:
        old, grad_name = q.uses
        eta = q.formula.split(" - ")[1].split(" * ")[0]
        return f"{show(old, e, digits)} - {eta} x {show_factor(grad_name, e, digits)}"
    return ""


def _sum_of_products(terms: tuple[tuple[str, ...], ...], lookup: Callable[[str], float]) -> float:
    """A chain-rule sum of products of looked-up factors, multiplied by the engine."""
    with no_grad():
        total = Tensor(0.0)
        for term in terms:
            product = Tensor(1.0)
            for name in term:
                product = product * lookup(name)
            total = total + product
    return float(total.data)


def factor_digits(q: Quantity, e: Explanation, digits: int) -> int:
    """The significant digits the numbers of ``q``'s row need so that the row's result, shown
    to ``digits``, follows from them: ``0.001422 x 0.02 = 2.843e-05``, not ``0.0014 x 0.02``.

    A student multiplies what is on the screen. Starting at ``digits``, the factors get one
    more digit until the row, recomputed from the factors as shown (through the engine's own
    primitives: the quantity's ``recompute``, or its sum of products), rounds to the result
    shown; ``digits`` itself where it already does or nothing can be recomputed."""
    if q.terms:
        evaluate = lambda lookup: _sum_of_products(q.terms, lookup)  # noqa: E731
    elif q.closed_form is not None:  # the row shows the closed form's numbers
        evaluate = q.closed_form.evaluate
    else:
        evaluate = q.recompute
    if evaluate is None or q.is_given:
        return digits
    shown_value = fmt(q.value, digits, is_given(q, e))
    for d in range(max(digits, 1), 18):

        def lookup(name: str, d: int = d) -> float:
            return float(fmt(e[name].value, d, is_given(e[name], e)))

        try:
            if fmt(evaluate(lookup), digits, is_given(q, e)) == shown_value:
                return d
        except (KeyError, ValueError, TypeError, ArithmeticError):
            return digits
    return digits


def row(q: Quantity, e: Explanation, digits: int) -> Row:
    sym, sym_latex = _symbolic(q, e)
    value = fmt(q.value, digits, is_given(q, e))
    digits = factor_digits(q, e, digits)
    num, num_latex = _numeric(q, e, digits), ""
    if q.closed_form is not None:  # sigmoid'(z) = yhat * (1 - yhat) = 0.7137 * (1 - 0.7137)
        cf = q.closed_form
        sym = " = ".join(p for p in (sym, cf.with_names()) if p)
        cf_latex = cf.with_latex(lambda n: e[n].latex if n in e else n)
        sym_latex = " = ".join(p for p in (sym_latex, cf_latex) if p)
        num = cf.with_numbers(lambda n: show_factor(n, e, digits))
        num_latex = cf.with_latex(lambda n: show_factor(n, e, digits))
    if num == value:
        num = ""
    return Row(q.name, q.latex, sym, sym_latex, num, value, q.kind, num_latex, e.alias_of(q.name))


SECTION_TITLES = {
    "given": "Given",
    "forward": "Step 1: forward pass",
    "local": "Step 2: backward pass, local partial derivatives",
    "chain": "Step 2: backward pass, the chain rule",
    "update": "Gradient-descent update",
}


def sections(e: Explanation, digits: int) -> list[Section]:
    """The sections of an MLP explanation (empty for a generic graph)."""
    if not e.quantities:
        return []
    groups = [
        ("given", ("input", "target", "parameter")),
        ("forward", ("forward", "loss")),
        ("local", ("local",)),
        ("chain", ("chain",)),
        ("update", ("update",)),
    ]
    out = []
    for key, kinds in groups:
        rows = [row(q, e, digits) for q in e.quantities if q.kind in kinds]
        if rows:
            title = SECTION_TITLES[key]
            if key == "update" and e.lr is not None:
                title += f" (learning rate eta = {np.format_float_positional(e.lr, trim='-')})"
            out.append(Section(key, title, rows))
    return out


def layout_note(a: GradientArray) -> str:
    """A weight matrix's layout in words, naming what its rows or columns come from: the
    inputs x_i for the first layer, the hidden outputs y_{i-1} of layer 1 for layer 2."""
    inputs = a.inputs or "unit i of the layer below"
    if a.layout == "in-out":
        return f"in-out: row i = from {inputs}, column j = to unit j"
    return f"out-in: row j = into unit j, column i = from {inputs}"


def array_title(a: GradientArray) -> str:
    """An array's name, with its layout where it is a weight matrix: a user comparing numbers
    with a network file (PyTorch's out-in rows by default) sees which way round it is."""
    return f"{a.name} ({layout_note(a)})" if a.layout else a.name


def array_text(values: np.ndarray, digits: int) -> list[list[str]]:
    return [[fmt(v, digits) for v in r] for r in np.atleast_2d(values)]


def tensor_text(values: np.ndarray | None, digits: int, limit: int = 12) -> str:
    """A small array written with ``fmt``; a large one by its shape."""
    if values is None:
        return "-"
    a = np.asarray(values)
    if a.ndim == 0:
        return fmt(float(a), digits)
    if a.size > limit:
        return f"array{tuple(a.shape)}"

    def walk(x: np.ndarray) -> str:
        if x.ndim == 1:
            return "[" + ", ".join(fmt(v, digits) for v in x) + "]"
        return "[" + ", ".join(walk(r) for r in x) + "]"

    return walk(a)


def node_rows(e: Explanation, digits: int) -> list[tuple[GraphNode, str, str]]:
    """(node, value text, gradient text) for every graph node."""
    return [(n, tensor_text(n.value, digits), tensor_text(n.gradient, digits)) for n in e.nodes]


def local_rows(e: Explanation, digits: int) -> list[tuple[str, str, str]]:
    """(node, parent, Jacobian text) for every local derivative of the graph view."""
    out = []
    for n in e.nodes:
        for parent, jac in n.local.items():
            if jac is None:
                text = "(too large to list; applied by the VJP)"
            else:
                shaped = jac.reshape(()) if jac.size == 1 else (jac.ravel() if 1 in jac.shape else jac)
                text = tensor_text(shaped, digits, limit=36)
            out.append((n.name, parent, text))
    return out
