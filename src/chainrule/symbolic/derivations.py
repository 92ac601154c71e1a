"""``derive(name_or_expr)``: the step-by-step derivation of a registered function or an expression.

The math lives once: a registered function's definition and its stated derivative come from
its ``Formula`` (``chainrule.functional.formulas``) and are only rearranged here: written with
the sample index of the reference solution (cross-entropy over m samples, ∂J/∂z_ij), put into
the function's own terms (σ(x)(1 − σ(x)), 1 − tanh²(x), |y| and |ŷ|), split into cases where a
Kronecker delta decides (i = j, i ≠ j), and closed by the chain rule ∂/∂w of the function of
f(w). Every step is verified (``verify.py``).
"""
from __future__ import annotations

import re
from typing import Any

import sympy as sp

from chainrule.symbolic import steps as st
from chainrule.symbolic.render import text
from chainrule.symbolic.steps import Derivation, Part

W = sp.Symbol("w", real=True)
F_OF_W = sp.Function("f")(W)
_INDEX = dict(integer=True, positive=True)

# Unicode names in the formulas' text, as SymPy function names (which LaTeX prints as \sigma).
_FUNCTION_NAMES = {"σ": "sigma", "L_δ": "L_delta", "ℓ_i": "ell"}


def derive(name_or_expr: str, wrt: str | None = None) -> Derivation:
    """The derivation of a registered activation or loss (by name), or of an expression.

    ``name_or_expr``: a name from ``chainrule derive --list`` ("sigmoid", "cross_entropy",
    aliases as ``chainrule.formula``) or an expression in SymPy syntax (``"1/(1+exp(-x))"``,
    ``"max(0, 1 - y*s)"``; ``e`` is Euler's number). ``wrt``: the variable for an expression
    (default: its only free symbol, ``x`` if it has several); ignored for a registered name.
    Returns a ``Derivation``; ``str()`` of it is what ``chainrule derive NAME --steps`` prints.
    Raises ``ValueError`` for an unknown name, an unreadable expression, or a ``wrt`` that is
    not in it. Needs SymPy (``pip install 'chainrule[symbolic]'``).
    """
    from chainrule.functional import FORMULAS, _canonical

    if not isinstance(name_or_expr, str) or not name_or_expr.strip():
        raise TypeError(f"derive: expected a function name or an expression string, got {name_or_expr!r}")
    key = _canonical(name_or_expr)
    if key in FORMULAS:
        return _from_formula(FORMULAS[key])
    if re.fullmatch(r"\s*[A-Za-z_]\w*\s*", name_or_expr):  # a name, not an expression: say so
        raise ValueError(f"no formula named {name_or_expr.strip()!r}; known: {', '.join(sorted(FORMULAS))} "
                         "(or give an expression, e.g. '1/(1+exp(-x))')")
    return from_expression(name_or_expr, wrt)


# --- an expression a user types ------------------------------------------------------------

def _why_unreadable(text: str, exc: Exception) -> str:
    """Where a typed expression stops making sense, in the user's terms (no Python jargon)."""
    depth = 0
    for column, char in enumerate(text, 1):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return f"the ')' at column {column} closes nothing"
    if depth > 0:
        return f"{depth} '(' never closed"
    if isinstance(exc, SyntaxError):
        stripped = text.rstrip()
        if stripped and stripped[-1] in "+-*/^(,=":
            return f"it ends with {stripped[-1]!r}, where an operand should follow"
        # (SyntaxError's column is in SymPy's rewritten text, not the user's: not shown)
        return "it is not an expression in SymPy's syntax (e.g. 1/(1+exp(-x)), x**2, max(0, 1 - y*s))"
    return f"{exc}" or type(exc).__name__


def _sympy_functions() -> set[str]:
    return {n for n in dir(sp) if not n.startswith("_") and isinstance(getattr(sp, n), sp.FunctionClass)}


