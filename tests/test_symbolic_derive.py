"""``chainrule.derive`` and ``chainrule derive --steps``: every printed step proved again here.

The proofs in this file do not use chainrule's verifier (``chainrule.symbolic.verify``): each
consecutive pair of expressions of each derivation is shown equal with SymPy directly
(``simplify`` of the difference, after ``doit``), or, where sums over an index of symbolic
length make that impossible, at random points with the lengths set to n = 1, 2, 3 and every
sum written out by SymPy's own ``doit``. The final derivative is compared with SymPy's ``diff``
of the registered definition.
"""
from __future__ import annotations

import json
import random

import pytest

sp = pytest.importorskip("sympy", reason="the symbolic extra (SymPy) is not installed")

import chainrule  # noqa: E402
import chainrule.cli as cli  # noqa: E402
from chainrule.functional import FORMULAS  # noqa: E402
from chainrule.symbolic import derive  # noqa: E402
from chainrule.symbolic.render import text  # noqa: E402
from chainrule.symbolic.verify import DIFFERS, verify  # noqa: E402

RULES = {"constant", "identity", "Kronecker delta", "sum", "constant factor", "quotient", "product",
         "power", "chain (power)", "chain (exponential)", "exp/log", "exp", "chain (exp)", "log",
         "chain (log)", "piecewise by cases", "absolute value", "chain (absolute value)",
         "sum over an index", "simplify", "the formula's form", "in the function's own terms",
         "common denominator", "chain", "Kronecker delta by cases", "definition"}


def _named(rule: str) -> bool:
    return (rule in RULES or rule.startswith(("chain (", "derivative of ", "in "))
            and not rule.endswith("SymPy"))


@pytest.fixture(scope="module")
def derivations():
    return {}


def _get(cache, name):
    if name not in cache:
        cache[name] = derive(name)
    return cache[name]


def _expand_defs(expr, defs):
    """The placeholders (σ, |y|, ŷ_ij) replaced by their definitions, written out here."""
    for _ in range(3):
        for key, value in defs.items():
            if isinstance(key, sp.FunctionClass):
                expr = expr.replace(key, value)
            elif isinstance(key, sp.IndexedBase):
                expr = expr.replace(lambda e, k=key: isinstance(e, sp.Indexed) and e.base == k,
                                    lambda e, f=value: f(*e.indices))
            else:
                expr = expr.xreplace({key: value})
    return expr


def _write_out(expr):
    """Sums with numeric limits as explicit additions (SymPy's own Sum.doit recurses forever on
    some sums of Kronecker deltas)."""
    def one(S):
        body = S.function
        for var, lo, hi in reversed(S.limits):
            body = sp.Add(*(body.xreplace({var: v}) for v in range(int(lo), int(hi) + 1)))
        return body

    return expr.replace(lambda e: isinstance(e, sp.Sum) and all(
        lim[1].is_Integer and lim[2].is_Integer for lim in e.limits), one)


