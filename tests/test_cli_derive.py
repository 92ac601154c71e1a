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


# --- one design for every format (issue 14, trial): without --steps the definition, derivative
# and chain rule; with --steps the whole derivation ------------------------------------------

def test_latex_flag_and_format_latex_print_the_same(capsys):
    assert _run(capsys, "sigmoid", "--latex")[1] == _run(capsys, "sigmoid", "--format", "latex")[1]
    assert _run(capsys, "sigmoid", "--latex", "--steps")[1] == \
        _run(capsys, "sigmoid", "--format", "latex", "--steps")[1]


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "json", "html"])
def test_every_format_without_steps_shows_the_three_formulas_only(capsys, fmt):
    f = chainrule.formula("tanh")
    code, out, err = _run(capsys, "tanh", "--format", fmt)
    assert code == 0 and err == ""
    if fmt == "text":
        assert out == _run(capsys, "tanh")[1]  # the same as no --format at all
        wanted = (f.definition_text, f.derivative_text, f.chain_rule_text)
    elif fmt == "json":
        import json

        doc = json.loads(out)
        assert [doc[k]["latex"] for k in ("function", "derivative", "chain_rule")] == \
            [f.definition, f.derivative, f.chain_rule]
        wanted = ()
    else:
        wanted = (f.definition, f.derivative, f.chain_rule) if fmt != "html" else ()
    for line in wanted:
        assert line in out
    assert "proved by SymPy" not in out  # no steps without --steps
    code, steps, _ = _run(capsys, "tanh", "--format", fmt, "--steps")
    assert code == 0 and "proved by SymPy" in steps


@pytest.mark.parametrize("steps", [(), ("--steps",)])
def test_wrt_on_a_registered_name_is_always_an_error(capsys, steps):
    code, out, err = _run(capsys, "sigmoid", "--wrt", "y", *steps)
    assert code == 2 and out == "" and "--wrt" in err and len(err.strip().splitlines()) == 1