def _unknown_functions(text: str, names: dict[str, Any]) -> None:
    """A name of two letters or more applied to an argument (``tahn(x)``) must be a function
    SymPy knows (or max, min, abs, ln): otherwise it would be read as a variable times the
    argument (``tahn·x``) and derived without a word. Raises ``ValueError`` naming it, with the
    nearest known names (a registered function, such as sigmoid, is derived by its name)."""
    import difflib

    from chainrule.functional import FORMULAS

    known = _sympy_functions() | set(names)
    for m in re.finditer(r"(?<![\w.])([A-Za-z_]\w+)\s*\(", text):
        name = m.group(1)
        if name in known:
            continue
        if name in FORMULAS:
            written = FORMULAS[name].sympy[0] if FORMULAS[name].sympy else "its definition"
            raise ValueError(f"derive: {name!r} is a registered function, not one an expression can "
                             f"apply: run 'chainrule derive {name}', or write it out ({written})")
        close = difflib.get_close_matches(name, sorted(known | set(FORMULAS)), n=3, cutoff=0.7)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            " (functions: exp, log, sqrt, tanh, max, min, abs, ... as SymPy names them)"
        raise ValueError(f"derive: unknown function {name!r} in {text!r}{hint}")


def from_expression(text: str, wrt: str | None = None) -> Derivation:
    """Parse ``text`` (SymPy syntax, ``max``/``min``/``abs`` allowed) and derive it."""
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    names = {"max": sp.Max, "min": sp.Min, "abs": sp.Abs, "e": sp.E, "ln": sp.log}
    _unknown_functions(text, names)
    for name in set(re.findall(r"[A-Za-z_]\w*", text)):
        if name not in names and not hasattr(sp, name):
            names[name] = sp.Symbol(name, real=True)
    try:
        expr = parse_expr(text, local_dict=names, transformations=standard_transformations
                          + (convert_xor, implicit_multiplication_application))
    except Exception as exc:  # SymPy's parser raises anything from SyntaxError to TypeError
        raise ValueError(f"derive: could not read the expression {text!r}: {_why_unreadable(text, exc)}"
                         ) from None
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"derive: {text!r} is not an expression (it reads as {expr})")
    free = sorted(expr.free_symbols, key=str)
    if wrt is None:
        if not free:
            raise ValueError(f"derive: {text!r} has no variable to differentiate by")
        by_name = {str(s): s for s in free}
        x = by_name.get("x", free[0]) if len(free) > 1 else free[0]
        if len(free) > 1 and "x" not in by_name:
            raise ValueError(f"derive: {text!r} has several variables ({', '.join(map(str, free))}); "
                             "say which with --wrt")
    else:
        x = names.get(wrt) if isinstance(names.get(wrt), sp.Symbol) else None
        if x is None or x not in expr.free_symbols:
            raise ValueError(f"derive: --wrt {wrt!r} is not a variable of {text!r} "
                             f"(its variables: {', '.join(map(str, free)) or 'none'})")
    start, steps = st.run(expr, x)
    f = sp.Function("f")
    part = Part("derivative", sp.Derivative(f(x), x), start, steps)
    return Derivation(text, f"∂/∂{x}", (f(x), expr), [part], x, where=_where([part]))


# --- a registered function -----------------------------------------------------------------

def _function_name(formula) -> str:
    head = re.match(r"\s*([^\s(=]+)", formula.definition_text).group(1)
    if head != "tanh" and isinstance(getattr(sp, head, None), sp.FunctionClass):
        return formula.name  # "log σ(x)": a function named log would print, and read back, as log(x)
    return _FUNCTION_NAMES.get(head, head if re.fullmatch(r"[A-Za-z]\w*", head) else "F")


def _from_formula(formula) -> Derivation:
    definition, derivative, ns = formula.symbolic()
    if definition.atoms(sp.Indexed):
        return _vector(formula, definition, derivative, ns)
    return _elementwise(formula, definition, derivative, ns)


