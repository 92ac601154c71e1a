"""chainrule check: each written value graded correct, off by carried rounding, or wrong.

Exact values are computed here in plain NumPy; the verdicts expected for the reference
solution's sheet are worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.explain.worksheet import (
    CORRECT,
    ROUNDING,
    WRONG,
    WorksheetError,
    check_worksheet,
    find_example,
)


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def exact() -> dict[str, float]:
    x = np.array([0.02, 0.03, -2.06])
    W1 = np.array([[0.36, 0.74, -0.28], [0.29, -0.27, -0.84]])
    z1 = W1 @ x + np.array([0.7, 0.17])
    y1 = _sig(z1)
    z2 = 0.4 * y1[0] + 1.16 * y1[1] - 0.41
    yh = _sig(z2)
    dz2 = (yh - 0.61) * yh * (1 - yh)
    dz1 = dz2 * np.array([0.4, 1.16]) * y1 * (1 - y1)
    return {
        "z_{1-1}": z1[0],
        "z_{2-1}": z1[1],
        "y_{1-1}": y1[0],
        "y_{2-1}": y1[1],
        "z_{1-2}": z2,
        "yhat": yh,
        "L": 0.5 * (yh - 0.61) ** 2,
        "dL/dyhat": yh - 0.61,
        "dyhat/dz_{1-2}": yh * (1 - yh),
        "dL/dz_{1-2}": dz2,
        "dL/dz_{1-1}": dz1[0],
        "dL/dz_{2-1}": dz1[1],
        "dL/dw_{21-1}": dz1[0] * 0.03,
        "dL/dw_{31-1}": dz1[0] * -2.06,
        "dL/dw_{32-1}": dz1[1] * -2.06,
    }


def test_reference_solution_sheet():
    report = check_worksheet(find_example("reference-worksheet"))
    e = exact()
    by = {}
    for v in report.verdicts:
        by.setdefault(v.name, []).append(v)
    # its slips, worked out by hand:
    # dyhat/dz_{1-2} first written as z(1 - z) = 0.0789; yhat(1 - yhat) = 0.2043 is right
    first, second = by["dyhat/dz_{1-2}"]
    assert (first.written, first.status) == ("0.0789", WRONG)
    assert (second.written, second.status) == ("0.2043", CORRECT)
    assert first.exact == pytest.approx(e["dyhat/dz_{1-2}"], rel=1e-12)
    # the message shows the right closed form, with the output (not z) in it
    assert "= sigmoid'(z_{1-2}) = yhat * (1 - yhat) = 0.71373" in first.message()
    # dL/dw_{31-1} = 0.0014 x -2.06 = -0.002884, written -0.00285: an arithmetic slip, and the
    # exact value rounds to -0.00293
    w31 = by["dL/dw_{31-1}"][0]
    assert w31.status == WRONG and w31.causes == []
    assert round(e["dL/dw_{31-1}"], 5) == -0.00293
    assert w31.exact == pytest.approx(e["dL/dw_{31-1}"], rel=1e-12)
    assert w31.recomputed == pytest.approx(0.0014 * -2.06, rel=1e-12)
    assert "dL/dz_{1-1} * dz_{1-1}/dw_{31-1}" in w31.message()
    # dL/dw_{21-1} = 0.0014 x 0.03 = 4.2e-5, exact 4.27e-5 -> 4.3e-5: carried rounding
    assert round(e["dL/dw_{21-1}"] * 1e5, 1) == 4.3
    assert by["dL/dw_{21-1}"][0].status == ROUNDING
    # dL/dw_{32-1} = 0.0028 x -2.06 = -0.005768 -> -0.00577, exact -0.00574: carried rounding
    assert round(e["dL/dw_{32-1}"], 5) == -0.00574
    assert by["dL/dw_{32-1}"][0].status == ROUNDING
    # its name slip: dL/dw_{11-1} written with z_{2-1} in the names, 0.0014 = dL/dz_{1-1} in value
    w11 = by["dL/dw_{11-1}"][0]
    assert w11.status == CORRECT and "dL/dz_{2-1}" in w11.note and "dL/dz_{1-1}" in w11.note
    assert "dL/dz_{3-1}" in by["dL/dw_{32-1}"][0].note
    # everything else on the sheet is right to the digits written
    slips = {("dyhat/dz_{1-2}", 1), ("dL/dw_{31-1}", 1), ("dL/dw_{21-1}", 1), ("dL/dw_{32-1}", 1)}
    for v in report.verdicts:
        if (v.name, v.attempt) not in slips:
            assert v.status == CORRECT, v.message()
            if v.name in e:
                assert abs(v.claimed - e[v.name]) <= 0.5 * 10.0**-v.decimals + 1e-12
    assert report.summary() == "47 values checked: 43 correct, 2 off only by carried rounding, 2 wrong"
    assert report.exit_code == 1


def _sheet(tmp_path: Path, values: str, network: str = '"reference"') -> Path:
    path = tmp_path / "sheet.toml"
    path.write_text(f"network = {network}\n\n[values]\n{values}\n", encoding="utf-8")
    return path


def test_planted_slips_and_their_causes(tmp_path):
    e = exact()
    path = _sheet(
        tmp_path,
        """
