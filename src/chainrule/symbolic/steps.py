"""The derivation record (``Step``, ``Derivation``) and the loop that writes one.

``run(expr, wrt)`` starts from ``d/dwrt expr`` and applies one rule (``rules.py``) at a time
to the first derivative still unevaluated, so every step is a whole expression one rule away
from the one before; then sums of Kronecker deltas collapse and the result is simplified.
Each step is checked against the step before it by ``verify.verify`` (SymPy's own ``diff`` and
``simplify``, or random points), and carries the outcome: a step is never shown as verified
unless the judge said so.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from chainrule.symbolic import rules
from chainrule.symbolic.verify import Verification, verify

MAX_STEPS = 80  # a guard against a rule that would loop; no registered function comes near it


@dataclass
class Step:
    """One line of a derivation: ``= expr`` by ``rule``, and how the equality was verified.

    ``assumption`` names what the step needs beyond algebra (a one-hot target row), ``given``
    writes it as an equation (Σ_v y_iv = 1), and ``constraints`` says the same to the judge
    (``verify.verify``).
    """

    rule: str
    expr: sp.Basic
    check: Verification
    note: str = ""
    assumption: str = ""
    constraints: tuple[str, ...] = ()
    given: sp.Basic | None = None


@dataclass
class Part:
    """A derivation of one equality chain ``lhs = steps[0].expr = steps[1].expr = ...``."""

    title: str
    lhs: sp.Basic
    start: sp.Basic  # what the first step rewrites: d/dx of the definition
    steps: list[Step]

    @property
    def result(self) -> sp.Basic:
        return self.steps[-1].expr if self.steps else self.start


@dataclass
class Derivation:
    """What ``chainrule.derive`` returns and ``chainrule derive --steps`` prints.

    ``parts`` are the derivative of the function itself, then (for a vector function) its
    cases, then the chain-rule form ∂/∂w of the function of f(w). ``display`` maps SymPy
    symbols to their names in the text and in LaTeX (``p`` is written ŷ); ``defs`` maps the
    placeholders the final forms use (σ, |y|, ŷ_ij) to their definitions, for the judge;
    ``where`` writes the ones a reader needs as equations (``s_j = e^(x_j)/Σ_k e^(x_k)``,
    ``|y| = √(Σ_k y_k²)``, θ the unit step), printed under the definition so that the document
    says what every name means (and ``chainrule check`` reads it back).
    """

    name: str
    title: str
    definition: tuple[sp.Basic, sp.Basic]  # (lhs, rhs): σ(x) = 1/(1 + e^(−x))
    parts: list[Part]
    wrt: sp.Basic
    display: dict[str, tuple[str, str]] = field(default_factory=dict)
    defs: dict[Any, Any] = field(default_factory=dict)
    note: str = ""
    where: list[tuple[sp.Basic, sp.Basic]] = field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return [s for p in self.parts for s in p.steps]

    @property
    def result(self) -> sp.Basic:
        """The derivative in the function's own terms (the first part's last line)."""
        return self.parts[0].result

    @property
    def verified(self) -> bool:
        return all(s.check.ok for s in self.steps)

    def render(self, fmt: str = "text") -> str:
        """The derivation as ``text``, ``markdown``, ``latex``, ``json`` or ``html``."""
        from chainrule.symbolic.render import render

        return render(self, fmt)

    def __str__(self) -> str:
        return self.render("text")


def _open(expr: sp.Basic) -> list[sp.Derivative]:
    """The outermost derivatives still to take apart (one rule each makes the next step)."""
    found: list[sp.Derivative] = []

    def walk(node: sp.Basic) -> None:
        if isinstance(node, sp.Derivative) and not rules.terminal(node):
            found.append(node)
            return
        for arg in node.args:
            walk(arg)

    walk(expr)
    return list(dict.fromkeys(found))


def _first_collapsible(expr: sp.Basic) -> sp.Sum | None:
    # innermost first: postorder, so Σ_u Σ_v collapses v before u
    for node in sp.postorder_traversal(expr):
        if isinstance(node, sp.Sum) and rules.collapse(node) is not None:
            return node
    return None


def run(expr: sp.Basic, wrt: sp.Basic, defs: Mapping[Any, Any] | None = None,
        simplify: bool = True) -> tuple[sp.Basic, list[Step]]:
    """``(d/dwrt expr unevaluated, the steps to its derivative)``."""
    start = rules.D(expr, wrt)
    steps: list[Step] = []
    current = start
    for _ in range(MAX_STEPS):
        nodes = _open(current)
        if not nodes:
            break
        # every derivative at the same depth takes its rule in the same step, as on paper
        done, names, notes = {}, [], []
        for node in nodes:
            applied = rules.apply(node)
            if applied is None:  # no rule of ours: SymPy differentiates it, and the step says so
                applied = rules.Applied("SymPy", node.doit())
            done[node] = applied.result
            if applied.rule not in names:
                names.append(applied.rule)
                if applied.note:
                    notes.append(applied.note)
        merged = rules.Applied(", ".join(names), current.xreplace(done), "; ".join(notes))
        current = _add(steps, current, merged.result, merged, defs)
    for _ in range(MAX_STEPS):
        node = _first_collapsible(current)
        if node is None:
            break
        applied = rules.collapse(node)
        current = _add(steps, current, current.xreplace({node: applied.result}), applied, defs)
    if simplify:
        nicer = _simplest(current)
        if nicer is not None:
            current = _add(steps, current, nicer, rules.Applied("simplify", nicer), defs)
    return start, steps


def _add(steps: list[Step], before: sp.Basic, after: sp.Basic, applied: rules.Applied,
         defs: Mapping[Any, Any] | None) -> sp.Basic:
    steps.append(Step(applied.rule, after, verify(before, after, defs), applied.note))
    return after


def _simplest(expr: sp.Basic) -> sp.Basic | None:
    """The shortest of SymPy's simplifications, when it is shorter than ``expr``."""
    if expr.atoms(sp.Sum) or sp.count_ops(expr) > 300:
        candidates = [sp.together(expr), sp.expand(expr, power_base=False, power_exp=False, log=False)]
    else:
        candidates = [sp.simplify(expr), sp.factor(expr), sp.cancel(expr), sp.together(expr)]
    # no new functions: e^(-x)/(1 + e^(-x))^2 must not become 1/(4 cosh^2(x/2))
    kinds = {type(f) for f in expr.atoms(sp.Function)}
    candidates = [c for c in candidates if {type(f) for f in c.atoms(sp.Function)} <= kinds]
    if not candidates:
        return None
    best = min(candidates, key=lambda e: (sp.count_ops(e), len(str(e))))
    if best != expr and sp.count_ops(best) < sp.count_ops(expr):
        return best
    return None


def then(steps: list[Step], expr: sp.Basic, rule: str, note: str = "", defs: Mapping[Any, Any] | None = None,
         before: sp.Basic | None = None, assumption: str = "", constraints: Iterable[str] = (),
         given: sp.Basic | None = None) -> Step:
    """Append one more step (written by hand, e.g. "in σ's own terms") and verify it."""
    prev = before if before is not None else steps[-1].expr
    constraints = tuple(constraints)
    step = Step(rule, expr, verify(prev, expr, defs, constraints=constraints), note,
                assumption, constraints, given)
    steps.append(step)
    return step
