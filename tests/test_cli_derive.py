"""``chainrule derive``: a thin shell over ``chainrule.formula``, tested through ``cli.main``."""
from __future__ import annotations

import pytest

import chainrule
import chainrule.cli as cli
from chainrule.functional import FORMULAS


def _run(capsys, *argv):
    code = cli.main(["derive", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_sigmoid_as_the_reference_solution_writes_it(capsys):
    code, out, err = _run(capsys, "sigmoid")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Sigmoid (sigmoid)"
    assert "σ(x) = 1 / (1 + e^(−x))" in lines[1]
    assert "∂/∂x σ(x) = σ(x)·(1 − σ(x))" in lines[2]
    assert "∂/∂w σ(f(w)) = σ(f(w))·(1 − σ(f(w)))·∂f(w)/∂w" in lines[3]


@pytest.mark.parametrize("name", list(FORMULAS))
def test_every_function_prints_definition_derivative_and_chain_rule(capsys, name):
    code, out, err = _run(capsys, name)
    f = chainrule.formula(name)
    assert code == 0 and err == ""
    for line in (f.definition_text, f.derivative_text, f.chain_rule_text):
        assert line in out
    assert "∂/∂w" in out


def test_latex_flag_prints_the_latex_lines(capsys):
    code, out, _ = _run(capsys, "tanh", "--latex")
    assert code == 0
    assert out.splitlines() == [
        r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        r"\frac{\partial}{\partial x}\tanh(x) = 1 - \tanh^2(x)",
        r"\frac{\partial}{\partial w}\tanh(f(w)) = \bigl(1 - \tanh^2(f(w))\bigr)"
        r"\,\frac{\partial f(w)}{\partial w}",
    ]


def test_aliases_are_accepted(capsys):
    code, out, _ = _run(capsys, "MSELoss")
    assert code == 0 and out.startswith("Mean squared error (mse_loss)")


def test_list_names_every_function(capsys):
    code, out, _ = _run(capsys, "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(FORMULAS)


@pytest.mark.parametrize("argv, fragment", [(["swish"], "no formula named 'swish'"),
                                            ([], "give a function name")])
def test_bad_name_is_one_line_on_stderr_and_exit_2(capsys, argv, fragment):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err