def _independent_equal(a, b, one_hot=False) -> bool:
    """a = b by SymPy's simplify, or at 12 random points with every sum written out (n = 1..3)."""
    sizes = {s for e in (a, b) for S in e.atoms(sp.Sum) for lim in S.limits for s in lim[2].free_symbols}
    if not sizes and not a.atoms(sp.Piecewise) and not b.atoms(sp.Piecewise):
        try:
            if sp.simplify((a.doit() - b.doit()).rewrite(sp.exp)) == 0:
                return True
        except Exception:
            pass
    rng = random.Random(7)
    f = sp.Function("f")
    checked = 0
    for trial in range(40):
        if checked == 8:
            break
        n = 1 + trial % 3
        ints = {s for e in (a, b) for s in e.free_symbols if isinstance(s, sp.Symbol) and s.is_integer}
        # an index in d/dx_j is bound by the Derivative, so not a free symbol: found from x_j itself
        bound = {lim[0] for e in (a, b) for S in e.atoms(sp.Sum) for lim in S.limits}
        ints |= {s for e in (a, b) for el in e.atoms(sp.Indexed) for s in el.indices
                 if isinstance(s, sp.Symbol)} - bound
        sub = {s: (n if s in sizes or s.name in ("m", "C", "n") else rng.randint(1, n)) for s in ints}
        sub.update({s: n for s in sizes})
        ea, eb = a.xreplace(sub), b.xreplace(sub)  # sizes first: then doit writes the sums out
        q = sp.Lambda(sp.Symbol("u"), rng.uniform(-1, 1) + rng.uniform(-1, 1) * sp.Symbol("u")
                      + rng.uniform(-1, 1) * sp.Symbol("u") ** 2)
        ea, eb = _write_out(ea.replace(f, q)).doit(), _write_out(eb.replace(f, q)).doit()
        values = {}
        for el in sorted(ea.atoms(sp.Indexed) | eb.atoms(sp.Indexed), key=str):
            values[el] = rng.uniform(0.05, 0.95) if trial % 2 else rng.uniform(-2, 2)
        if one_hot:  # each row of y sums to 1
            rows = {}
            for el in values:
                if str(el.base) == "y":
                    rows.setdefault(el.indices[:-1], []).append(el)
            for row_index, row in rows.items():
                full = [sp.IndexedBase("y", real=True)[(*row_index, c)] for c in range(1, n + 1)]
                raw = {e: rng.uniform(0.05, 1) for e in full}
                total = sum(raw.values())
                for el in row:
                    values[el] = raw.get(el, 0) / total
        labels = {el.base.label for el in values}
        for s in sorted((ea.free_symbols | eb.free_symbols) - set(values) - labels, key=str):
            values[s] = rng.choice((-1, 1)) if s.is_integer else (
                rng.uniform(0.2, 2) if s.is_positive else rng.uniform(-2, 2))
        try:
            va = complex(sp.N(ea.xreplace(values).doit()))
            vb = complex(sp.N(eb.xreplace(values).doit()))
        except (TypeError, ValueError):
            continue
        if va != va or vb != vb or abs(va.imag) > 1e-12 or abs(vb.imag) > 1e-12:
            continue
        assert abs(va - vb) <= 1e-8 * max(1, abs(va)), f"{a} != {b} at {values}: {va} vs {vb}"
        checked += 1
    return checked >= 6


@pytest.mark.parametrize("name", list(FORMULAS))
def test_every_step_of_every_registered_function_is_proved_again(derivations, name):
    d = _get(derivations, name)
    assert d.verified, [(s.rule, s.check.describe()) for s in d.steps if not s.check.ok]
    for part in d.parts:
        assert part.steps
        previous = part.start
        for step in part.steps:
            assert step.rule and all(_named(r) for r in step.rule.split(", ")), step.rule
            one_hot = "rows_sum_to_one" in step.constraints
            now = step.expr
            if part.title == "the chain rule" and isinstance(d.wrt, sp.Indexed):
                previous, now = _as_functions_of_w(d, now)
            assert _independent_equal(_expand_defs(previous, d.defs), _expand_defs(now, d.defs),
                                      one_hot), (name, step.rule)
            previous = step.expr


def _as_functions_of_w(d, rhs):
    """Σ ∂J/∂x·∂x/∂w made checkable: every x_k = c_k·w + d_k·w² (so ∂x_k/∂w = c_k + 2·d_k·w);
    returns (d/dw of the definition, the right-hand side), both plain functions of w."""
    base = d.wrt.base
    w = sp.Symbol("w", real=True)
    c, e = sp.IndexedBase("c", real=True), sp.IndexedBase("e", real=True)

    def of_w(expr):
        expr = expr.replace(lambda t: isinstance(t, sp.Indexed) and str(t.base.label).endswith("/dw"),
                            lambda t: c[t.indices] + 2 * e[t.indices] * w)
        return expr.replace(lambda t: isinstance(t, sp.Indexed) and t.base == base,
                            lambda t: c[t.indices] * w + e[t.indices] * w ** 2)

    lhs = sp.Derivative(of_w(_expand_defs(d.definition[1], d.defs)), w)
    return lhs, of_w(_expand_defs(rhs, d.defs))


@pytest.mark.parametrize("name", [n for n in FORMULAS if not FORMULAS[n].sympy[0].count("[")])
def test_elementwise_result_is_sympys_own_derivative(derivations, name):
    d = _get(derivations, name)
    definition, _, ns = chainrule.formula(name).symbolic()
    x = sp.sympify(chainrule.formula(name).wrt, locals=ns)
    assert _independent_equal(sp.diff(definition, x), _expand_defs(d.result, d.defs))


