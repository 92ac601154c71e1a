"""``chainrule check DERIVATION.md``: a hand-written derivation graded step by step.

Every verdict asserted here was checked by hand; the working is in the comments.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sympy", reason="the symbolic extra (SymPy) is not installed")
pytest.importorskip("latex2sympy2_extended",
                    reason="the symbolic extra (latex2sympy2_extended) is not installed")

import chainrule.cli as cli  # noqa: E402
from chainrule.symbolic.derivation_check import FOLLOWS, NOT_CHECKED, WRONG, check_derivation  # noqa: E402

DATA = Path(__file__).parent / "data"
# ../shared/reference/worked-solution.md, copied verbatim so that the tests run wherever the
# repository does (test_the_copy_is_verbatim compares it with the original where that exists)
REFERENCE = DATA / "worked-solution.md"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "worked-solution.md"


@pytest.fixture(scope="module")
def slips():
    return check_derivation(DATA / "derivation-slips.md")


def _steps(report, line):
    return [r for r in report.records if r.kind == "step" and r.line == line]


def test_planted_slips_are_found_at_their_lines(slips):
    # line 5: d/dx x^2 e^-x = 2x e^-x - x^2 e^-x; written + x^2 e^-x: a dropped minus sign
    (s,) = _steps(slips, 5)
    assert s.verdict == WRONG and "minus sign" in s.detail
    # line 7: 2x e^-x + x^2 e^-x = (2x + x^2) e^-x is right algebra on the (wrong) line before
    assert _steps(slips, 7)[0].verdict == FOLLOWS
    # line 11: (1/m) Σ ∂/∂ŷ_k (y_i - ŷ_i)^2 is d/dŷ_k of J = (1/m) Σ (y_i - ŷ_i)^2
    assert _steps(slips, 11)[0].verdict == FOLLOWS
    # line 13: the sum is (2/m)(ŷ_k - y_k); written 2(ŷ_k - y_k): the factor 1/m was lost
    (s,) = _steps(slips, 13)
    assert s.verdict == WRONG and "1/m" in s.detail
    # line 17: ReLU' is 1 for x > 0 and 0 else; the cases are swapped
    assert _steps(slips, 17)[0].verdict == WRONG
    # line 19: ∂/∂ŷ_k Σ y_i ŷ_i = Σ y_i ∂ŷ_i/∂ŷ_k (sum rule) is right
    assert _steps(slips, 19)[0].verdict == FOLLOWS
    # line 21: Σ y_i δ_ik = y_k; written y_j: the index changed its name
    assert _steps(slips, 21)[0].verdict == WRONG
    # lines 23-27: (x e^x)' = e^x + x e^x right; = e^x (1 + 2x) wrong (a factor 2 invented);
    # = e^x (1 + x) right again, and follows from line 23, not from the wrong line 25
    assert _steps(slips, 23)[0].verdict == FOLLOWS
    assert _steps(slips, 25)[0].verdict == WRONG
    (s,) = _steps(slips, 27)
    assert s.verdict == FOLLOWS and s.follows_from_line == 23
    # line 31: the softmax Jacobian ∂ŷ_uv/∂z_ij by cases, the case u = i, v ≠ j written +ŷ_uv ŷ_uj:
    #   it is −ŷ_uv ŷ_uj (the other two cases, 0 and ŷ_uv(1 − ŷ_uv), are right)
    (s,) = _steps(slips, 31)
    assert s.verdict == WRONG and s.detail == "a minus sign was lost in the case u = i, v ≠ j", s.text()
    results = {r.line: r.verdict for r in slips.records if r.kind == "result"}
    assert results[27] == FOLLOWS  # the final result is the true derivative
    assert results[7] == WRONG  # ... and the first chain's is not
    assert slips.exit_code == 1


def test_latex_document_slips_at_their_lines():
    # tests/data/derivation-slips.tex: \[ \], align with &= and \\, equation(*) with cases, $$
    report = check_derivation(DATA / "derivation-slips.tex")
    got = [(r.line, r.verdict) for r in report.steps]
    assert got == [
        (12, FOLLOWS),  # σ'(x) = e^{-x}/(1 + e^{-x})²: the quotient rule, right
        (13, WRONG),    # = 1/(1 + e^{-x}) · 1/(1 + e^{-x}): the e^{-x} of the second factor lost
        (14, FOLLOWS),  # = σ(x)(1 − σ(x)): right again, from line 12 (not from the wrong line 13)
        (21, FOLLOWS),  # ReLU'(x) = 1 (x > 0), 0 else: right
        (25, WRONG),    # g = x (x > 0), x/10 else; g' written 10 in the else case: it is 1/10
        (30, FOLLOWS),  # ∂J/∂ŷ_k = (1/m) Σ ∂/∂ŷ_k (y_i − ŷ_i)²: the sum rule, right
        (31, WRONG),    # = (2/m)(y_k − ŷ_k): the chain rule's −1 dropped; it is (2/m)(ŷ_k − y_k)
        (34, WRONG),    # d/dx tanh(2x) = 2(1 − tanh²(2x)); written without the inner derivative 2
    ], [r.text() for r in report.steps]
    by_line = {r.line: r for r in report.steps}
    assert by_line[14].follows_from_line == 12
    assert "minus sign" in by_line[31].detail and "factor 2" in by_line[34].detail
    assert {r.line: r.verdict for r in report.records if r.kind == "result"} == {14: FOLLOWS, 31: WRONG}
    # the \[ x = 2 \] in a % comment (line 4) is not read; \label and \nonumber are not shown
    assert all(r.line > 5 for r in report.records)
    assert "label" not in by_line[12].rhs and "nonumber" not in by_line[14].lhs
    assert report.exit_code == 1


def test_unclosed_latex_environment_is_unusable_input(tmp_path, capsys):
    path = tmp_path / "open.tex"
    path.write_text("\\begin{document}\n\\[ x = 1 \\]\n\\begin{equation}\n x = 1\n\\end{document}\n")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 3" in err and "equation" in err and "Traceback" not in err


def test_json_has_one_record_per_step_with_the_rhs_line(capsys):
    code = cli.main(["check", str(DATA / "derivation-slips.md"), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    steps = [r for r in doc["records"] if r["kind"] == "step"]
    assert [r["line"] for r in steps] == [5, 7, 11, 13, 17, 19, 21, 23, 25, 27, 31]
    assert steps[0]["lhs"].startswith("\\frac{\\partial}{\\partial x} f(x)")
    assert steps[0]["rhs"] == "2x e^{-x} + x^2 e^{-x}" and steps[0]["verdict"] == WRONG


def test_a_right_derivation_exits_0(tmp_path, capsys):
    path = tmp_path / "sigmoid.md"
    path.write_text("$$\\sigma(x) = \\frac{1}{1+e^{-x}}$$\n\n"
                    "$$\\frac{\\partial}{\\partial x}\\sigma(x) = \\frac{e^{-x}}{(1+e^{-x})^2}"
                    " = \\sigma(x)(1-\\sigma(x))$$\n")
    assert cli.main(["check", str(path)]) == 0
    assert "follows (proved)" in capsys.readouterr().out


def test_unreadable_latex_is_not_checked_with_its_line(tmp_path):
    path = tmp_path / "bad.md"
    path.write_text("text\n\n$$\\frac{\\partial}{\\partial x} x^2 = 2x \\weird{$$\n")
    report = check_derivation(path)
    (s,) = [r for r in report.records if r.kind == "step"]
    assert s.line == 3 and s.verdict == NOT_CHECKED and s.how


def test_unclosed_math_is_unusable_input(tmp_path, capsys):
    path = tmp_path / "open.md"
    path.write_text("$$ x = 1\n")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1" in err and "Traceback" not in err


@pytest.mark.skipif(not SHARED.exists(), reason=f"the original reference solution is not at {SHARED}")
def test_the_copy_is_verbatim():
    assert REFERENCE.read_bytes() == SHARED.read_bytes()


class TestReferenceSolution:
    """All three parts of the reference solution, as they are (part 3 starts at line 238)."""

    @pytest.fixture(scope="class")
    def report(self):
        return check_derivation(REFERENCE)

    def test_part_3_is_graded_as_the_shipped_worksheet_grades_it(self, report):
        # reference-worksheet.toml is part 3 typed in by hand; the document's own numbers, read
        # where they are written, must get the same verdicts, verdict for verdict (the same
        # names, values as written, attempts, exact values, blame and notes)
        from chainrule.explain.worksheet import check_worksheet, find_example

        typed = check_worksheet(find_example("reference-worksheet"))
        assert report.worksheet is not None
        assert [v.message() for v in report.worksheet.verdicts] == [v.message() for v in typed.verdicts]
        assert len(typed.verdicts) == 47
        assert report.exit_code == 1
        # no derivation step is read in part 3, and the text shows both reports
        assert not [r for r in report.records if r.kind in ("step", "result") and r.line >= 238]
        text = report.to_text()
        assert "66 steps:" in text and "47 values checked: 43 correct" in text

    def test_part_1_every_step_follows(self, report):
        part1 = [r for r in report.steps if r.line <= 56]
        assert len(part1) >= 12
        assert all(r.verdict == FOLLOWS for r in part1), [r.text() for r in part1 if r.verdict != FOLLOWS]

    def test_every_step_is_read_and_checked(self, report):
        # 66 steps (one = between two expressions) in parts 1 and 2; "J(y, ŷ) = cos θ = ..." at
        # line 207 is a definition naming θ, not a step
        steps = report.steps
        assert len(steps) == 66 and all(r.line <= 237 for r in steps)
        # line 136: "for m samples we have L = Σ_{i=1}^m max(0, 1 − y_i ŷ_i) = Σ_{i=1}^n L(y_i, ŷ_i)":
        #   the upper limit turns from m into n; it holds if m = n, which the document means and
        #   never says, so it is neither called right nor wrong, and the report says why
        (unsure,) = [r for r in steps if r.verdict == NOT_CHECKED]
        assert unsure.line == 136 and "only if m = n" in unsure.how, unsure.text()

    def test_the_wrong_steps_are_exactly_the_real_slips(self, report):
        wrong = {r.line for r in report.steps if r.verdict == WRONG}
        # line 116: (1/m)[Σ_{v≠j} y_iv ŷ_ij − y_ij(1 − ŷ_ij)] = (ŷ_ij/m)[Σ_{v≠j} y_iv − y_ij + y_ij ŷ_ij]
        #   takes ŷ_ij out of the last two terms, which do not have it: the right side is
        #   (1/m)[ŷ_ij Σ y_iv − ŷ_ij y_ij + y_ij ŷ_ij²], not the left side.
        # line 195: ∂/∂w_j (y_i − ŷ_i)² = −2 (y_i − ŷ_i) ∂ŷ_i/∂w_j; the solution writes +2: a
        #   dropped minus sign (the next line's (ŷ_i − y_i) puts it back).
        # line 230: ... = y_i/(|y||ŷ|) − Σ_j y_j ŷ_j / (|y| (Σ_j ŷ_j²)^{3/2}) drops the factor ŷ_i
        #   of the second term (the line after, − ŷ_i J/|ŷ|², has it again).
        # line 234: y_i/(|y||ŷ|) − ŷ_i J/|ŷ|² over the common denominator |y||ŷ|² is
        #   (y_i |ŷ| − ŷ_i J |y|)/(|y||ŷ|²); the solution drops the |y| of the second term.
        # line 236: ∂J/∂w = Σ_i ∂J/∂ŷ_i ∂ŷ_i/∂w with line 234's wrong ∂J/∂ŷ_i: the second term
        #   is ŷ_i J/(|y||ŷ|²) where the true one is ŷ_i J/|ŷ|² (234's slip carried into the result).
        assert wrong == {116, 195, 230, 234, 236}, [r.text() for r in report.steps if r.verdict == WRONG]

    def test_the_steps_once_misread_follow(self, report):
        by_line = {}
        for r in report.steps:
            by_line.setdefault(r.line, []).append(r)
        # line 106: ∂ŷ_uv/∂z_ij = 0 (u ≠ i), ŷ_uv(1 − ŷ_uv) (u = i, v = j), −ŷ_uv ŷ_uj (u = i, v ≠ j):
        #   the softmax Jacobian; its i appears only in the cases' conditions (an index, not a size)
        # lines 213, 219: ∂J/∂ŷ_i of the cosine; the L2 part's "Let ŷ_i = f(x_i, w_j)" is replaced
        #   by the cosine part's own ŷ = ⟨ŷ_1, ..., ŷ_n⟩ and "Let ŷ = f(x, w)"
        # line 199: with "If ŷ = f(x, w)" (prose before it), Σ_i (ŷ_i − y_i) ∂f(x, w)/∂w is
        #   Σ_i (ŷ_i − y_i) ∂ŷ_i/∂w = ∂/∂w ½ Σ_i (y_i − ŷ_i)²
        # lines 114, 223, 225: plain algebra on the lines before (Σ_j ŷ_j ∂ŷ_j/∂ŷ_i = ŷ_i;
        #   Σ_j ŷ_j (y_i ŷ_j − y_j ŷ_i) = y_i Σ ŷ_j² − ŷ_i Σ y_j ŷ_j)
        for line in (106, 114, 199, 213, 219, 223, 225):
            assert [r.verdict for r in by_line[line]] == [FOLLOWS], [r.text() for r in by_line[line]]
        # line 112 leaves v outside its sum (Σ_{v≠j} y_iv/ŷ_iv − ŷ_iv ŷ_ij + ...): read as the
        # case value substituted, Σ_{v≠j} (y_iv/ŷ_iv)(−ŷ_iv ŷ_ij), it follows, and the report says so
        (s,) = by_line[112]
        assert s.verdict == FOLLOWS and "outside the sum" in s.detail and "\\cdot (-" in s.detail
        # line 207's θ is named by the definition, not an undefined name in a step
        (d,) = [r for r in report.records if r.kind == "definition" and r.line == 207]
        assert "cos" in d.detail


# --- the kinds of misreading behind the reference's former false alarms -----------------------

def _doc(tmp_path, text):
    path = tmp_path / "d.md"
    path.write_text(text)
    return check_derivation(path)


def test_an_index_only_in_a_case_condition_is_an_index():
    import sympy as sp

    from chainrule.symbolic.verify import DIFFERS, verify

    u, i = sp.symbols("u i", integer=True, positive=True)
    x = sp.IndexedBase("x", real=True)
    delta = sp.KroneckerDelta(u, i) * x[u]
    # δ_ui x_u is 0 for u ≠ i and x_u for u = i; the i of the cases appears in no x[...]
    assert verify(delta, sp.Piecewise((0, sp.Ne(u, i)), (x[u], True))).ok
    assert verify(delta, sp.Piecewise((0, sp.Ne(u, i)), (2 * x[u], True))).status == DIFFERS


def test_every_case_of_an_index_piecewise_is_checked():
    import sympy as sp

    from chainrule.symbolic.verify import DIFFERS, verify

    u, v, i, j = sp.symbols("u v i j", integer=True, positive=True)
    x = sp.IndexedBase("x", real=True)
    # δ_ui (2 x_u δ_vj + x_v (1 − δ_vj)) by the three cases u ≠ i; u = i, v = j; u = i, v ≠ j
    delta = sp.KroneckerDelta
    a = delta(u, i) * (2 * x[u] * delta(v, j) + x[v] * (1 - delta(v, j)))
    cases = [(sp.Integer(0), sp.Ne(u, i)), (2 * x[u], sp.Eq(u, i) & sp.Eq(v, j)),
             (x[v], sp.Eq(u, i) & sp.Ne(v, j))]
    assert verify(a, sp.Piecewise(*cases)).ok
    for k in range(3):  # a slip in any one case is found, whichever it is
        wrong = [(e + 1 if n == k else e, c) for n, (e, c) in enumerate(cases)]
        assert verify(a, sp.Piecewise(*wrong)).status == DIFFERS, k


def test_a_letter_bound_by_a_sum_and_free_outside_it_is_evaluated():
    import sympy as sp

    from chainrule.symbolic.verify import verify

    v, n = sp.symbols("v n", integer=True, positive=True)
    x = sp.IndexedBase("x", real=True)
    # Σ_v x_v + x_v: the second v is free; both sides are the same expression, so it follows
    a = sp.Sum(x[v], (v, 1, n)) + x[v]
    assert verify(a, sp.Sum(x[v], (v, 1, n)) + x[v]).ok
    assert not verify(a, sp.Sum(x[v], (v, 1, n))).ok  # ... and x_v is not 0


def test_a_redefined_name_means_its_new_definition(tmp_path):
    report = _doc(tmp_path, (
        "$$\\text{Let } \\hat{y}_i = f(x_i, w_j)$$\n\n"  # the j of w_j is not the sum's j

        "$$\\hat{y} = \\langle \\hat{y}_1, \\dots, \\hat{y}_n \\rangle$$\n\n"
        # ∂/∂ŷ_i Σ_j y_j ŷ_j = y_i only if ŷ_i is a variable again, not f(x_i, w)
        "$$\\frac{\\partial}{\\partial \\hat{y}_i} \\sum_{j=1}^n y_j \\hat{y}_j = y_i$$\n"))
    (s,) = report.steps
    assert s.verdict == FOLLOWS, s.text()


def test_a_definition_in_the_prose_is_used(tmp_path):
    report = _doc(tmp_path, (
        "$$L = \\frac{1}{2} \\sum_{i=1}^n (y_i - \\hat{y}_i)^2$$\n\n"
        "If $\\hat{y} = f(x, w)$, we get\n\n"
        "$$\\frac{\\partial L}{\\partial w} = \\sum_{i=1}^n (\\hat{y}_i - y_i)"
        " \\frac{\\partial f(x, w)}{\\partial w}$$\n\n"
        "$$\\frac{\\partial L}{\\partial w} = \\sum_{i=1}^n (y_i - \\hat{y}_i)"
        " \\frac{\\partial f(x, w)}{\\partial w}$$\n"))
    first, second = report.steps
    assert first.line == 5 and first.verdict == FOLLOWS, first.text()
    assert second.line == 7 and second.verdict == WRONG  # the sign of (ŷ_i − y_i) turned


def test_a_new_part_drops_the_last_parts_assumptions(tmp_path):
    report = _doc(tmp_path, (
        "a) Cross-entropy\n\n$$\\text{i.e., } \\sum_j y_{ij} = 1$$\n\n"
        "$$\\sum_{v=1}^c y_{iv} \\hat{y}_{ij} = \\hat{y}_{ij}$$\n\n"
        "b) Something else\n\n$$\\sum_{v=1}^c y_{iv} \\hat{y}_{ij} = \\hat{y}_{ij}$$\n"))
    first, second = report.steps
    # Σ_v y_iv ŷ_ij = ŷ_ij holds when each row of y sums to 1 (part a) and not otherwise (part b)
    assert first.verdict == FOLLOWS and second.verdict == WRONG, [r.text() for r in report.records]


def test_a_sum_whose_extent_is_not_written(tmp_path):
    # Σ_{v} a_v − b_v with v in b_v: as written v leaks out of the sum; the readings
    # Σ_v (a_v − b_v) and Σ_v a_v·(−b_v) are tried, and the one that follows is said
    report = _doc(tmp_path, (
        "$$\\sum_{v=1}^n (x_v - y_v) = \\sum_{v=1}^n x_v - y_v$$\n\n"
        "$$\\sum_{v=1}^n x_v y_v = \\sum_{v=1}^n x_v - y_v$$\n"))
    first, second = report.steps
    assert first.verdict == FOLLOWS and "read as \\sum_{v=1}^n (x_v - y_v)" in first.detail, first.text()
    assert second.verdict == WRONG and "outside the sum" in second.detail


# --- every notation of a derivative means the same thing (issue 14, trial) -------------------
# Each right side is the textbook derivative, worked by hand: σ' = σ(1 − σ) (quotient rule on
# 1/(1 + e^−x)); ReLU' = 1 for x > 0, else 0; d/dx log(1 + e^x) = e^x/(1 + e^x) = σ(x);
# d/dx |x| = sign(x); d/dx tanh = sech² = 1 − tanh²; softplus' = σ.

SIGMA_DEF = "$$\\sigma(x) = \\frac{1}{1+e^{-x}}$$\n\n"
RELU_DEF = "$$\\text{ReLU}(x) = \\begin{cases} x & x > 0 \\\\ 0 & \\text{else} \\end{cases}$$\n\n"
RELU_D = "\\begin{cases} 1 & x > 0 \\\\ 0 & \\text{else} \\end{cases}"
SIG_D = "\\sigma(x)(1-\\sigma(x))"
WRONG_SIG_D = "\\sigma(x)(1+\\sigma(x))"  # a slip: the sign inside the bracket


@pytest.mark.parametrize("lhs", [
    "\\frac{d}{dx}(\\sigma(x))", "\\frac{d}{dx}\\sigma(x)", "\\dfrac{d}{dx}\\sigma(x)",
    "\\frac{\\partial}{\\partial x}\\sigma(x)", "\\frac{\\partial \\sigma(x)}{\\partial x}",
    "\\frac{d\\sigma}{dx}", "\\frac{d \\sigma(x)}{dx}", "\\frac{\\mathrm{d}}{\\mathrm{d}x}\\sigma(x)",
    "\\sigma'(x)", "\\sigma^{\\prime}(x)", "\\dot{\\sigma}(x)", "d/dx\\, \\sigma(x)",
    "\\frac{d}{d x} \\sigma{\\left(x \\right)}",
])
@pytest.mark.parametrize("defined", [True, False], ids=["sigma defined", "sigma by convention"])
def test_every_derivative_notation_of_sigma(tmp_path, lhs, defined):
    head = SIGMA_DEF if defined else ""
    report = _doc(tmp_path, head + f"$${lhs} = {SIG_D}$$\n\n$${lhs} = {WRONG_SIG_D}$$\n")
    right, wrong = report.steps
    assert right.verdict == FOLLOWS, right.text()
    assert wrong.verdict == WRONG, wrong.text()
    notes = [r.detail for r in report.records if r.kind == "note"]
    assert any("logistic sigmoid" in n for n in notes) == (not defined)


@pytest.mark.parametrize("name", ["\\text{ReLU}", "\\operatorname{ReLU}", "\\mathrm{ReLU}",
                                  "\\text{relu}", "\\operatorname{relu}"])
@pytest.mark.parametrize("op", ["\\frac{d}{dx}", "\\frac{\\partial}{\\partial x}", "d/dx"])
def test_every_notation_of_relu(tmp_path, name, op):
    wrong = "\\begin{cases} 0 & x > 0 \\\\ 1 & \\text{else} \\end{cases}"  # the cases swapped
    for head in (RELU_DEF, ""):
        report = _doc(tmp_path, head + f"$${op}{name}(x) = {RELU_D}$$\n\n$${op}{name}(x) = {wrong}$$\n")
        assert [s.verdict for s in report.steps] == [FOLLOWS, WRONG], report.to_text()


@pytest.mark.parametrize("step", [
    "\\frac{d}{dx}\\max(0, x) = " + RELU_D,
    "\\frac{\\partial}{\\partial x} |x| = \\operatorname{sign}(x)",
    "\\frac{d}{dx} |x| = \\operatorname{sgn}(x)",
    "\\frac{d}{dx} |x| = \\text{sgn}(x)",
    "\\frac{\\partial}{\\partial x} \\tanh(x) = \\operatorname{sech}^2(x)",
    "\\frac{d}{dx} \\tanh(x) = 1 - \\tanh^2(x)",
    "\\tanh'(x) = 1 - \\tanh^2(x)",
    "\\frac{d}{dx}\\log(1+e^{x}) = \\sigma(x)",
    "\\frac{d}{dx} \\mathrm{softplus}(x) = \\sigma(x)",
    "\\frac{d}{dx} \\operatorname{sigmoid}(x) = \\sigma(x)(1 - \\sigma(x))",
    "f'(x) = \\frac{d}{dx} f(x)",
    "\\frac{d}{dx}\\left(x^2 e^{x}\\right) = 2x e^{x} + x^2 e^{x}",
])
def test_function_names_and_notations_are_read(tmp_path, step):
    report = _doc(tmp_path, f"$${step}$$\n")
    assert [s.verdict for s in report.steps] == [FOLLOWS], report.to_text()


def test_sigma_by_convention_shows_in_the_counterexample(tmp_path):
    # d/dx log(1 + e^x) = σ(x), not 1 − σ(x): the wrong step is wrong for the real sigmoid, and
    # the record says which σ it used
    report = _doc(tmp_path, "$$\\frac{d}{dx}\\log(1+e^{x}) = 1 - \\sigma(x)$$\n")
    (step,) = report.steps
    assert step.verdict == WRONG
    assert "logistic sigmoid" in report.to_text()


def test_sigma_prime_at_an_argument(tmp_path):
    # σ'(f(w)) is σ' evaluated at f(w): d/dw σ(f(w)) = σ'(f(w)) f'(w) (the chain rule)
    report = _doc(tmp_path, SIGMA_DEF + "$$\\frac{d}{dw}\\sigma(f(w)) = \\sigma'(f(w)) f'(w)$$\n\n"
                  "$$\\frac{d}{dw}\\sigma(f(w)) = \\sigma'(f(w))$$\n")
    assert [s.verdict for s in report.steps] == [FOLLOWS, WRONG], report.to_text()


def test_latex_align_with_d_notation(tmp_path):
    path = tmp_path / "sig.tex"
    path.write_text("\\documentclass{article}\n\\begin{document}\nLet $\\sigma(x) = \\frac{1}{1+e^{-x}}$.\n"
                    "\\begin{align}\n\\frac{d}{dx}\\sigma(x) &= \\frac{e^{-x}}{(1+e^{-x})^2} \\\\\n"
                    "&= \\sigma(x)\\,(1-\\sigma(x))\n\\end{align}\n\\end{document}\n")
    report = check_derivation(path)
    assert [(s.line, s.verdict) for s in report.steps] == [(5, FOLLOWS), (6, FOLLOWS)], report.to_text()
    assert report.exit_code == 0


# --- notations a class writes (a teacher's trial of thirty write-ups): each right document is
# --- read and every step follows; the same document with one slip planted is wrong at that step

NOTATIONS = [
    # (id, a right derivation, the slip: (written, instead), which step the slip makes wrong)
    ("margin as a name",  # \mathrm{margin} is one name, not m·a·r·g·i·n and not a remark
     "$$\\frac{d}{ds} \\max(0, \\mathrm{margin} - y s) = \\begin{cases} -y & \\text{for}\\: "
     "\\mathrm{margin} - y s > 0 \\\\ 0 & \\text{otherwise} \\end{cases}$$\n",
     ("\\text{for}\\: \\mathrm{margin}", "\\text{for}\\: -\\mathrm{margin}"), 0),
    ("theta defined by cases",  # θ(a) defined, then used as θ\left(...\right)
     "$$\\theta(a) = \\begin{cases} 1 & a > 0 \\\\ 0 & \\text{otherwise} \\end{cases}$$\n\n"
     "$$\\frac{d}{dx} \\max(0, x - c) = \\theta\\left(x - c\\right)$$\n",
     ("\\theta\\left(x - c\\right)", "\\theta\\left(c - x\\right)"), 0),
    ("indicator written \\mathbb{I}, norm written \\|y\\|_2",
     "$$\\frac{\\partial}{\\partial y_i} \\|y\\|_2 = \\frac{y_i}{\\|y\\|_2}$$\n\n"
     "$$\\frac{d}{dx} \\max(0, x) = \\mathbb{I}(x > 0)$$\n", ("\\mathbb{I}(x > 0)", "\\mathbb{I}(x < 0)"), 1),
    ("indicator",
     "$$\\frac{d}{dx} \\max(0, x - c) = \\mathbb{1}[x - c > 0]$$\n", ("x - c > 0]", "x - c < 0]"), 0),
    ("substack sum",
     "$$\\sum_{\\substack{1 \\leq v \\leq C\\\\1 \\leq u \\leq m}} x_{uv} = \\sum_{u=1}^{m} "
     "\\sum_{v=1}^{C} x_{uv}"
     " = \\sum_{1 \\le v \\le C} \\sum_{u=1}^{m} x_{uv}$$\n", ("\\sum_{u=1}^{m} "
     "x_{uv}$$", "\\sum_{u=1}^{m} 2x_{uv}$$"), 1),
    ("norm written \\|y\\|, never defined",  # |y| of a vector is its Euclidean norm
     "$$J = \\frac{\\sum_{j=1}^n y_j \\hat{y}_j}{\\|y\\|\\,\\|\\hat{y}\\|}$$\n\n"
     "$$\\frac{\\partial J}{\\partial \\hat{y}_i} = \\frac{y_i}{\\|y\\|\\,\\|\\hat{y}\\|} - "
     "\\frac{\\hat{y}_i J}{\\|\\hat{y}\\|^2}$$\n",
     ("\\|\\hat{y}\\|^2}$$", "\\|\\hat{y}\\|}$$"), 0),
    ("norm written \\lVert y \\rVert and defined after the line",
     "$$\\frac{\\partial}{\\partial y_i} \\lVert y \\rVert = \\frac{y_i}{\\lVert y \\rVert}"
     " \\qquad \\lVert y \\rVert = \\sqrt{\\sum_{k=1}^{n} y_k^2}$$\n", ("= \\frac{y_i}", "= \\frac{2 "
     "y_i}"), 0),
    ("Let with a sum in it",
     "Let $s_i = \\frac{e^{z_i}}{\\sum_{k=1}^{n} e^{z_k}}$.\n\n"
     "$$\\frac{\\partial s_i}{\\partial z_j} = s_i(\\delta_{ij} - s_j)$$\n", ("- s_j)", "+ s_j)"), 0),
    ("a definition beside the line after \\qquad",
     "$$L = -\\sum_{i=1}^{K} y_i \\log p_i, \\qquad p_i = \\frac{e^{z_i}}{\\sum_{j=1}^{K} e^{z_j}}$$\n\n"
     "$$\\frac{\\partial p_i}{\\partial z_k} = p_i(\\delta_{ik} - p_k)$$\n", ("- p_k)", "- p_i)"), 0),
    ("a name given its meaning in passing",
     "The scores $s_i = w x_i$ give\n\n$$\\frac{\\partial}{\\partial w} \\sum_{i=1}^n s_i = "
     "\\sum_{i=1}^n x_i$$\n",
     ("= \\sum_{i=1}^n x_i", "= \\sum_{i=1}^n x_i^2"), 0),
    ("derivative by a defined intermediate",  # ∂σ(z)/∂z with z = wx + b: z held as a variable
     "Let $z = wx + b$.\n\n$$\\frac{\\partial \\sigma(z)}{\\partial w} = \\frac{\\partial "
     "\\sigma(z)}{\\partial z}"
     "\\cdot\\frac{\\partial z}{\\partial w} = \\sigma(z)(1 - \\sigma(z))\\, x$$\n", ("(1 - "
     "\\sigma(z))", "(1 + \\sigma(z))"), 1),
    ("derivative by a defined prediction",
     "Let $\\hat{y} = \\sigma(z)$ and $L = -y\\log\\hat{y} - (1-y)\\log(1-\\hat{y})$.\n\n"
     "$$\\frac{\\partial L}{\\partial z} = \\frac{\\partial L}{\\partial \\hat{y}} \\cdot "
     "\\frac{\\partial \\hat{y}}{\\partial z}"
     " = \\left(-\\frac{y}{\\hat{y}} + \\frac{1-y}{1-\\hat{y}}\\right)\\hat{y}(1-\\hat{y}) = "
     "\\hat{y} - y$$\n",
     ("= \\hat{y} - y$$", "= y - \\hat{y}$$"), 2),
    ("a function's name without its argument",
     "$$\\ell(w) = \\log(1 + e^{-w})$$\n\n$$\\frac{d\\ell}{dw} = -\\frac{e^{-w}}{1 + e^{-w}}$$\n",
     ("= -\\frac", "= \\frac"), 0),
    ("Huber's L_\\delta",
     "$$L_\\delta(y, \\hat{y}) = \\begin{cases} \\frac{1}{2}(y - \\hat{y})^2 & |y - \\hat{y}| \\le "
     "\\delta \\\\"
     " \\delta\\left(|y - \\hat{y}| - \\frac{1}{2}\\delta\\right) & \\text{otherwise} \\end{cases}$$\n\n"
     "$$\\frac{\\partial L_\\delta}{\\partial \\hat{y}} = \\begin{cases} \\hat{y} - y & |y - "
     "\\hat{y}| \\le \\delta \\\\"
     " \\delta \\, \\mathrm{sign}(\\hat{y} - y) & \\text{otherwise} \\end{cases}$$\n",
     ("\\hat{y} - y & |y", "y - \\hat{y} & |y"), 0),
    ("functions applied without brackets",  # \cosh x \cdot \cosh x is cosh(x)·cosh(x)
     "$$\\frac{d}{dx}\\tanh(x) = \\frac{\\cosh x \\cdot \\cosh x - \\sinh x \\cdot \\sinh x}{\\cosh^2 x}$$\n",
     ("x - \\sinh", "x + \\sinh"), 0),
    ("an assumed range",  # max(αx, x) is x for x > 0 only when α < 1
     "Let $0 < \\alpha < 1$.\n\n$$\\max(\\alpha x, x) = \\begin{cases} x & x > 0 \\\\ \\alpha x & x "
     "\\le 0 \\end{cases}$$\n",
     ("x & x > 0 \\\\ \\alpha x &", "\\alpha x & x > 0 \\\\ x &"), 0),
    ("cases inside cases",
     "$$\\frac{d}{dx}\\begin{cases} x^2 & x > 0 \\\\ \\begin{cases} x & x > -1 \\\\ -1 & "
     "\\text{otherwise}\\end{cases}"
     " & \\text{otherwise}\\end{cases} = \\begin{cases} 2x & x > 0 \\\\ \\begin{cases} 1 & x > -1 \\\\ 0 & "
     "\\text{otherwise}\\end{cases} & \\text{otherwise}\\end{cases}$$\n", ("\\begin{cases} 1 & x > "
     "-1", "\\begin{cases} 2 & x > -1"), 0),
    ("e written upright",
     "$$\\frac{d}{dx} \\mathrm{e}^{-x} = -\\mathrm{e}^{-x}$$\n", ("= -\\mathrm{e}", "= \\mathrm{e}"), 0),
]


@pytest.mark.parametrize("right,slip,at", [n[1:] for n in NOTATIONS], ids=[n[0] for n in NOTATIONS])
def test_notations_a_class_writes(tmp_path, right, slip, at):
    report = _doc(tmp_path, right)
    assert report.steps and all(s.verdict == FOLLOWS for s in report.steps), report.to_text()
    written, instead = slip
    assert written in right
    report = _doc(tmp_path, right.replace(written, instead, 1))
    verdicts = [s.verdict for s in report.steps]
    assert verdicts[at] == WRONG, report.to_text()
    assert all(v == FOLLOWS for k, v in enumerate(verdicts) if k < at), report.to_text()


def test_a_one_hot_target_said_in_the_prose(tmp_path):
    doc = "(each row of the target is one-hot: $\\sum_v y_{v} = 1$)\n\n" \
          "$$\\sum_{v=1}^{n} y_v \\hat{y}_j = \\hat{y}_j$$\n"
    assert [s.verdict for s in _doc(tmp_path, doc).steps] == [FOLLOWS]
    # without it, Σ_v y_v ŷ_j is not ŷ_j
    assert [s.verdict for s in _doc(tmp_path, doc.split("\n\n", 1)[1]).steps] == [WRONG]


def test_sympy_refusing_a_step_is_a_step_not_checked(tmp_path):
    # a derivative SymPy cannot take is that formula's "not checked", never the end of the report
    report = _doc(tmp_path, "$$\\frac{\\partial}{\\partial (x+1)} x^2 = 2x$$\n\n$$\\frac{d}{dx} x^2 = 2x$$\n")
    first, last = report.steps
    assert first.verdict == NOT_CHECKED and first.line == 1 and "SymPy" in first.how, report.to_text()
    assert last.verdict == FOLLOWS, report.to_text()


def test_json_keeps_both_sides_whole(tmp_path, capsys):
    # a long right side: the text report shortens it to one line, the JSON record keeps it as read
    long_rhs = " + ".join(f"{k} x^{{{k - 1}}}" for k in range(1, 40))
    path = tmp_path / "long.md"
    path.write_text(f"$$\\frac{{d}}{{dx}} \\sum_{{k=1}}^{{39}} x^k = {long_rhs}$$\n")
    assert cli.main(["check", str(path), "--format", "json"]) == 0
    (step,) = [r for r in json.loads(capsys.readouterr().out)["records"] if r["kind"] == "step"]
    assert step["rhs"] == long_rhs and step["verdict"] == FOLLOWS
    assert cli.main(["check", str(path)]) == 0
    assert " …" in capsys.readouterr().out


def test_two_sizes_are_two_numbers(tmp_path):
    # 1/m Σ_{i=1}^C x_i and 1/C Σ_{i=1}^m x_i agree only when m = C: once that went unseen (every
    # size was the same number at each point); now m is another number than C, and a step that
    # holds only if they are one is not called right (nor wrong: the reference writes "for m
    # samples ... Σ_{i=1}^m = Σ_{i=1}^n", two names for one count)
    doc = "$$\\frac{1}{m}\\sum_{i=1}^{C} x_i = \\sum_{i=1}^{C} \\frac{x_i}{m}$$\n"
    assert [s.verdict for s in _doc(tmp_path, doc).steps] == [FOLLOWS]
    swapped = doc.replace("\\sum_{i=1}^{C} \\frac{x_i}{m}$$", "\\frac{1}{C}\\sum_{i=1}^{m} x_i$$")
    (s,) = _doc(tmp_path, swapped).steps
    assert s.verdict == NOT_CHECKED and "only if C = m" in s.how, s.text()
    # a factor that is wrong whatever the sizes is wrong
    doubled = doc.replace("\\sum_{i=1}^{C} \\frac{x_i}{m}$$", "\\sum_{i=1}^{C} \\frac{2 x_i}{m}$$")
    (s,) = _doc(tmp_path, doubled).steps
    assert s.verdict == WRONG, s.text()


def test_a_derivative_by_a_name_nothing_depends_on_is_not_checked(tmp_path):
    # ∂L/∂z with L a function of ŷ and no ŷ = σ(z) written: as read, L does not depend on z and
    # ∂L/∂z would be 0, so the (right) chain-rule line would be called wrong; it is not checked
    doc = ("$$L = -\\left[y\\log\\hat{y} + (1-y)\\log(1-\\hat{y})\\right]$$\n\n"
           "$$\\frac{\\partial L}{\\partial z} = "
           "\\frac{\\partial L}{\\partial \\hat{y}}\\cdot\\hat{y}(1-\\hat{y})$$\n")
    (s,) = _doc(tmp_path, doc).steps
    assert s.verdict == NOT_CHECKED and "z is not defined" in s.how, s.text()
    # with the link written, the same line follows
    (s,) = _doc(tmp_path, "Let $\\hat{y} = \\sigma(z)$.\n\n" + doc).steps
    assert s.verdict == FOLLOWS, s.text()


# --- a second trial: what a new user met -----------------------------------------------------

@pytest.mark.parametrize("doc, verdicts", [
    # a derivative claimed to be a number is a step (= 4 was once dropped as numeric work)
    ("$$\\frac{\\partial}{\\partial w}(3w + 1) = 3$$\n\n$$\\frac{\\partial}{\\partial w}(3w + 1) = 4$$\n",
     [FOLLOWS, WRONG]),
    # b leaves with the derivative: not a name that vanished from nowhere
    ("$$\\frac{\\partial}{\\partial w}(wx + b) = x$$\n\n$$\\frac{\\partial}{\\partial x}(wx + b) = b$$\n",
     [FOLLOWS, WRONG]),
    ("Let $z = wx + b$.\n\n$$\\frac{\\partial z}{\\partial w} = x$$\n", [FOLLOWS]),
    # w^\top x: a transpose, the identity on the reader's numbers
    ("Let $z = w^\\top x + b$.\n\n$$\\frac{\\partial z}{\\partial w} = x^{T}$$\n\n"
     "$$\\frac{\\partial z}{\\partial b} = x$$\n",
     [FOLLOWS, WRONG]),
    # an equation in a sentence is graded like a display one
    ("Let $L = \\frac{1}{2}(y - \\hat{y})^2$. "
     "So $\\frac{\\partial L}{\\partial \\hat{y}} = \\hat{y} - y$, and\n\n"
     "$$\\frac{\\partial L}{\\partial \\hat{y}} = y - \\hat{y}$$\n", [FOLLOWS, WRONG]),
])
def test_what_a_new_user_met(tmp_path, doc, verdicts):
    report = _doc(tmp_path, doc)
    assert [s.verdict for s in report.steps] == verdicts, report.to_text()
    assert "hat_y" not in report.to_text()  # ŷ is shown as ŷ


def test_a_rules_note_writes_the_derivative_in_the_printed_notation():
    import chainrule

    notes = [s.note for s in chainrule.derive("gelu").steps if s.rule == "chain (erf)"]
    assert notes == ["d/du erf(u) = 2·e^(−u^2)/√π"]  # 2 e^{-u²}/√π, not Python's 2*exp(-x**2/2)/sqrt(pi)


def test_two_norms_in_one_term_are_two_norms(tmp_path):
    # |ŷ| y_i − J |y| ŷ_i: the parser once paired the bars as |ŷ·y·|J − y_i||
    doc = ("$$J = \\frac{\\sum_{j=1}^n y_j \\hat{y}_j}{|y|\\,|\\hat{y}|}$$\n\n"
           "$$\\frac{\\partial J}{\\partial \\hat{y}_i} = "
           "\\frac{|\\hat{y}| y_{i} - J |y| \\hat{y}_{i}}{|y| |\\hat{y}|^2}$$\n")
    assert [s.verdict for s in _doc(tmp_path, doc).steps] == [FOLLOWS]
    assert [s.verdict for s in _doc(tmp_path, doc.replace("- J |y|", "- J")).steps] == [WRONG]


def test_a_class_of_sheets_in_one_run(tmp_path, capsys):
    right = tmp_path / "right.md"
    right.write_text("$$\\frac{d}{dx} x^2 = 2x$$\n")
    broken = tmp_path / "broken.md"
    broken.write_text("$$ x\n")
    slips = str(DATA / "derivation-slips.md")
    # each report in order, then one line for the class; exit 1: a sheet has something wrong
    assert cli.main(["check", str(right), slips]) == 1
    out = capsys.readouterr().out
    assert out.index("right.md: derivation") < out.index("derivation-slips.md: derivation")
    assert out.rstrip().endswith("2 files: 1 with something wrong, 1 with nothing wrong, 0 unusable")
    # an unusable sheet is said on stderr (exit 2) and the others are still graded
    assert cli.main(["check", str(broken), str(right), "--format", "json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["schema"] == "chainrule.check-batch" and [r["file"] for r in doc["reports"]] == [str(right)]
    assert doc["reports"][0]["records"][0]["verdict"] == FOLLOWS
    assert "broken.md: line 1" in captured.err and len(captured.err.strip().splitlines()) == 1