def _elementwise(formula, definition, derivative, ns) -> Derivation:
    x = sp.sympify(formula.wrt, locals=ns)
    display: dict[str, tuple[str, str]] = {}
    if "y" in ns:  # a loss: prediction p is the reference's ŷ
        display[str(x)] = ("ŷ", r"\hat{y}")
        args = (ns["y"], x)
    else:
        args = (x,)
    fname = _function_name(formula)
    F = sp.tanh if fname == "tanh" else sp.Function(fname)
    lam = sp.Lambda(args, definition)
    defs: dict[Any, Any] = {} if F is sp.tanh else {F: lam}
    start, steps = st.run(definition, x, defs)
    # the stated derivative, in the function's own terms where the formula writes it so (f)
    if "f" in formula.sympy[1]:
        own = sp.sympify(formula.sympy[1], locals={**ns, "f": F(*args)})
        rule = f"in {_text_name(fname)}'s own terms"
    else:
        own = derivative
        rule = "the formula's form"
    if own != steps[-1].expr:
        st.then(steps, own, rule, defs=defs)
    parts = [Part(formula.title, sp.Derivative(F(*args), x), start, steps)]
    # the chain rule: d/dw F(f(w)) = F'(f(w)) * df/dw
    inner = (*args[:-1], F_OF_W)
    chain = own.subs(x, F_OF_W) * sp.Derivative(F_OF_W, W)
    chain_steps: list[st.Step] = []
    true = sp.Derivative(definition.subs(x, F_OF_W), W)
    st.then(chain_steps, chain, "chain", f"∂/∂w {_text_name(fname)}(f(w)) = "
            f"{_text_name(fname)}′(f(w))·∂f(w)/∂w", defs=defs, before=true)
    parts.append(Part("the chain rule", sp.Derivative(F(*inner), W), true, chain_steps))
    return Derivation(formula.name, formula.title, (F(*args), definition), parts, x, display, defs,
                      formula.note, _where(parts))


THETA = sp.Function("theta")


def _where(parts, named=()) -> list[tuple[sp.Basic, sp.Basic]]:
    """The definitions a reader needs under the function's own: the ``named`` ones (s_j, |y|,
    ŷ_uv), then θ, the unit step, where a step writes one (SymPy's Heaviside, printed θ; 0 at 0,
    the subgradient PyTorch takes at a hinge's kink)."""
    where = list(named)
    if any(s.expr.has(sp.Heaviside) for p in parts for s in p.steps):
        a = sp.Symbol("a", real=True)
        where.append((THETA(a), sp.Piecewise((1, a > 0), (0, True))))
    return where


def _text_name(fname: str) -> str:
    return {"sigma": "σ", "L_delta": "L_δ"}.get(fname, fname)


# --- vector functions: indices as the reference solution writes them -----------------------------

def _vector(formula, definition, derivative, ns) -> Derivation:
    if formula.name == "cross_entropy":
        return _cross_entropy(formula, definition, ns)
    x = sp.sympify(formula.wrt, locals=ns)
    display: dict[str, tuple[str, str]] = {}
    defs: dict[Any, Any] = {}
    named: list[tuple[sp.Basic, sp.Basic]] = []  # what the final forms name: s_j, |y|, |ŷ|
    i = ns.get("i")
    fname = _function_name(formula)
    own = derivative
    if formula.name in ("softmax", "log_softmax"):
        s = sp.IndexedBase("s", real=True)
        softmax_def, _, sns = _softmax_of(ns["x"], ns["k"], ns["n"])
        a = sp.Dummy("a", **_INDEX)
        defs[s] = sp.Lambda(a, softmax_def.subs(i, a))
        j = ns["j"]
        if "f" in formula.sympy[1]:
            own = sp.sympify(formula.sympy[1], locals={**ns, "f": s[i]})
        def fold(e, j=j):  # e^(x_j)/Σ_k e^(x_k) written back as s_j
            return _tidy(sp.factor(e.subs({softmax_def.subs(i, j): s[j], softmax_def: s[i]})))

        own = fold(own)
        lhs_f = s[i] if formula.name == "softmax" else sp.IndexedBase("ell", real=True)[i]
        if formula.name == "log_softmax":
            display["ell"] = ("ℓ", r"\ell")
            named.append((s[j], softmax_def.subs(i, j)))  # the softmax, which ∂ℓ_i/∂x_j is written in
    elif formula.name == "cosine_similarity":
        a_, b_ = ns["a"], ns["b"]
        k, n = ns["k"], ns["n"]
        ny, nyh = sp.Symbol("|y|", positive=True), sp.Symbol("|ŷ|", positive=True)
        J = sp.Symbol("J", real=True)
        defs.update({ny: sp.sqrt(sp.Sum(a_[k] ** 2, (k, 1, n))), nyh: sp.sqrt(sp.Sum(b_[k] ** 2, (k, 1, n))),
                     J: definition})
        own = sp.sympify(formula.sympy[1], locals={**ns, "f": J})
        own = own.xreplace({sp.Sum(a_[k] ** 2, (k, 1, n)): ny ** 2, sp.Sum(b_[k] ** 2, (k, 1, n)): nyh ** 2})
        display.update({"a": ("y", "y"), "b": ("ŷ", r"\hat{y}"), "|y|": ("|y|", "|y|"),
                        "|ŷ|": ("|ŷ|", r"|\hat{y}|")})
        named += [(ny, defs[ny]), (nyh, defs[nyh])]
        lhs_f = J
    else:
        lhs_f = sp.Function(fname)(*sorted({ix.base for ix in definition.atoms(sp.Indexed)}, key=str))
    start, steps = st.run(definition, x, defs)
    if own != steps[-1].expr:
        st.then(steps, own, "the formula's form" if not defs else "in the function's own terms", defs=defs)
    if formula.name == "cosine_similarity":
        st.then(steps, sp.together(own), "common denominator", defs=defs)
    parts = [Part(formula.title, sp.Derivative(lhs_f, x), start, steps)]
    deltas = own.atoms(sp.KroneckerDelta)
    if formula.name in ("softmax", "log_softmax") and deltas:
        parts.append(_by_cases(parts[0].lhs, own, deltas.pop(), defs, fold))
    parts.append(_chain(definition, own, x, lhs_f, defs, display))
    return Derivation(formula.name, formula.title, (lhs_f, definition), parts, x, display, defs, formula.note,
                      _where(parts, named))