"z_{1-1}" = 1.3062
"z_{2-1}" = "1.8980"      # slip: exact 1.8981
"y_{1-1}" = 0.7769        # slip: exact 0.7869
"y_{2-1}" = 0.8697
"z_{1-2}" = 0.9096        # right from the sheet's wrong y_{1-1}: 0.7769*0.4 + 0.8697*1.16 - 0.41
"yhat" = 0.7129           # right from the sheet's wrong z_{1-2}
"dL/dyhat" = 0.2          # wrong on its own: 0.7129 - 0.61 = 0.1029
""",
    )
    report = check_worksheet(path)
    v = {x.name: x for x in report.verdicts}
    assert v["z_{1-1}"].status == CORRECT
    assert v["z_{2-1}"].status == WRONG and v["z_{2-1}"].written == "1.8980" and v["z_{2-1}"].decimals == 4
    assert round(e["z_{2-1}"], 4) == 1.8981
    assert v["y_{1-1}"].status == WRONG and v["y_{1-1}"].causes == []
    assert v["y_{2-1}"].status == CORRECT
    z12 = v["z_{1-2}"]
    assert round(0.7769 * 0.4 + 0.8697 * 1.16 - 0.41, 4) == 0.9096
    assert z12.status == WRONG and z12.causes == ["y_{1-1} = 0.7769"]
    assert z12.exact == pytest.approx(e["z_{1-2}"], rel=1e-12)
    assert round(_sig(0.9096), 4) == 0.7129
    assert v["yhat"].status == WRONG and v["yhat"].causes == ["z_{1-2} = 0.9096"]
    assert "wrong because z_{1-2} = 0.9096 on the sheet is wrong" in v["yhat"].message()
    assert v["dL/dyhat"].status == WRONG and v["dL/dyhat"].causes == []
    assert v["dL/dyhat"].recomputed == pytest.approx(0.7129 - 0.61, rel=1e-12)
    assert report.exit_code == 1


def test_carried_rounding_with_coarse_values(tmp_path):
    e = exact()
    path = _sheet(
        tmp_path,
        """
"dL/dyhat" = 0.10
"dyhat/dz_{1-2}" = 0.20
"dL/dz_{1-2}" = 0.020     # 0.10 x 0.20; the exact 0.02119 rounds to 0.021
"dL/dy_{1-1}" = 0.008     # 0.020 x 0.4, exact 0.00848 -> 0.008: correct as written
""",
    )
    report = check_worksheet(path)
    v = {x.name: x for x in report.verdicts}
    assert round(e["dL/dz_{1-2}"], 3) == 0.021
    assert [v[n].status for n in ("dL/dyhat", "dyhat/dz_{1-2}", "dL/dz_{1-2}", "dL/dy_{1-1}")] == [
        CORRECT,
        CORRECT,
        ROUNDING,
        CORRECT,
    ]
    assert report.exit_code == 0  # carried rounding is not wrong


def test_trailing_zeros_claim_more_digits(tmp_path):
    # "0.78690" claims 5 decimals; the exact 0.786877 rounds to 0.78688
    report = check_worksheet(_sheet(tmp_path, '"y_{1-1}" = 0.78690\n"y_{2-1}" = "0.870"'))
    v = {x.name: x for x in report.verdicts}
    assert v["y_{1-1}"].decimals == 5 and v["y_{1-1}"].status == WRONG
    assert v["y_{2-1}"].decimals == 3 and v["y_{2-1}"].status == CORRECT


def test_aliases_and_all_correct_exit_zero(tmp_path, run_cli):
    path = _sheet(tmp_path, '"y_{1-2}" = 0.7137\n"dλ/db_{1-1}" = 0.0014\n"\\\\hat{y}" = 0.71373')
    code, out, err = run_cli(["check", str(path)])
    assert code == 0 and err == ""
    assert out.rstrip().endswith("3 values checked: 3 correct, 0 off only by carried rounding, 0 wrong")
    assert "yhat = 0.7137" in out and "dL/dB_{1-1} = 0.0014" in out


def test_inline_network_and_json_report(tmp_path, run_cli):
    path = tmp_path / "inline.toml"
    path.write_text("""
