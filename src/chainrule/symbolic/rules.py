"""The differentiation rules, one small function each, over SymPy expressions.

A rule takes ``d/dx e`` (``e`` and ``x``; ``x`` a symbol or an ``Indexed`` element such as
``z[i, j]``) and returns ``e``'s derivative written one level down: the derivatives of the parts
stay unevaluated (``sp.Derivative(..., evaluate=False)``) for the next step to take apart. So a
derivation is a sequence of whole expressions, each one rule away from the one before, which is
how a textbook (and the reference solution) writes it. ``RULES`` lists them in the order tried;
the first that applies wins. SymPy does no differentiation here: the rules are ours, and the
judge in ``verify.py`` checks each result with SymPy's own ``diff``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.simplify.simplify import factor_sum

from chainrule.symbolic.render import text


class Applied(NamedTuple):
    rule: str  # the rule's name as a textbook says it: "quotient", "chain", ...
    result: sp.Basic  # what d/dx e became
    note: str = ""  # the fact used, when it is worth saying (d/du e^u = e^u)


def D(e: sp.Basic, x: sp.Basic) -> sp.Basic:
    """``d/dx e``, left unevaluated (0 when ``e`` cannot depend on ``x``)."""
    if not depends(e, x):
        return sp.Integer(0)
    if e == x:
        return sp.Integer(1)
    return sp.Derivative(e, x, evaluate=False)


def depends(e: sp.Basic, x: sp.Basic) -> bool:
    """Whether ``e`` may depend on ``x``; ``z[u, v]`` may depend on ``z[i, j]`` (u = i, v = j)."""
    if isinstance(x, sp.Indexed):
        return any(ix.base == x.base for ix in e.atoms(sp.Indexed))
    return e.has(x)


def terminal(node: sp.Derivative) -> bool:
    """``∂f(w)/∂w`` of an unknown function: the end of the road, as in the reference."""
    return isinstance(node.expr, AppliedUndef)


# --- the rules ----------------------------------------------------------------------------

def constant(e, x):
    if not depends(e, x):
        return Applied("constant", sp.Integer(0))


def identity(e, x):
    if e == x:
        return Applied("identity", sp.Integer(1), f"d{x}/d{x} = 1")


def kronecker(e, x):
    """∂z_uv/∂z_ij = δ_ui δ_vj: 1 when every index agrees, 0 otherwise."""
    if isinstance(e, sp.Indexed) and isinstance(x, sp.Indexed) and e.base == x.base:
        deltas = sp.Mul(*(sp.KroneckerDelta(a, b) for a, b in zip(e.indices, x.indices, strict=True)))
        cases = " and ".join(f"{a} = {b}" for a, b in zip(e.indices, x.indices, strict=True)
                             if a != b)
        return Applied("Kronecker delta", deltas, f"1 when {cases}, else 0" if cases else "")


def sum_rule(e, x):
    if isinstance(e, sp.Add):
        return Applied("sum", sp.Add(*(D(t, x) for t in e.args)))


def constant_factor(e, x):
    if isinstance(e, sp.Mul):
        const, rest = e.as_independent(x, as_Add=False) if not isinstance(x, sp.Indexed) else \
            _split_indexed(e, x)
        if const != 1 and rest != 1:
            return Applied("constant factor", const * D(rest, x))


def _split_indexed(e: sp.Mul, x: sp.Indexed) -> tuple[sp.Basic, sp.Basic]:
    const = [f for f in e.args if not depends(f, x)]
    rest = [f for f in e.args if depends(f, x)]
    return sp.Mul(*const), sp.Mul(*rest)


def quotient(e, x):
    """(u/v)' = (v u' − u v')/v², when both the numerator and the denominator depend on x."""
    if isinstance(e, sp.Mul):
        num, den = sp.fraction(e, exact=True)
        if den != 1 and depends(num, x) and depends(den, x):
            return Applied("quotient", (den * D(num, x) - num * D(den, x)) / den ** 2,
                           "(u/v)′ = (v·u′ − u·v′)/v²")


def product(e, x):
    if isinstance(e, sp.Mul):
        factors = [f for f in e.args if depends(f, x)]
        if len(factors) >= 2:
            terms = [_without(e, f) * D(f, x) for f in factors]
            return Applied("product", sp.Add(*terms), "(uv)′ = u′v + uv′")


def _without(e: sp.Mul, f: sp.Basic) -> sp.Basic:
    args = list(e.args)
    args.remove(f)
    return sp.Mul(*args)


def power(e, x):
    if isinstance(e, sp.Pow):
        base, p = e.args
        if not depends(p, x):
            if base == x:
                return Applied("power", p * base ** (p - 1), "d/dx xⁿ = n·xⁿ⁻¹")
            return Applied("chain (power)", p * base ** (p - 1) * D(base, x), "d/du uⁿ = n·uⁿ⁻¹")
        if not depends(base, x):
            return Applied("chain (exponential)", e * sp.log(base) * D(p, x), "d/du aᵘ = aᵘ·log a")
        return Applied("exp/log", D(sp.exp(p * sp.log(base)), x), "uᵛ = e^(v·log u)")


