"""A document's numeric work (part 3 of a worked solution) read into a worksheet and graded.

The grading itself is the worksheet checker's (tests/test_worksheet*.py); what is tested here
is the reading: the network from the parameters written, names and numbers as written, attempts,
work, matrices, and what happens when the numbers do not describe a network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the symbolic extra (SymPy) is not installed")
pytest.importorskip("latex2sympy2_extended",
                    reason="the symbolic extra (latex2sympy2_extended) is not installed")

from chainrule.explain.network import load_network, parse_network  # noqa: E402
from chainrule.explain.worksheet import CORRECT, ROUNDING, WRONG  # noqa: E402
from chainrule.symbolic import numeric_work as nw  # noqa: E402
from chainrule.symbolic.derivation_check import check_derivation, markdown_blocks  # noqa: E402

DATA = Path(__file__).parent / "data"


def _read(text: str) -> nw.NumericWork:
    reader = nw.Reader()
    for b in markdown_blocks(text):
        reader.add(b.line, b.tex)
    return reader.work


@pytest.mark.parametrize("tex, literal", [
    ("0.0212", "0.0212"), ("-2.06", "-2.06"), ("1", "1"), ("2.8 \\times 10^{-5}", "2.8e-5"),
    ("(-0.41)", "-0.41"), ("0.01075 \\times 0.5", None), ("\\sigma(0.9136)", None), ("y", None),
])
def test_numbers_as_written(tex, literal):
    assert nw.number(tex) == literal


@pytest.mark.parametrize("tex, name", [
    ("z_{1-1}", "z_{1-1}"), ("\\hat{y}", "yhat"), ("\\text{Target}", "target"),
    ("\\frac{\\partial L}{\\partial \\hat{y}}", "dL/dyhat"),
    ("\\frac{\\partial \\lambda}{\\partial z_{1-2}}", "dλ/dz_{1-2}"),
    ("\\frac{\\partial z_{1-1}}{\\partial b_{1-1}}", "dz_{1-1}/db_{1-1}"),
    ("\\sigma(z_{1-1})", None), ("(0.02)(0.36)", None),
])
def test_names_as_the_worksheet_checker_spells_them(tex, name):
    assert nw.name(tex) == name


def test_the_reference_network_is_read_off_the_document():
    # the parameters of part 3 (lines 246-274), the activation from y_{1-1} = σ(z_{1-1}) and
    # ŷ = σ(z_{1-2}), the loss from L = ½(y − ŷ)²: the shipped reference.toml, which was typed in
    work = _read((DATA / "worked-solution.md").read_text().split("\n3)\n", 1)[1])
    got = parse_network(nw.network_document(work), source="doc")
    want = load_network(None)
    assert got.sizes == want.sizes and got.activations == want.activations
    assert got.loss == want.loss and got.loss_params == want.loss_params
    for a, b in zip(got.weights, want.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got.biases, want.biases, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.input, want.input)
    np.testing.assert_array_equal(got.target, want.target)


# a 2-1 sigmoid neuron worked by hand, with slips (the working is in the test below)
PLANTED = (DATA / "numeric-slips.md").read_text()


def test_planted_slips_in_numeric_work(tmp_path):
    # a 2-1 sigmoid neuron worked by hand: z = 1(0.5) + (-1)(0.25) + 0 = 0.25;
    # ŷ = σ(0.25) = 0.562177; L = ½(0.5 − 0.562177)² = 0.001933 (0.0019 right);
    # dL/dŷ = ŷ − y = 0.062177: written −0.0622 (a sign slip), then 0.0622 after \quad (right);
    # dŷ/dz = ŷ(1 − ŷ) = 0.246134 (0.2461 right); dL/dz = 0.062177 × 0.246134 = 0.015304
    # (0.0153 right); dL/dw_11 = dL/dz · x_1 = 0.0153: written as a matrix entry (right)
    path = tmp_path / "neuron.md"
    path.write_text(PLANTED)
    report = check_derivation(path)
    got = [(v.name, v.written, v.status, v.attempt) for v in report.worksheet.verdicts]
    assert got == [
        ("z_{1-1}", "0.25", CORRECT, 1), ("yhat", "0.5622", CORRECT, 1), ("L", "0.0019", CORRECT, 1),
        ("dL/dyhat", "-0.0622", WRONG, 1), ("dL/dyhat", "0.0622", CORRECT, 2),
        ("dyhat/dz_{1-1}", "0.2461", CORRECT, 1), ("dL/dz_{1-1}", "0.0153", CORRECT, 1),
        ("dL/dw_{11-1}", "0.0153", CORRECT, 1),
    ], got
    assert report.worksheet.verdicts[3].sign_error
    assert report.exit_code == 1
    assert not report.steps  # nothing of it is read as a derivation step
    assert ROUNDING not in {v.status for v in report.worksheet.verdicts}


def test_numbers_that_describe_no_network_are_said_so(tmp_path):
    path = tmp_path / "no-target.md"
    path.write_text(PLANTED.replace(r"$$\text{Target} = 0.5 = y$$", ""))
    report = check_derivation(path)
    assert report.worksheet is None
    (note,) = [r for r in report.records if "not graded" in r.detail]
    assert note.line == 3 and "no target" in note.detail
    assert report.exit_code == 0  # nothing graded wrong; the note says what was not graded


def test_a_value_the_network_does_not_have_is_noted(tmp_path):
    path = tmp_path / "extra.md"
    path.write_text(PLANTED + "\n$$z_{1-3} = 0.7$$\n")
    report = check_derivation(path)
    (note,) = [r for r in report.records if "has no quantity" in r.detail]
    assert "z_{1-3} = 0.7" in note.detail and note.line == PLANTED.count("\n") + 2


@pytest.mark.parametrize("written, loss", [
    ("\\frac{1}{2}(y - \\hat{y})^2", "l2_loss"),
    ("(\\hat{y} - y)^2", "mse_loss"),
])
def test_the_loss_is_recognised_from_its_formula(written, loss):
    work = _read(PLANTED.replace("\\frac{1}{2}(y - \\hat{y})^2", written))
    assert nw.network_document(work)["loss"]["name"] == loss