[network]
sizes = [1, 1]
activation = "relu"
[network.data]
input = [2.0]
target = 0.5
[[network.layers]]
weights = [[0.75]]
bias = [-0.5]

[values]
"z_{1-1}" = 1.0
"yhat" = 1
"dL/dyhat" = 0.5
"dL/dw_{11-1}" = 1.1
""")
    code, out, _ = run_cli(["check", str(path), "--format", "json"])
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == "chainrule.check" and doc["version"] == 1
    # z = 0.75*2 - 0.5 = 1, relu -> 1, L2: dL/dyhat = 0.5, dL/dw = 0.5 * 1 * 2 = 1.0
    assert doc["summary"] == {"correct": 3, "rounding": 0, "wrong": 1}
    wrong = [v for v in doc["verdicts"] if v["status"] == "wrong"][0]
    assert wrong["name"] == "dL/dw_{11-1}" and wrong["exact"] == 1.0


@pytest.mark.parametrize(
    "values,words",
    [
        ('"z_{9-1}" = 1.0', ['"z_{9-1}"', "unknown name"]),
        ('"dL/dw_{11-1" = 1.0', ["unknown name", "did you mean dL/dw_{11-1}"]),
        ('"z_{1-1}" = "abc"', ['"z_{1-1}"', "expected a number"]),
        ('"z_{1-1}" = true', ['"z_{1-1}"', "expected a number"]),
        ('"z_{1-1}" = { valu = 1.0 }', ['"z_{1-1}"', "value ="]),
        ('"z_{1-1}" = []', ['"z_{1-1}"', "at least one number"]),
    ],
)
def test_bad_worksheets_exit_2(tmp_path, values, words, run_cli):
    path = _sheet(tmp_path, values)
    with pytest.raises(WorksheetError):
        check_worksheet(path)
    code, out, err = run_cli(["check", str(path)])
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err
    for word in words:
        assert word in err, err


def test_bad_network_reference_and_toml(tmp_path, run_cli):
    for text in (
        'network = "missing.toml"\n[values]\n"L" = 1.0\n',
        'network = "reference"\n[values\n',
        '[values]\n"L" = 1.0\n',
        'network = "reference"\nvalues = 3\n',
    ):
        path = tmp_path / "w.toml"
        path.write_text(text)
        code, out, err = run_cli(["check", str(path)])
        assert code == 2 and out == "" and err.count("\n") == 1 and "w.toml" in err


def test_matrix_notation_and_update_step(tmp_path):
    e = exact()
    path = tmp_path / "m.toml"
    path.write_text("""network = "reference"
notation = "matrix"
lr = 0.5