def _softmax_of(base, k, n):
    from chainrule.functional import formula as get

    definition, derivative, sns = get("softmax").symbolic()
    # the registered softmax is over x[k], k = 1..n: rename into the caller's symbols
    return definition.xreplace({sns["x"]: base, sns["k"]: k, sns["n"]: n}), derivative, sns


def _tidy(e: sp.Basic) -> sp.Basic:
    """−(s − 1)·s written s·(1 − s), as on paper."""
    def flip(m: sp.Mul) -> sp.Basic:
        args = list(m.args)
        args.remove(sp.S.NegativeOne)
        k = next(n for n, a in enumerate(args) if a.is_Add)
        args[k] = sp.Add(*(-t for t in args[k].args))
        return sp.Mul(*args, evaluate=False)

    return e.replace(lambda m: isinstance(m, sp.Mul) and sp.S.NegativeOne in m.args
                     and any(a.is_Add for a in m.args), flip)


def _by_cases(lhs, own, delta, defs, fold) -> Part:
    """δ_ij written out: one case where the indices agree, one where they differ."""
    a, b = delta.args
    same = fold(own.xreplace({delta: 1}).xreplace({b: a}))
    other = fold(own.xreplace({delta: 0}))
    cases = sp.Piecewise((same, sp.Eq(a, b)), (other, True), evaluate=False)
    steps: list[st.Step] = []
    st.then(steps, cases, "Kronecker delta by cases", f"δ_{a}{b} = 1 when {a} = {b}, else 0",
            defs=defs, before=own)
    return Part("by cases", lhs, own, steps)


def _chain(definition, own, x, lhs_f, defs, display, extra_assumption="", constraints=(), given=None) -> Part:
    """∂/∂w of the function of x(w): Σ over x's indices of ∂J/∂x · ∂x/∂w.

    Verified by making every element of x a function of w (x_k(w) = c_k w + d_k w², random c
    and d), so that both sides are numbers: d/dw of the definition against the sum.
    """
    base = x.base
    idx = x.indices
    c, d = sp.IndexedBase("c", real=True), sp.IndexedBase("d", real=True)
    dxdw = sp.IndexedBase(f"d{base}/dw", real=True)

    args = tuple(sp.Dummy(f"q{n}", **_INDEX) for n in range(len(idx)))
    local = {**defs, dxdw: sp.Lambda(args, c[args] + 2 * d[args] * W),
             base: sp.Lambda(args, c[args] * W + d[args] * W ** 2)}
    of_w = definition.replace(lambda e: isinstance(e, sp.Indexed) and e.base == base,
                              lambda e: c[e.indices] * W + d[e.indices] * W ** 2)
    sizes = _ranges(definition, x)
    rhs = sp.Sum(own * dxdw[idx], *[(q, 1, sizes[q]) for q in reversed(idx)])  # Σ_i Σ_j, i outside
    steps: list[st.Step] = []
    name, element = text(lhs_f, display), _show(base, display)  # ∂s_i/∂w = Σ ∂s_i/∂x · ∂x/∂w
    st.then(steps, rhs, "chain", f"∂{name}/∂w = Σ ∂{name}/∂{element} · ∂{element}/∂w",
            defs=local, before=sp.Derivative(of_w, W), assumption=extra_assumption, constraints=constraints,
            given=given)
    return Part("the chain rule", sp.Derivative(lhs_f, W), sp.Derivative(lhs_f, W), steps)