def exp_rule(e, x):
    if isinstance(e, sp.exp):
        u = e.args[0]
        if u == x:
            return Applied("exp", e, "d/dx eˣ = eˣ")
        return Applied("chain (exp)", e * D(u, x), "d/du eᵘ = eᵘ")


def log_rule(e, x):
    if isinstance(e, sp.log):
        u = e.args[0]
        if u == x:
            return Applied("log", 1 / x, "d/dx log x = 1/x")
        return Applied("chain (log)", D(u, x) / u, "d/du log u = 1/u")


def cases(e, x):
    """Differentiate each case; at a boundary the code takes the case that holds there."""
    if isinstance(e, sp.Piecewise):
        pieces = [(D(expr, x), cond) for expr, cond in e.args]
        return Applied("piecewise by cases", sp.Piecewise(*pieces, evaluate=False),
                       "each case differentiated where it holds")


def max_min(e, x):
    if isinstance(e, (sp.Max, sp.Min)) and len(e.args) == 2:
        a, b = e.args
        if a.is_number:  # max(0, u): the case u first, as a student writes it
            a, b = b, a
        keep = (a > b) if isinstance(e, sp.Max) else (a < b)
        return Applied("piecewise by cases", D(sp.Piecewise((a, keep), (b, True), evaluate=False), x),
                       f"{'max' if isinstance(e, sp.Max) else 'min'}(a, b) written as cases")


def absolute(e, x):
    if isinstance(e, sp.Abs):
        u = e.args[0]
        return Applied("chain (absolute value)" if u != x else "absolute value",
                       sp.sign(u) * D(u, x), "d/du |u| = sign(u) = |u|/u for u ≠ 0")


def index_sum(e, x):
    if isinstance(e, sp.Sum):
        return Applied("sum over an index", sp.Sum(D(e.function, x), *e.limits),
                       "the derivative of a sum is the sum of the derivatives")


def function(e, x):
    """Any other function of one argument (tanh, erf, a named activation): chain rule."""
    if isinstance(e, sp.Function) and len(e.args) == 1 and not isinstance(e, AppliedUndef):
        u = e.args[0]
        outer = e.fdiff(1)
        name = type(e).__name__
        if u == x:
            return Applied(f"derivative of {name}", outer, f"d/dx {name}(x) = {text(outer)}")
        v = sp.Symbol("u", real=True)  # f′ at a name of its own: d/du erf(u) = 2e^(−u²)/√π
        # the rule's note in the printed notation: d/du erf(u) = 2·e^(−u^2)/√π
        return Applied(f"chain ({name})", outer * D(u, x), f"d/du {name}(u) = {text(type(e)(v).diff(v))}")


RULES: tuple[Callable[[sp.Basic, sp.Basic], Applied | None], ...] = (
    constant, identity, kronecker, sum_rule, constant_factor, quotient, product, power,
    exp_rule, log_rule, cases, max_min, absolute, index_sum, function,
)


def apply(node: sp.Derivative) -> Applied | None:
    """The first rule that takes ``node`` apart, or None (SymPy's ``doit`` then finishes it)."""
    e, x = node.expr, node.variables[0]
    for rule in RULES:
        got = rule(e, x)
        if got is not None:
            return got
    return None


# --- after differentiating: sums of Kronecker deltas collapse ---------------------------------

def collapse(s: sp.Sum) -> Applied | None:
    """Σ_k g(k)·δ_ki = g(i) (i within the sum's range); terms without k give n·term."""
    if not isinstance(s, sp.Sum) or len(s.limits) != 1:
        return None
    k, lo, hi = s.limits[0]
    if not any(k in d.free_symbols for d in s.function.atoms(sp.KroneckerDelta)):
        return None
    body = sp.expand(s.function, power_base=False, power_exp=False, log=False, multinomial=False)
    out = []
    for term in sp.Add.make_args(body):
        # Σ_v δ_iu·g(v) = δ_iu·Σ_v g(v): bring factors out of inner sums so the delta is a factor
        term = term.replace(lambda e: isinstance(e, sp.Sum), lambda e: factor_sum(e))
        delta = next((d for d in sp.Mul.make_args(term)
                      if isinstance(d, sp.KroneckerDelta) and k in d.free_symbols), None)
        if delta is not None:
            other = (set(delta.args) - {k}).pop() if len(set(delta.args)) == 2 else k
            out.append((term / delta).xreplace({k: other}))
        elif k not in term.free_symbols:
            out.append((hi - lo + 1) * term)
        else:
            out.append(sp.Sum(term, (k, lo, hi)))
    result = sp.Add(*out)
    if result == s:
        return None
    return Applied("Kronecker delta", result,
                   f"Σ_{k} g({k})·δ picks the one term where the indices agree")