@pytest.mark.parametrize("name, rules", [
    ("sigmoid", {"chain (power)", "chain (exp)"}),
    ("tanh", {"quotient", "sum", "chain (exp)"}),
    ("relu", {"piecewise by cases"}),
    ("hinge_loss", {"piecewise by cases"}),
    ("softmax", {"quotient", "sum over an index", "Kronecker delta"}),
    ("cross_entropy", {"constant factor", "sum over an index", "chain (log)", "quotient", "Kronecker delta"}),
    ("cosine_similarity", {"quotient", "chain (power)", "sum over an index", "Kronecker delta"}),
])
def test_the_rules_a_student_would_name(derivations, name, rules):
    used = {r for s in _get(derivations, name).steps for r in s.rule.split(", ")}
    assert rules <= used


@pytest.mark.parametrize("name, result", [
    # as the reference writes them (σ(x)(1 − σ(x)), not SymPy's (1 − σ(x))σ(x)), − for minus
    ("sigmoid", "σ(x)·(1 − σ(x))"),
    ("tanh", "1 − tanh(x)^2"),
    ("cross_entropy", "(ŷ_ij − y_ij)/m"),
    ("cosine_similarity", "y_i/(|y|·|ŷ|) − J·ŷ_i/|ŷ|^2"),  # the y_i/(|y||ŷ|) − ŷ_i J/|ŷ|²
])
def test_the_simplification_back_into_the_functions_own_terms(derivations, name, result):
    d = _get(derivations, name)
    shown = [text(s.expr, d.display) for s in d.parts[0].steps]
    assert result in shown


def test_cross_entropy_is_derived_over_m_samples_with_the_one_hot_assumption_stated(derivations):
    d = _get(derivations, "cross_entropy")
    assert text(d.parts[0].lhs, d.display) == "∂J/∂z_ij"
    last = d.parts[0].steps[-1]
    assert last.assumption == "each row of y sums to 1" and "rows_sum_to_one" in last.constraints
    # without the assumption the last step is false: Σ_v y_iv·ŷ_ij − y_ij ≠ ŷ_ij − y_ij in general
    before = d.parts[0].steps[-2].expr
    assert verify(before, last.expr, d.defs).status == DIFFERS


def test_softmax_jacobian_by_cases_as_the_reference_writes_it(derivations):
    d = _get(derivations, "softmax")
    cases = d.parts[1].steps[-1].expr
    assert isinstance(cases, sp.Piecewise)
    s = sp.IndexedBase("s", real=True)
    i, j = (sp.Symbol(q, integer=True, positive=True) for q in "ij")
    # s_i (1 − s_i) when i = j and −s_i s_j otherwise, once softmax is written out
    same, other = cases.args[0][0], cases.args[1][0]
    assert _independent_equal(_expand_defs(same, d.defs), _expand_defs(s[i] * (1 - s[i]), d.defs))
    assert _independent_equal(_expand_defs(other, d.defs), _expand_defs(-s[i] * s[j], d.defs))


def test_every_derivation_closes_with_the_chain_rule_in_w(derivations):
    for name in ("sigmoid", "relu", "huber_loss", "cross_entropy", "cosine_similarity"):
        d = _get(derivations, name)
        assert d.parts[-1].title == "the chain rule"
        assert "w" in text(d.parts[-1].lhs, d.display)


def test_a_wrong_step_is_never_shown_as_verified():
    x = sp.Symbol("x", real=True)
    bad = verify(sp.Derivative(x ** 2, x), 3 * x)
    assert bad.status == DIFFERS and not bad.ok
    assert "differs at" in bad.describe()