def _show(base, display) -> str:
    return display.get(str(base.label), (str(base.label), ""))[0]


def _ranges(definition, x) -> dict[sp.Basic, sp.Basic]:
    """The size each index of x runs to: the upper limit of the sum over that position."""
    out: dict[sp.Basic, sp.Basic] = {}
    for s in definition.atoms(sp.Sum):
        for var, _lo, hi in s.limits:
            for ix in s.function.atoms(sp.Indexed):
                if ix.base == x.base:
                    for pos, index in enumerate(ix.indices):
                        if index == var and pos < len(x.indices):
                            out.setdefault(x.indices[pos], hi)
    for q in x.indices:
        out.setdefault(q, sp.Symbol("n", **_INDEX))
    return out


def _cross_entropy(formula, definition, ns) -> Derivation:
    """The reference's ∂J/∂z_ij of J = −(1/m) Σ_u Σ_v y_uv log ŷ_uv over m samples and C classes,
    by its route: through ŷ (∂J/∂z_ij = −(1/m) Σ_u Σ_v (y_uv/ŷ_uv) ∂ŷ_uv/∂z_ij), the softmax's
    ∂ŷ_uv/∂z_ij by the cases u ≠ i, (u = i, v = j) and (u = i, v ≠ j), then the sum over v split
    at v = j and closed by Σ_v y_iv = 1. Each step is one short line, verified like every other."""
    z, y, k, c, n = ns["z"], ns["y"], ns["k"], ns["c"], ns["n"]
    u, v, i, j = (sp.Symbol(q, **_INDEX) for q in "uvij")
    m, C = sp.Symbol("m", **_INDEX), sp.Symbol("C", **_INDEX)
    kk = sp.Symbol("k", **_INDEX)
    # one sample's loss from the registry, given a sample index u: z[k] -> z[u, v], ...
    per_sample = definition.replace(lambda e: isinstance(e, sp.Indexed),
                                    lambda e: e.base[(u, *e.indices)])
    per_sample = per_sample.xreplace({k: v, c: kk, n: C})
    J = -sp.Sum(-per_sample, (u, 1, m)) / m  # −(1/m) Σ_u Σ_v y_uv log ŷ_uv: the minus in front, as on paper
    x = z[i, j]
    yhat = sp.IndexedBase("hat_y", real=True)  # sorts before y: printed ŷ_ij − y_ij
    a, b = sp.Dummy("a", **_INDEX), sp.Dummy("b", **_INDEX)
    softmax_def = sp.exp(z[a, b]) / sp.Sum(sp.exp(z[a, kk]), (kk, 1, C))
    defs = {yhat: sp.Lambda((a, b), softmax_def)}
    display = {"hat_y": ("ŷ", r"\hat{y}")}
    Jf = sp.Symbol("J", real=True)

    def D(e, wrt=x):
        return sp.Derivative(e, wrt, evaluate=False)

    def delta(p, q):
        return sp.KroneckerDelta(p, q)

    # ∂J/∂z_ij through ŷ, as the reference writes it
    start = D(J)
    steps: list[st.Step] = []
    J_hat = -sp.Sum(sp.Sum(y[u, v] * sp.log(yhat[u, v]), (v, 1, C)), (u, 1, m)) / m
    st.then(steps, D(J_hat), "definition", "ŷ_uv = e^(z_uv) / Σ_k e^(z_uk) (the softmax)", defs=defs,
            before=start)
    st.then(steps, -sp.Sum(sp.Sum(y[u, v] * D(sp.log(yhat[u, v])), (v, 1, C)), (u, 1, m)) / m,
            "sum over an index, constant factor", "y_uv does not depend on z", defs=defs)
    dyhat = D(yhat[u, v])
    st.then(steps, -sp.Sum(sp.Sum(y[u, v] / yhat[u, v] * dyhat, (v, 1, C)), (u, 1, m)) / m,
            "chain (log)", "d/du log u = 1/u", defs=defs)
    st.then(steps, -sp.Sum(y[i, v] / yhat[i, v] * D(yhat[i, v]), (v, 1, C)) / m,
            "Kronecker delta", "∂ŷ_uv/∂z_ij = 0 when u ≠ i (the cases below): only u = i is left",
            defs=defs)
    outside = (1 - delta(v, j))  # Σ_{v≠j}
    st.then(steps, (sp.Sum(outside * y[i, v] * yhat[i, j], (v, 1, C)) - y[i, j] * (1 - yhat[i, j])) / m,
            "Kronecker delta by cases", "∂ŷ_iv/∂z_ij = −ŷ_iv ŷ_ij (v ≠ j), ŷ_ij(1 − ŷ_ij) (v = j); "
            "y_iv/ŷ_iv · ŷ_iv = y_iv", defs=defs)
    st.then(steps, (yhat[i, j] * sp.Sum(y[i, v], (v, 1, C)) - y[i, j]) / m,
            "sum over an index", "the v = j term y_ij ŷ_ij joins the sum over v ≠ j", defs=defs)
    own = (yhat[i, j] - y[i, j]) / m
    one_hot = sp.Eq(sp.Sum(y[i, v], (v, 1, C)), 1)
    st.then(steps, own, "in the function's own terms", "Σ_v y_iv = 1 (a one-hot or probability target)",
            defs=defs, assumption="each row of y sums to 1", constraints=("rows_sum_to_one",), given=one_hot)
    parts = [Part(formula.title + ", m samples", D(Jf), start, steps)]

    # where: the softmax's ∂ŷ_uv/∂z_ij, by cases
    total = sp.Sum(sp.exp(z[u, kk]), (kk, 1, C))
    jac: list[st.Step] = []
    st.then(jac, D(sp.exp(z[u, v]) / total), "definition", "ŷ_uv = e^(z_uv) / Σ_k e^(z_uk)",
            defs=defs, before=dyhat)
    st.then(jac, (total * sp.exp(z[u, v]) * D(z[u, v]) - sp.exp(z[u, v]) * sp.Sum(
        sp.exp(z[u, kk]) * D(z[u, kk]), (kk, 1, C))) / total ** 2,
            "quotient, chain (exp), sum over an index", "(f/g)′ = (g f′ − f g′)/g²; d/du eᵘ = eᵘ", defs=defs)
    st.then(jac, yhat[u, v] * (D(z[u, v]) - sp.Sum(sp.exp(z[u, kk]) * D(z[u, kk]), (kk, 1, C)) / total),
            "in the function's own terms", "e^(z_uv) / Σ_k e^(z_uk) = ŷ_uv", defs=defs)
    st.then(jac, yhat[u, v] * (delta(u, i) * delta(v, j) - delta(u, i) * yhat[u, j]),
            "Kronecker delta", "∂z_uv/∂z_ij = δ_ui δ_vj; Σ_k e^(z_uk) δ_ui δ_kj = δ_ui e^(z_uj)", defs=defs)
    cases = sp.Piecewise((0, sp.Ne(u, i)), (yhat[u, v] * (1 - yhat[u, v]), sp.And(sp.Eq(u, i), sp.Eq(v, j))),
                         (-yhat[u, v] * yhat[u, j], sp.And(sp.Eq(u, i), sp.Ne(v, j))), evaluate=False)
    st.then(jac, cases, "Kronecker delta by cases", "u ≠ i; u = i and v = j; u = i and v ≠ j", defs=defs)
    parts.append(Part("where ∂ŷ_uv/∂z_ij, by cases", dyhat, dyhat, jac))
    # log(e^z_uv / Σ_k e^z_uk) = z_uv − log Σ_k e^z_uk (e^z > 0): the same J, cheaper to differentiate
    J_log = sp.expand_log(J, force=True)
    parts.append(_chain(J_log, own, x, Jf, defs, display, "each row of y sums to 1", ("rows_sum_to_one",),
                        given=one_hot))
    where = [(yhat[u, v], softmax_def.xreplace({a: u, b: v}))]
    # the registry's formula is one sample's loss; its note says so, and this derivation is over m
    rest = formula.note.split(". ", 1)[1] if formula.note.startswith("For one sample") else formula.note
    note = ("The registry's formula is one sample's loss; this derivation averages it over m samples, as "
            f"F.cross_entropy's reduction='mean' does. {rest}")
    return Derivation(formula.name, formula.title, (Jf, J), parts, x, display, defs, note, where)
