"""Is ``a = b``? SymPy proves it, or it is checked at random points, and the answer says which.

One judge for both sides of the package: the derivations chainrule writes (``steps.py``) and
the derivations a student writes (``derivation_check.py``). Nothing here knows which rule made
an expression; the judge only evaluates both sides with SymPy's own ``diff`` and ``Sum``.

Numeric checks instantiate everything an expression leaves open:

* sizes (the upper limit ``n`` of a ``Sum``) run through 1..5, so sums are expanded for real;
  the number of samples m is another number than n, C (classes, lengths) at each point
  (``sizes_equal``: one number for all, to tell a step that holds only if m = n);
* free indices (``i`` in ``z[i]``) take values inside the sizes;
* every ``Indexed`` element, scalar symbol and undefined function ``f(w)`` (a random
  quadratic) gets a random value; ``positive`` symbols get positive values;
* named constraints hold at every point (``rows_sum_to_one``: a one-hot or probability target,
  each row of ``y`` sums to 1, as the reference solution's cross-entropy assumes;
  ``range:alpha:0:1``: a symbol the document assumes inside a range, 0 < α < 1).

Points where either side is not a finite real number (log of a negative value, a boundary of
a ``Piecewise``) are skipped and others drawn.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef

PROVED = "proved"
NUMERIC = "checked numerically"
DIFFERS = "differs"
UNKNOWN = "not verified"

#: how many random points a numeric check uses (five, one per size n = 1..5, when there are sums)
POINTS = 10


@dataclass(frozen=True)
class Verification:
    """How ``a = b`` was settled.

    ``status`` is ``PROVED`` (SymPy simplified ``a - b`` to 0), ``NUMERIC`` (equal to 1e-9
    relative at ``points`` random points), ``DIFFERS`` (``witness``: a point where they differ,
    with both values in ``values``) or ``UNKNOWN`` (``reason`` says why).
    """

    status: str
    points: int = 0
    witness: dict[str, Any] = field(default_factory=dict)
    values: tuple[float, float] | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (PROVED, NUMERIC)

    def describe(self) -> str:
        if self.status == PROVED:
            return "proved by SymPy"
        if self.status == NUMERIC:
            return f"checked numerically at {self.points} points (SymPy could not prove it)"
        if self.status == DIFFERS:
            at = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in self.witness.items())
            left, right = self.values or (float("nan"), float("nan"))
            return f"differs at {at}: {left:.6g} vs {right:.6g}"
        return f"not verified: {self.reason}"


def substitute_definitions(expr: sp.Basic, defs: Mapping[Any, Any]) -> sp.Basic:
    """Replace placeholder symbols (``|y|``) and function symbols (``σ``) by what they mean."""
    for _ in range(4):  # definitions may use other definitions
        before = expr
        for key, value in defs.items():
            if isinstance(key, sp.FunctionClass):
                expr = expr.replace(key, value)
            elif isinstance(key, sp.IndexedBase):  # ŷ[i, j] -> its definition at (i, j)
                expr = expr.replace(lambda e, k=key: isinstance(e, sp.Indexed) and e.base == k,
                                    lambda e, f=value: f(*e.indices))
            else:
                expr = expr.xreplace({key: value})
        if expr == before:
            break
    return expr


#: dummy_index of the first canonical dummy: far above any index SymPy hands out in a session
_CANONICAL_BASE = 10 ** 12


def _canonical(expr: sp.Basic) -> sp.Basic:
    """``expr`` with its dummies (the bound indices that ``_fresh`` and the definitions make,
    new ones each time an expression is expanded) renamed in order of appearance to the same
    canonical dummies, name and assumptions kept: the same line expanded twice is then the
    same expression, and its values at the random points are computed once (``value_at``'s
    cache). Dummies are only ever bound (a sum's index, a ``Lambda``'s or ``Subs``'s
    variable), so renaming them consistently within one expression changes nothing it means."""
    if not expr.has(sp.Dummy):
        return expr
    order: dict[sp.Dummy, None] = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Dummy):
            order.setdefault(node, None)
    new = {d: sp.Dummy(d.name, dummy_index=_CANONICAL_BASE + k, **d.assumptions0)
           for k, d in enumerate(order)}
    return expr.xreplace(new)


def _sizes_and_indices(expr: sp.Basic) -> tuple[set[sp.Symbol], set[sp.Symbol]]:
    sizes: set[sp.Symbol] = set()
    bound: set[sp.Symbol] = set()
    for s in expr.atoms(sp.Sum):
        for limit in s.limits:
            bound.add(limit[0])
            for end in limit[1:]:
                sizes |= end.free_symbols
    indices: set[sp.Symbol] = set()
    derivative_variables = {v for d in expr.atoms(sp.Derivative) for v in d.variables}
    for ix in expr.atoms(sp.Indexed) | {v for v in derivative_variables if isinstance(v, sp.Indexed)}:
        for index in ix.indices:
            indices |= index.free_symbols
    for d in expr.atoms(sp.KroneckerDelta):
        indices |= d.free_symbols
    # an index may appear only in a case's condition (the i of "0 if u ≠ i" where the value
    # holds no z_ij): it is still an index, never a size
    for rel in expr.atoms(sp.Eq, sp.Ne):
        indices |= {s for s in rel.free_symbols if s.is_integer}
    indices -= bound
    sizes -= indices
    return sizes, indices


def _bound_apart(expr: sp.Basic) -> sp.Basic:
    """Each sum's own index renamed apart from the free names: the v of ``Σ_v a_v − b_v``
    (written without brackets) is free in ``b_v`` and bound in the sum, and must get a value
    in one and not the other."""
    free = expr.free_symbols
    if not expr.has(sp.Sum):
        return expr

    def apart(S: sp.Sum) -> sp.Sum:
        new = {lim[0]: sp.Dummy(lim[0].name, integer=True, positive=True)
               for lim in S.limits if lim[0] in free}
        if not new:
            return S
        return sp.Sum(S.function.xreplace(new), *[(new.get(v, v), lo, hi) for v, lo, hi in S.limits])

    return expr.replace(lambda e: isinstance(e, sp.Sum), apart)


def _has_undecided(expr: sp.Basic) -> bool:
    return bool(expr.atoms(sp.Derivative) or expr.atoms(sp.Sum) or expr.atoms(sp.Integral))


def _try_prove(a: sp.Basic, b: sp.Basic) -> bool:
    try:
        return _zero(sp.piecewise_fold(a - b))
    except Exception:  # SymPy raises many things on odd input; a failed proof is not an answer
        return False


def _zero(d: sp.Basic) -> bool:
    """Whether SymPy can show ``d`` is 0, case by case; bounded, so a hard case falls through to
    the numeric check instead of taking minutes."""
    if d == 0:
        return True
    if isinstance(d, sp.Piecewise):
        return all(_zero(e) for e, _ in d.args)
    if d.has(sp.Piecewise) or sp.count_ops(d) > 150:
        return False
    d = sp.simplify(d)
    if d == 0:
        return True
    return sp.simplify(d.rewrite(sp.exp)) == 0


def _number(expr: sp.Basic) -> float | None:
    try:
        value = complex(sp.N(expr, 30))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if abs(value.imag) > 1e-12 * max(1.0, abs(value.real)) or value.real != value.real:
        return None
    if abs(value.real) == float("inf"):
        return None
    return value.real


def _uniform(t: int, unit: bool, name: str, lo: float, hi: float) -> float:
    # a value fixed by (point, name): both sides of a step, and the next step, see the same point,
    # so each expression is evaluated once per point (see value_at's cache)
    return random.Random(f"{t}|{unit}|{name}").uniform(lo, hi)


def _draw(sym: sp.Basic, name: str, t: int, unit: bool,
          bounds: tuple[float, float] | None = None) -> sp.Float:
    if bounds is not None:  # an assumed range (0 < α < 1): values strictly inside it
        lo, hi = bounds
        if lo > float("-inf") and hi < float("inf"):
            return sp.Float(_uniform(t, unit, name, lo + 0.02 * (hi - lo), hi - 0.02 * (hi - lo)), 15)
        if lo > float("-inf"):
            return sp.Float(lo + _uniform(t, unit, name, 0.05, 2.0), 15)
        return sp.Float(hi - _uniform(t, unit, name, 0.05, 2.0), 15)
    if unit:
        return sp.Float(_uniform(t, unit, name, 0.05, 0.95), 15)
    if getattr(sym, "is_positive", False) or getattr(sym, "is_nonnegative", False):
        return sp.Float(_uniform(t, unit, name, 0.2, 2.0), 15)
    return sp.Float(_uniform(t, unit, name, -2.0, 2.0), 15)


#: the number of samples m is another number than the classes' or a vector's length n (C) at
#: each point: a step that swaps 1/m for 1/C, or Σ_{i=1}^m for Σ_{i=1}^C, does not follow
_SIZE_OFFSET = {"m": 2, "M": 2}


def _size_value(name: str, t: int) -> int:
    """Size ``name`` at point ``t``: 1..5, every size the same number except m."""
    return 1 + (t + _SIZE_OFFSET.get(name, 0)) % 5


def _bounds(constraints: tuple[str, ...], name: str) -> tuple[float, float] | None:
    """The range a constraint ``range:NAME:LO:HI`` assumes for the symbol ``name``."""
    for c in constraints:
        kind, _, rest = c.partition(":")
        if kind == "range" and rest.rsplit(":", 2)[0] == name:
            _, lo, hi = rest.rsplit(":", 2)
            return float(lo), float(hi)
    return None


def _index_value(t: int, name: str, n: int) -> int:
    """Index ``name`` at point ``t`` (1..n). At every other run of five points the indices are
    drawn from {1, 2} only, so that two indices often agree: the cases i = j and i ≠ j (of a
    Kronecker delta, of a Piecewise written by cases) both come up. A function of the point and
    the name alone, so that both sides of a step see the same indices."""
    hi = n if (t // 5) % 2 == 0 else min(n, 2)
    return random.Random(f"{t}|index|{name}").randint(1, hi)


def _index_cases(expr: sp.Basic) -> list[sp.Piecewise]:
    """The Piecewise expressions whose conditions are on indices only (u ≠ i; u = i, v = j)."""
    out = []
    for pw in expr.atoms(sp.Piecewise):
        conds = [c for _, c in pw.args if c is not sp.true]
        if conds and all(s.is_integer for c in conds for s in c.free_symbols):
            out.append(pw)
    return out


def _branch(pw: sp.Piecewise, point: dict[str, Any]) -> int | None:
    """Which case of ``pw`` holds at ``point`` (its first true condition)."""
    for k, (_, cond) in enumerate(pw.args):
        held = cond.xreplace({s: sp.Integer(point[str(s)]) for s in cond.free_symbols if str(s) in point})
        if held is sp.true:
            return k
    return None


def _quadratic(t: int, name: str, arity: int = 1) -> sp.Lambda:
    """A random quadratic in ``arity`` variables: what an unknown function f(w) is at a point."""
    r = random.Random(f"{t}|function|{name}|{arity}")
    us = sp.symbols(f"u0:{arity}", cls=sp.Dummy)
    body = sp.Float(r.uniform(-1, 1), 15)
    for k, u in enumerate(us):
        body += sp.Float(r.uniform(-1, 1), 15) * u + sp.Float(r.uniform(-1, 1), 15) * u ** 2
        if k:
            body += sp.Float(r.uniform(-1, 1), 15) * u * us[0]
    return sp.Lambda(us, body)


def _element_value(el: sp.Indexed, t: int, unit: bool, n: int, constraints: tuple[str, ...]) -> sp.Float:
    label = el.base.label
    if "rows_sum_to_one" in constraints and str(label) == "y":
        # the row's other elements are drawn too, whether or not this expression shows them
        row = el.indices[:-1]
        raw = [_uniform(t, unit, str(el.base[(*row, c)]), 0.05, 1.0) for c in range(1, n + 1)]
        col = int(el.indices[-1])
        return sp.Float(raw[col - 1] / sum(raw), 15) if 1 <= col <= n else sp.Float(0)
    return _draw(label, str(el), t, unit)


@lru_cache(maxsize=4096)
def value_at(expr: sp.Basic, t: int, unit: bool = False, constraints: tuple[str, ...] = ()
             ) -> tuple[float | None, tuple[tuple[str, Any], ...]]:
    """``expr`` at random point number ``t`` (every size n = 1 + t % 5): its value (None where
    it is not a finite real number) and the point, as ``(name, value)`` pairs."""
    n = 1 + t % 5
    # indices stay inside every size (m may be smaller than n at this point)
    same = "sizes_equal" in constraints
    index_hi = n if same else min(n, _size_value("m", t))
    expr = _bound_apart(expr)
    sizes, indices = _sizes_and_indices(expr)
    # m in J/m is the same size as in Σ_{u=1}^m, whether or not a sum still shows it
    sizes |= {s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.is_integer
              and s.is_positive and s not in indices}
    point: dict[str, Any] = {}
    sub: dict[sp.Basic, Any] = {}
    for s in sorted(sizes, key=str):
        sub[s] = n if same else _size_value(str(s), t)
    for i in sorted(indices, key=str):
        sub[i] = _index_value(t, str(i), index_hi)
    point.update({str(k): v for k, v in sub.items()})
    e = expr.xreplace(sub)  # not subs: subs misses an index inside Sum(Derivative(..., b[i]))
    # d/df(w) of σ(f(w)): taken while f(w) is still a symbol of its own
    e = e.replace(lambda d: isinstance(d, sp.Derivative)
                  and any(isinstance(v, AppliedUndef) for v in d.variables),
                  lambda d: d.doit())
    for f in {(f.func, len(f.args)) for f in e.atoms(AppliedUndef)}:
        e = e.replace(f[0], _quadratic(t, str(f[0]), f[1]))
    e = unroll(e)
    values: dict[sp.Basic, Any] = {}
    for el in sorted(e.atoms(sp.Indexed), key=str):
        values[el] = _element_value(el, t, unit, n, constraints)
    labels = {el.base.label for el in values}
    for s in sorted(e.free_symbols - set(values) - labels, key=str):
        if isinstance(s, sp.Symbol) and s.name == "t" and s.is_integer:
            values[s] = random.Random(f"{t}|label").choice((-1, 1))  # a ±1 label
        elif isinstance(s, sp.Symbol) and s.is_integer:
            values[s] = _index_value(t, str(s), index_hi)  # as an index of the same name
        else:
            values[s] = _draw(s, str(s), t, unit, _bounds(constraints, str(s)))
    point.update({str(k): (float(v) if not isinstance(v, int) else v) for k, v in values.items()})
    moving = {c.split(":", 1)[1] for c in constraints if c.startswith("depends on w:")}

    def rate(el: sp.Basic, w: sp.Basic) -> sp.Float:  # ∂ŷ_k/∂w at this point
        return sp.Float(_uniform(t, unit, f"rate|{el}|{w}", -1.0, 1.0), 15)

    return _number(_at(e, values, moving, rate)), tuple(point.items())


def _at(expr: sp.Basic, values: dict[sp.Basic, Any], moving: set[str] = frozenset(),
        rate=None) -> sp.Basic:
    """``expr`` at a point; each derivative is taken after every other variable has its value,
    which keeps SymPy's ``diff`` to one-variable expressions (the written-out sums are large).

    ``moving`` names indexed bases that are functions of the scalar w (the document wrote
    ∂ŷ_i/∂w): d/dw then is the total derivative Σ_k ∂(...)/∂ŷ_k · ∂ŷ_k/∂w, with ∂ŷ_k/∂w a
    random number per element (``rate``).
    """
    def at(d: sp.Derivative) -> sp.Basic:
        keep = set(d.variables)
        inner = d.expr.xreplace({k: v for k, v in values.items() if k not in keep})
        total = sp.diff(inner, *d.variables)
        (w,) = d.variables if len(d.variables) == 1 else (None,)
        if moving and isinstance(w, sp.Symbol):
            for el in d.expr.atoms(sp.Indexed):
                if str(el.base.label) in moving:
                    part = d.expr.xreplace({k: v for k, v in values.items() if k != el and k != w})
                    total += sp.diff(part, el) * rate(el, w)
        return total.xreplace(values)

    expr = expr.replace(lambda e: isinstance(e, sp.Derivative), at).xreplace(values)
    return expr.doit() if _has_undecided(expr) else expr


def unroll(expr: sp.Basic) -> sp.Basic:
    """Every sum with numeric limits written out term by term (``Sum.doit`` would try closed
    forms first, which is slow and needless here)."""
    def one(s: sp.Sum) -> sp.Basic:
        body = s.function
        for var, lo, hi in reversed(s.limits):
            if not (lo.is_Integer and hi.is_Integer):
                return s
            body = sp.Add(*(body.xreplace({var: sp.Integer(v)}) for v in range(int(lo), int(hi) + 1)))
        return body

    return expr.replace(lambda e: isinstance(e, sp.Sum), one)


def verify(a: sp.Basic, b: sp.Basic, defs: Mapping[Any, Any] | None = None,
           constraints: Iterable[str] = (), points: int = POINTS, seed: int = 0,
           prove: bool = True) -> Verification:
    """Settle ``a = b``: a SymPy proof, else ``points`` random points, else a counterexample.

    ``defs`` maps placeholder symbols and function symbols to their definitions (a ``Lambda``
    for a function); ``constraints`` names assumptions every point satisfies (see module doc).
    A proof is tried only without constraints (SymPy cannot use them).
    """
    defs = defs or {}
    constraints = tuple(constraints)
    try:
        a = _canonical(substitute_definitions(sp.sympify(a), defs))
        b = _canonical(substitute_definitions(sp.sympify(b), defs))
    except (sp.SympifyError, TypeError) as exc:
        return Verification(UNKNOWN, reason=f"could not substitute definitions ({exc})")
    if not isinstance(a, sp.Expr) or not isinstance(b, sp.Expr):
        return Verification(UNKNOWN, reason="one side is not an expression")
    key = (a, b, constraints, points, seed, prove)
    if key not in _settled:
        if len(_settled) >= _SETTLED_MAX:
            _settled.pop(next(iter(_settled)))
        _settled[key] = _settle(a, b, constraints, points, seed, prove)
    return _settled[key]


#: verdicts already reached, by (a, b, constraints, points, seed, prove) with the definitions
#: substituted: a checker asks again of the same pair (a line against an earlier one, a chain's
#: last line against its first, the same step in two documents), and the answer cannot change
_settled: dict[tuple, Verification] = {}
_SETTLED_MAX = 4096


def _settle(a: sp.Expr, b: sp.Expr, constraints: tuple[str, ...], points: int, seed: int,
            prove: bool) -> Verification:
    sizes, _ = _sizes_and_indices(a - b)
    # an identity SymPy proves holds inside any assumed range; other assumptions it cannot use
    unconditional = all(c.startswith("range:") for c in constraints)
    if prove and unconditional and not sizes and not _differs_at_first_point(a, b, seed, constraints) \
            and _try_prove(a.doit(), b.doit()):
        return Verification(PROVED)
    if sizes:  # one point per size n = 1..5: each point writes out every sum, which is the cost
        points = min(points, 5)
    done = tries = 0
    t = seed * 1000
    # every case of a Piecewise by index cases is checked at some point: more points until so
    cases = _index_cases(a) + _index_cases(b)
    unseen = {(id(pw), k) for pw in cases for k, (e, _) in enumerate(pw.args) if e is not sp.nan}
    while (done < points or unseen) and tries < points * 6:
        unit = tries % 2 == 1  # every other point inside (0, 1), where log(p) and log(1 - p) live
        tries += 1
        t += 1
        try:
            va, pa = value_at(a, t, unit, constraints)
            vb, pb = value_at(b, t, unit, constraints)
        except Exception as exc:  # an expression SymPy cannot evaluate is not a verdict
            return Verification(UNKNOWN, reason=f"SymPy could not evaluate it ({type(exc).__name__})")
        if va is None or vb is None:
            continue
        if _apart(va, vb):
            return Verification(DIFFERS, witness=dict(pa + pb), values=(va, vb))
        done += 1
        if not sizes or t % 5:  # a case seen with every size 1 (one class) proves little
            point = dict(pa + pb)
            unseen -= {(id(pw), _branch(pw, point)) for pw in cases}
    if done == 0:
        return Verification(UNKNOWN, reason="no point where both sides are finite real numbers")
    return Verification(NUMERIC, points=done)


def _differs_at_first_point(a: sp.Expr, b: sp.Expr, seed: int, constraints: tuple[str, ...]) -> bool:
    """Whether the two sides differ at the numeric check's first point: then no proof can
    succeed, and SymPy's ``simplify`` (the slow part of a wrong step) is not asked. The
    numeric check starts at that same point (cached), so it reports the same counterexample."""
    try:
        # called as _settle's loop calls it, so that both share one cache entry
        va, _ = value_at(a, seed * 1000 + 1, False, constraints)
        vb, _ = value_at(b, seed * 1000 + 1, False, constraints)
    except Exception:  # the numeric check says so, with its reason
        return False
    return va is not None and vb is not None and _apart(va, vb)


def _apart(va: float, vb: float) -> bool:
    """Two values differ: by more than 1e-9 relative (absolute below 1)."""
    return abs(va - vb) > 1e-9 * max(1.0, abs(va), abs(vb))