def test_user_expressions(capsys):
    d = derive("1/(1+exp(-x))")
    assert d.verified
    x = sp.Symbol("x", real=True)
    assert _independent_equal(d.result, sp.exp(-x) / (1 + sp.exp(-x)) ** 2)
    d = derive("max(0, 1 - y*s)", wrt="s")
    assert d.verified and any("piecewise by cases" in s.rule for s in d.steps)
    assert cli.main(["derive", "log(1+exp(x))", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "chain (log)" in out and "proved by SymPy" in out


def test_library_and_command_print_the_same_derivation(capsys, derivations):
    assert cli.main(["derive", "sigmoid", "--steps"]) == 0
    assert capsys.readouterr().out == str(_get(derivations, "sigmoid"))
    assert chainrule.derive is derive


@pytest.mark.parametrize("fmt", ["markdown", "latex", "json", "html"])
def test_formats(capsys, fmt):
    assert cli.main(["derive", "tanh", "--steps", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["schema"] == "chainrule.derivation" and doc["verified"] is True
        assert [s["rule"] for s in doc["parts"][0]["steps"]][0] == "quotient"
    elif fmt == "html":
        assert "katex" in out.lower() and "cr-math" in out and "quotient" in out
    elif fmt == "latex":
        assert r"\begin{align*}" in out and r"\tanh" in out
    else:
        assert "$$" in out and "*quotient*" in out


def test_output_file_is_written_atomically(tmp_path, capsys):
    target = tmp_path / "sigmoid.md"
    assert cli.main(["derive", "sigmoid", "--steps", "--format", "markdown", "-o", str(target)]) == 0
    assert target.read_text().startswith("## Sigmoid")


def test_cross_entropy_follows_the_reference_route(derivations):
    # ../shared/reference/worked-solution.md, lines 94-120: ∂J/∂z_ij through ŷ, the softmax's
    # ∂ŷ_uv/∂z_ij by the cases u ≠ i, (u = i, v = j), (u = i, v ≠ j), then the sum over v split at
    # v = j and closed by Σ_v y_iv = 1
    d = _get(derivations, "cross_entropy")
    main, cases_part, chain = d.parts
    shown = [text(s.expr, d.display) for s in main.steps]
    # the reference's −(1/m) Σ_u Σ_v (y_uv/ŷ_uv) ∂ŷ_uv/∂z_ij, in its order
    assert "−(Σ_{u=1}^{m} Σ_{v=1}^{C} y_uv/ŷ_uv·∂ŷ_uv/∂z_ij)/m" in shown
    assert "−(Σ_{v=1}^{C} y_iv/ŷ_iv·∂ŷ_iv/∂z_ij)/m" in shown
    assert "((Σ_{v≠j} ŷ_ij·y_iv) − y_ij·(1 − ŷ_ij))/m" in shown  # its line 114
    assert shown[-1] == "(ŷ_ij − y_ij)/m"
    # the cases, each checked here against the softmax Jacobian written out independently
    assert text(cases_part.lhs, d.display) == "∂ŷ_uv/∂z_ij"
    cases = cases_part.steps[-1].expr
    assert isinstance(cases, sp.Piecewise)
    u, v, i, j = (sp.Symbol(q, integer=True, positive=True) for q in "uvij")
    yhat = sp.IndexedBase("hat_y", real=True)
    assert [c for _, c in cases.args] == [sp.Ne(u, i), sp.Eq(u, i) & sp.Eq(v, j), sp.Eq(u, i) & sp.Ne(v, j)]
    want = [0, yhat[u, v] * (1 - yhat[u, v]), -yhat[u, v] * yhat[u, j]]
    for (got, _), expected in zip(cases.args, want, strict=True):
        assert _independent_equal(_expand_defs(got, d.defs), _expand_defs(sp.sympify(expected), d.defs))
    # short lines: the longest step of the route is the quotient rule's (the Kronecker-delta route
    # it replaces wrote lines of over 250 characters)
    assert max(len(text(s.expr, d.display)) for s in d.steps) <= 120
    assert chain.title == "the chain rule"


def test_a_sum_without_one_term_is_written_as_such():
    from chainrule.symbolic.render import latex

    v, j, C = (sp.Symbol(q, integer=True, positive=True) for q in ("v", "j", "C"))
    y = sp.IndexedBase("y", real=True)
    s = sp.Sum((1 - sp.KroneckerDelta(v, j)) * y[v], (v, 1, C))
    assert text(s) == "(Σ_{v≠j} y_v)"
    assert latex(s) == r"\sum_{v \neq j} y_{v}"
    assert text(sp.Sum(y[v], (v, 1, C))) == "(Σ_{v=1}^{C} y_v)"


# --- one notation in every format (issue 14): products in the textbook's order, ∂ for every
# derivative (the reference writes ∂/∂x(σ(x)) as much as ∂J/∂z_ij), − (U+2212) for minus in text.
# The expected strings are the reference solution's forms, typed by hand.

@pytest.mark.parametrize("name, part, lhs, shown", [
    ("sigmoid", 0, "∂σ(x)/∂x", "σ(x)·(1 − σ(x))"),
    ("sigmoid", -1, "∂σ(f(w))/∂w", "σ(f(w))·(1 − σ(f(w)))·∂f(w)/∂w"),
    ("tanh", 0, "∂tanh(x)/∂x", "1 − tanh(x)^2"),
    ("tanh", -1, "∂tanh(f(w))/∂w", "(1 − tanh(f(w))^2)·∂f(w)/∂w"),
    ("softmax", 0, "∂s_i/∂x_j", "s_i·(δ_ij − s_j)"),
    ("softmax", 1, "∂s_i/∂x_j", "{s_i·(1 − s_i) if i = j; −s_i·s_j otherwise}"),
    ("cross_entropy", -1, "∂J/∂w", "(Σ_{i=1}^{m} Σ_{j=1}^{C} (ŷ_ij − y_ij)/m·∂z_ij/∂w)"),
])
def test_steps_read_as_the_reference_writes_them(derivations, name, part, lhs, shown):
    d = _get(derivations, name)
    p = d.parts[part]
    assert text(p.lhs, d.display) == lhs
    assert shown in [text(s.expr, d.display) for s in p.steps]


def test_cases_and_definitions_in_the_textbooks_order(derivations):
    d = _get(derivations, "cross_entropy")
    # the reference: ŷ_uv(1 − ŷ_uv) for u = i, v = j
    assert "ŷ_uv·(1 − ŷ_uv) if u = i & v = j" in text(d.parts[1].steps[-1].expr, d.display)
    d = _get(derivations, "binary_cross_entropy")
    assert text(d.definition[1], d.display) == "−y·log(ŷ) − (1 − y)·log(1 − ŷ)"
    d = _get(derivations, "hinge_loss")  # the reference's max(0, 1 − y ŷ), by cases
    assert text(d.definition[1], d.display) == "{1 − ŷ·y if ŷ·y < 1; 0 otherwise}"
    d = _get(derivations, "l2_loss")  # the reference's ½(y − ŷ)²
    assert text(d.definition[1], d.display) == "(y − ŷ)^2/2"


def test_sigmoid_in_every_format(capsys):
    from chainrule.symbolic.render import latex

    d = derive("sigmoid")
    tex = r"\sigma{\left(x \right)} \left(1 - \sigma{\left(x \right)}\right)"
    assert latex(d.result, d.display) == tex
    doc = json.loads(d.render("json"))
    last = doc["parts"][0]["steps"][-1]
    assert (last["text"], last["latex"]) == ("σ(x)·(1 − σ(x))", tex)
    assert doc["parts"][0]["lhs"]["latex"] == r"\frac{\partial \sigma{\left(x \right)}}{\partial x}"
    assert f"$$= {tex}$$" in d.render("markdown")
    assert f"&= {tex}" in d.render("latex")
    assert cli.main(["derive", "sigmoid"]) == 0  # the summary: the registered formula's text
    summary = capsys.readouterr().out
    assert "σ(x)·(1 − σ(x))" in summary and "-" not in summary.split("(sigmoid)")[1]


@pytest.mark.parametrize("name", list(FORMULAS))
def test_one_notation_for_minus_and_derivatives_in_every_format(derivations, name):
    import re

    from chainrule.symbolic.render import latex

    d = _get(derivations, name)
    exprs = [d.definition[0], d.definition[1], d.result]
    exprs += [e for p in d.parts for e in (p.lhs, p.start, *(s.expr for s in p.steps))]
    leibniz_d = re.compile(r"\\frac\{d[ }]")  # SymPy's \frac{d}{d x}, \frac{d J}{d z_{ij}}
    for e in exprs:
        shown, tex = text(e, d.display), latex(e, d.display)
        assert "-" not in shown and "d/d" not in shown, shown
        assert not leibniz_d.search(tex), tex
    for fmt in ("markdown", "latex", "html"):
        assert not leibniz_d.search(d.render(fmt)), fmt
    doc = json.loads(d.render("json"))
    for p in doc["parts"]:
        for s in [p["lhs"], p["start"], *p["steps"]]:
            assert "-" not in s["text"] and not leibniz_d.search(s["latex"]), s
