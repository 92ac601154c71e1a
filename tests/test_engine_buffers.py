"""The backward pass sums gradients in place only in buffers it owns (issue 6's optimisation).

Each test builds a graph where writing into the wrong buffer would show: a gradient handed
to two parents, a VJP that returns one of its saved inputs, leaves whose gradients come from
the same array. Expected values are written out with NumPy in the test.
"""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import primitive
from chainrule.tensor import apply

# Outside the VJP contract (which allows g or views of g), but cheap to guard: a VJP that
# returns one of the forward's saved inputs. d(a*b)/da = b, returned as the array b itself
# when the incoming gradient is all ones (only used that way below).
_returns_saved_input = primitive(
    "test_engine_buffers_mul_returning_b", np.multiply,
    lambda g, ans, a, b: b if np.all(g == 1) else g * b,
    lambda g, ans, a, b: g * a)


def test_gradient_passed_to_both_parents_is_not_summed_in_place():
    # x + x: add's VJP hands the same array g to both arguments; the sum must be a new array.
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seed = np.array([0.5, -1.0, 2.0])
    kept = seed.copy()
    (gx,) = cr.grad(x + x, [x], grad_output=seed)
    np.testing.assert_array_equal(gx.data, 2 * kept)
    np.testing.assert_array_equal(seed, kept)


def test_leaves_fed_by_one_array_get_separate_grads():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert a.grad is not b.grad
    a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


@pytest.mark.parametrize("saved_first", [True, False])
def test_saved_input_returned_by_a_vjp_is_never_written(saved_first):
    b_values = np.array([2.0, -3.0, 0.5])
    a = cr.tensor([1.0, 1.0, 1.0], requires_grad=True)
    b = cr.from_numpy(b_values.copy())
    if saved_first:  # both orders in which a's two gradients can arrive
        square = (a * a).sum()
        y = apply(_returns_saved_input, a, b)
        loss = square + y.sum()
    else:
        y = apply(_returns_saved_input, a, b)
        loss = y.sum() + (a * a).sum()
    loss.backward()
    np.testing.assert_array_equal(a.grad, b_values + 2 * np.ones(3))
    np.testing.assert_array_equal(b.data, b_values)


def test_many_uses_sum_exactly_and_leave_values_alone():
    rng = np.random.default_rng(0)
    xv = rng.normal(size=(4, 3))
    x = cr.tensor(xv, requires_grad=True)
    y = x * 2.0
    loss = y.sum() + (y * y).sum() + (x * x * x).sum() + x.sum(axis=0).sum()
    y_before = y.data.copy()
    loss.backward()
    # d/dx: 2 * (1 + 2y) + 3x^2 + 1, with y = 2x
    np.testing.assert_allclose(x.grad, 2 * (1 + 4 * xv) + 3 * xv**2 + 1, rtol=1e-14)
    np.testing.assert_array_equal(x.data, xv)
    np.testing.assert_array_equal(y.data, y_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulated_gradients_keep_the_dtype(dtype):
    x = cr.tensor(np.array([0.5, -1.5], dtype=dtype), requires_grad=True)
    (x.exp().sum() + (x * x).sum() + x.sum()).backward()
    assert x.grad.dtype == dtype
    expected = np.exp(x.data.astype(np.float64)) + 2 * x.data + 1
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_grad_accumulates_across_backward_calls_without_aliasing():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * 3.0).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(first, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_captured_gradients_are_independent_of_leaf_grads():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y + y
    gy, gx = cr.grad(z.sum(), [y, x], retain_graph=True)
    gy.data[0] = 99.0
    np.testing.assert_array_equal(gx.data, [2.0, 2.0])
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_sum_gradient_is_broadcast_and_writable_only_by_the_engine():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    (x.sum(axis=1).sum() + x.mean()).backward()
    np.testing.assert_allclose(x.grad, np.full((2, 3), 1.0 + 1.0 / 6.0), rtol=1e-15)


def test_zero_dimensional_gradients_are_summed_not_dropped():
    # 0-d + 0-d in NumPy gives a scalar, which += would rebind instead of updating in place.
    x = cr.tensor(np.array(0.125), requires_grad=True)
    v2 = 1.25 + x
    v3 = x + x
    loss = (v2 * np.array(-0.5)).sum() + (v3 * np.array(0.375)).sum()
    loss.backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, -0.5 + 2 * 0.375, rtol=1e-15)


# A primitive whose forward keeps a residual (ops.Primitive.fwd): y = e^x keeps e^x again, as
# a distinct array, and its VJP records what it was given.
_seen_residuals: list = []


def _exp_vjp(g, ans, x, residual=None):
    _seen_residuals.append(residual)
    return g * (np.exp(x) if residual is None else residual)


_exp_keeping = primitive("test_engine_buffers_exp_keeping_residual", np.exp, _exp_vjp,
                         fwd=lambda x: (np.exp(x), np.exp(x)))


def test_residual_reaches_the_vjp_and_is_freed_with_the_saved_inputs():
    _seen_residuals.clear()
    x = cr.tensor([0.5, -1.0], requires_grad=True)
    y = apply(_exp_keeping, x)
    kept = y._node.residual
    np.testing.assert_array_equal(kept, np.exp([0.5, -1.0]))
    assert kept is not y.data  # the residual is fwd's second result, not the output
    y.sum().backward()
    assert len(_seen_residuals) == 1 and _seen_residuals[0] is kept
    np.testing.assert_array_equal(x.grad, np.exp([0.5, -1.0]))
    assert y._node.residual is None and y._node.released


def test_residual_is_kept_by_retain_graph_and_serves_a_second_backward():
    _seen_residuals.clear()
    x = cr.tensor([0.5, -1.0], requires_grad=True)
    y = apply(_exp_keeping, x)
    y.sum().backward(retain_graph=True)
    assert y._node.residual is not None
    y.sum().backward()
    assert len(_seen_residuals) == 2 and _seen_residuals[0] is _seen_residuals[1]
    np.testing.assert_array_equal(x.grad, 2 * np.exp([0.5, -1.0]))


def test_without_a_graph_the_plain_forward_runs_and_nothing_is_kept():
    x = cr.tensor([0.5, -1.0])  # no gradient needed: fn, not fwd
    y = apply(_exp_keeping, x)
    assert y._node is None
    np.testing.assert_array_equal(y.data, np.exp([0.5, -1.0]))


def test_vjp_called_without_the_residual_recomputes_it():
    _seen_residuals.clear()
    x = np.array([0.5, -1.0])
    g = np.array([1.0, 2.0])
    np.testing.assert_array_equal(_exp_keeping.vjp(0, g, np.exp(x), (x,), {}), g * np.exp(x))
    assert _seen_residuals == [None]


def test_a_residual_needs_per_argument_vjps():
    with pytest.raises(ValueError, match="per-argument VJPs"):
        primitive("test_engine_buffers_variadic_with_residual", np.add,
                  vjp_argnum=lambda i, g, ans, *a: g, fwd=lambda *a: (np.add(*a), None))
