"""``chainrule.detect_anomaly()``: the first op whose value or gradient is NaN/Inf raises.

The error must name the operation, the shapes involved, and the file:line of the user's code
that created the operation (as PyTorch's anomaly mode prints the forward traceback).
"""
from __future__ import annotations

import inspect
import runpy
import textwrap
import warnings

import numpy as np
import pytest

import chainrule as cr


def _line() -> int:
    """The caller's line number (so the expected file:line is not hard-coded)."""
    return inspect.currentframe().f_back.f_lineno


def _quiet():
    """NumPy's own overflow/invalid warnings are not what these tests look at."""
    return np.errstate(all="ignore")


def test_forward_nan_names_the_op_shapes_and_the_users_line():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    with cr.detect_anomaly(), _quiet(), pytest.raises(FloatingPointError) as info:
        h = x * 2.0
        where = _line() + 1
        cr.log(h - 1.0)  # log of a negative number: NaN, born here
    message = str(info.value)
    assert "NaN" in message
    assert "'log'" in message
    assert "(3,)" in message
    assert f"{__file__}:{where}" in message, message
    assert "forward" in message


def test_forward_inf_is_caught_at_the_first_op_not_a_later_one():
    x = cr.tensor([[1.0, 800.0]], requires_grad=True)
    with cr.detect_anomaly(), _quiet(), pytest.raises(FloatingPointError) as info:
        y = x * 1.0
        where = _line() + 1
        z = cr.exp(y)  # exp(800) = inf: the first non-finite value
        (z * 0.0).sum()  # would turn it into NaN later: must not be the one reported
    message = str(info.value)
    assert "Inf" in message and "'exp'" in message and "(1, 2)" in message
    assert f"{__file__}:{where}" in message, message


def test_backward_inf_names_the_op_whose_gradient_is_not_finite():
    x = cr.tensor([0.0, 4.0], requires_grad=True)
    with cr.detect_anomaly(), _quiet():
        where = _line() + 1
        y = cr.sqrt(x)  # finite forward (0, 2); d sqrt / dx at 0 is infinite
        loss = y.sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    message = str(info.value)
    assert "Inf" in message and "'sqrt'" in message and "backward" in message
    assert "(2,)" in message
    assert f"{__file__}:{where}" in message, message
    assert x.grad is None or np.all(np.isfinite(x.grad)), "a non-finite gradient reached .grad"


def test_backward_nan_from_zero_times_inf():
    x = cr.tensor(0.0, requires_grad=True)
    with cr.detect_anomaly(), _quiet():
        y = cr.sqrt(x)
        z = y * 0.0
        with pytest.raises(FloatingPointError, match="'sqrt'"):
            z.backward()  # 0 * inf = NaN in sqrt's VJP; mul's gradient (0) is finite


def test_functional_ops_are_checked_too():
    F = pytest.importorskip("chainrule.functional", reason="chainrule.functional is another issue's module")
    x = cr.tensor([[np.inf, 1.0, 2.0]], requires_grad=True)
    with cr.detect_anomaly(), _quiet(), pytest.raises(FloatingPointError) as info:
        where = _line() + 1
        F.log_softmax(x, axis=-1)  # inf - inf
    assert "log_softmax" in str(info.value)
    assert f"{__file__}:{where}" in str(info.value)


def test_outside_anomaly_mode_nan_propagates_silently_as_in_pytorch():
    x = cr.tensor([-1.0, 1.0], requires_grad=True)
    with _quiet():
        y = cr.log(x)
        y.sum().backward()
    assert np.isnan(y.data[0]) and np.isfinite(y.data[1])
    assert x.grad[1] == 1.0
    assert not cr.autodiff.anomaly_enabled()


def test_mode_is_restored_after_an_error_and_when_nested():
    with pytest.raises(ZeroDivisionError):
        with cr.detect_anomaly():
            assert cr.autodiff.anomaly_enabled()
            1 / 0  # noqa: B018
    assert not cr.autodiff.anomaly_enabled()
    with cr.detect_anomaly():
        with cr.detect_anomaly():
            pass
        assert cr.autodiff.anomaly_enabled()
    assert not cr.autodiff.anomaly_enabled()


def test_finite_graphs_pass_unchanged_and_without_warnings():
    rng = np.random.default_rng(0)
    w = cr.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    x = rng.normal(size=(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with cr.detect_anomaly():
            loss = ((cr.tensor(x) @ w).exp().sum(axis=1).log() ** 2).mean()
            loss.backward()
    plain = cr.tensor(w.data, requires_grad=True)
    ((cr.tensor(x) @ plain).exp().sum(axis=1).log() ** 2).mean().backward()
    np.testing.assert_array_equal(w.grad, plain.grad)


def test_users_file_is_found_even_inside_a_directory_named_chainrule(tmp_path):
    project = tmp_path / "chainrule" / "experiments"  # e.g. a clone of this repository
    project.mkdir(parents=True)
    script = project / "train_script.py"
    script.write_text(textwrap.dedent("""\
        import numpy as np
        import chainrule as cr
        x = cr.tensor([-1.0], requires_grad=True)
        with cr.detect_anomaly(), np.errstate(all="ignore"):
            y = cr.log(x)
    """))
    with pytest.raises(FloatingPointError) as info:
        runpy.run_path(str(script))
    assert f"{script}:5" in str(info.value), str(info.value)


def test_backward_under_anomaly_mode_checks_a_graph_built_outside_it():
    x = cr.tensor([0.0], requires_grad=True)
    y = cr.sqrt(x).sum()
    with cr.detect_anomaly(), _quiet(), pytest.raises(FloatingPointError, match="sqrt"):
        y.backward()