[values]
"z1[0]" = 1.3062
"dL/dW1[0,2]" = -0.0029
"W1[0,2]^{new}" = -0.2785
""")
    report = check_worksheet(path)
    assert [v.status for v in report.verdicts] == [CORRECT, CORRECT, CORRECT]
    assert report.verdicts[2].exact == pytest.approx(-0.28 - 0.5 * e["dL/dw_{31-1}"], rel=1e-12)
    path.write_text(path.read_text().replace("lr = 0.5", 'lr = "fast"'))
    with pytest.raises(WorksheetError, match="lr"):
        check_worksheet(path)


def test_a_large_network_is_explained_node_by_node():
    import chainrule as cr
    import chainrule.functional as F
    from chainrule.explain import explain

    rng = np.random.default_rng(0)
    W = cr.tensor(rng.standard_normal((200, 150)) * 0.1, requires_grad=True, name="W")
    loss = F.mse_loss(F.sigmoid(F.linear(rng.standard_normal((4, 150)), W)), np.zeros((4, 200)))
    e = explain(loss)
    assert e.quantities == [] and e.node("W").gradient.shape == (200, 150)


def test_work_that_cannot_be_read_gets_a_note(tmp_path):
    """A typo in a `work` string is said, not silently read as something else."""
    values = (
        '"dL/dw_{31-1}" = { value = -0.00293, work = "dL/dz_{1-1} ** dz_{1-1}/dw_{31-1}" }\n'
        '"dL/dw_{21-1}" = { value = 0.0000426, work = "(dL/dz_{1-1} * dz_{1-1}/dw_{21-1}" }\n'
        '"dL/dw_{11-1}" = { value = 0.0000284, work = "dL/dz_{1-1} * * dz_{1-1}/dw_{11-1}" }\n'
        '"dL/dw_{32-1}" = { value = -0.00574, work = "dL/dz_{2-1} * dz_{2-1}/dw_{32-1}" }\n'
    )
    by = {v.name: v for v in check_worksheet(_sheet(tmp_path, values)).verdicts}
    assert "'**' is a power; a chain-rule product is written with '*'" in by["dL/dw_{31-1}"].note
    assert "parentheses are unbalanced" in by["dL/dw_{21-1}"].note
    assert "an operator has nothing on one side" in by["dL/dw_{11-1}"].note
    assert by["dL/dw_{32-1}"].note == ""  # well-formed and right: nothing to say


def test_an_updated_value_without_lr_says_to_add_it(tmp_path):
    with pytest.raises(WorksheetError, match=r"add lr = <the learning rate, e.g. 0.5> at the top"):
        check_worksheet(_sheet(tmp_path, '"w_{11-1}^{new}" = 0.1\n'))
    sheet = tmp_path / "lr.toml"
    sheet.write_text(
        'network = "reference"\nlr = 0.5\n\n[values]\n"w_{11-1}^{new}" = 0.1\n', encoding="utf-8"
    )
    (v,) = check_worksheet(sheet).verdicts
    assert v.name == "w_{11-1}^{new}" and v.status == WRONG  # graded, not refused


def test_the_report_shows_more_digits_than_the_sheet_wrote(tmp_path):
    """The trial: -0.019049119 written, exact -0.0190491183 (Mazur: dE_o2/dout_h1 =
    dE_o2/dnet_o2 * w7 = -0.0380982365 * 0.5): the report must not show -0.0190491 for both."""
    sheet = tmp_path / "m.toml"
    sheet.write_text('network = "mazur-2-2-2"\n[values]\n"dE_o2/dout_h1" = -0.019049119\n', encoding="utf-8")
    (v,) = check_worksheet(sheet).verdicts
    assert v.status == WRONG
    assert "(-0.0190491183)" in v.message() and "earlier values give -0.0190491183" in v.message()


def test_the_original_slip_is_the_one_whose_error_explains_the_rest(tmp_path):
    """The trial: z_{1-1} = 1.3162 is a slip (exact 1.3062); y_{1-1} = 0.7886 misses the
    sheet's own sigmoid(1.3162) = 0.788549 by 5.1e-5, just over its tolerance of 5e-5, but z's
    error carries 0.788549 - 0.786877 = 1.7e-3 into it: z_{1-1} is the original slip."""
    import math

    own = 1 / (1 + math.exp(-1.3162))  # sigmoid of the sheet's z_{1-1}
    assert abs(0.7886 - own) > 5e-5 and abs(own - 1 / (1 + math.exp(-1.3062))) > 1e-3
    values = '"z_{1-1}" = 1.3162\n"y_{1-1}" = 0.7886\n"z_{1-2}" = 0.9143\n'
    by = {v.name: v for v in check_worksheet(_sheet(tmp_path, values)).verdicts}
    y = by["y_{1-1}"]
    assert (
        y.status == WRONG and y.causes == ["z_{1-1} = 1.3162"] and y.own_error == pytest.approx(0.7886 - own)
    )
    assert "wrong mostly because z_{1-1} = 1.3162 on the sheet is wrong" in y.message()
    z2 = by["z_{1-2}"]
    assert z2.causes == ["y_{1-1} = 0.7886"] and z2.origins == ["z_{1-1} = 1.3162"]
    assert "itself carried from the original slip z_{1-1} = 1.3162" in z2.message()


def test_a_worksheet_is_checked_without_the_symbolic_extra():
    # grading values needs no SymPy: only a derivation (.md, .tex) does
    import os
    import subprocess
    import sys

    code = ("import sys; sys.modules['sympy'] = None\n"
            "import chainrule.cli as c\n"
            "sys.exit(c.main(['check', 'reference-worksheet']))\n")
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src}, timeout=300)
    assert done.returncode == 1, done.stderr  # the reference worksheet has wrong values
    assert "47 values checked" in done.stdout
