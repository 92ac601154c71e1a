"""In-place operations and version counters, against PyTorch's behaviour.

In-place operators (``+=``, ``-=``, ``*=``, ``/=``, ``**=``, ``t[i] = v``) change the tensor's
data in place and are recorded when a gradient is needed (the tensor's history is rebased, as
PyTorch does); on a leaf that requires grad they raise. A saved value changed after its op was
recorded makes the backward pass raise ``RuntimeError`` naming the op instead of returning a
wrong gradient. Writes that bypass chainrule (``t.data[...] =``, the array given to
``from_numpy``) are caught under ``detect_anomaly``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F

torch = pytest.importorskip("torch", reason="PyTorch is the oracle of these tests; not installed")

X = np.array([0.5, -1.5, 2.0])
V = np.array([0.25, 3.0, -0.75])


def _both(body: Callable[[Any, Any, Any], Any]) -> tuple[list, list]:
    """Run ``body(lib, x, v)`` with chainrule and with torch; return both sets of gradients."""
    x, v = cr.tensor(X, requires_grad=True), cr.tensor(V, requires_grad=True)
    body(cr, x, v).backward()
    tx, tv = (torch.tensor(a, requires_grad=True) for a in (X, V))
    body(torch, tx, tv).backward()
    ours = [np.zeros(3) if g is None else g for g in (x.grad, v.grad)]
    theirs = [np.zeros(3) if t.grad is None else t.grad.numpy() for t in (tx, tv)]
    return ours, theirs


def _iadd(lib, x, v):
    y = x * 2
    y += v * x
    return (y * y).sum()


def _isub(lib, x, v):
    y = lib.exp(x) * 1  # torch's exp saves its output: changing it in place would be refused
    y -= v
    return (y * x).sum()


def _imul(lib, x, v):
    y = x + 1
    y *= v
    return (y ** 2).sum()


def _idiv(lib, x, v):
    y = x * x
    y /= (v * v + 1)
    return y.sum()


def _ipow(lib, x, v):
    y = x * 1.0
    y **= 3
    return (y * v).sum()


def _setitem_row(lib, x, v):
    y = x * 1.0
    y[1] = v[0] * 2
    return (y * y).sum()


def _setitem_mask(lib, x, v):
    y = x * v
    mask = np.array([True, False, True])
    y[lib.tensor(mask) if lib is cr else torch.from_numpy(mask)] = 0.5 * v[2]
    return (y ** 3).sum()


def _setitem_into_constant(lib, x, v):
    buf = lib.zeros(3, dtype=lib.float64) if lib is torch else cr.zeros(3)
    buf[0] = x[1] * v[1]  # a leaf without grad becomes part of the graph, as in PyTorch
    buf[2] = x[0]
    return (buf * buf).sum()


def _chain_of_inplace(lib, x, v):
    y = x * 1.0
    y += 1
    y *= v
    y[0] = x[1] * v[2]
    y /= 3
    return (y * x).sum()


BODIES = [_iadd, _isub, _imul, _idiv, _ipow, _setitem_row, _setitem_mask, _setitem_into_constant,
          _chain_of_inplace]


@pytest.mark.parametrize("body", BODIES, ids=[b.__name__ for b in BODIES])
def test_recorded_inplace_gradients_match_torch(body) -> None:
    ours, theirs = _both(body)
    for a, b in zip(ours, theirs, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_inplace_changes_the_same_array_and_shares_with_views() -> None:
    a = np.zeros(3)
    t = cr.from_numpy(a)
    t += 1
    t[0] = 5
    np.testing.assert_array_equal(a, [5.0, 1.0, 1.0])  # the caller's array, in place
    assert t.data is a and t.version == 2


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "**=", "[0] ="])
def test_inplace_on_a_leaf_that_requires_grad_raises_as_torch(op: str) -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    code = f"x{op} 2.0" if op.startswith("[") else f"x {op} 2.0"
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        exec(code, {"x": x})
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        exec(code, {"x": tx})
    with cr.no_grad():  # an optimizer's update: allowed, and versioned
        exec(code, {"x": x})
    assert x.version == 1 and x.is_leaf


def test_saved_input_changed_after_forward_raises_naming_the_op() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    with cr.no_grad():
        x -= 0.1
    with pytest.raises(RuntimeError, match=r"in-place operation: its input 0 .* of op 'mul'"):
        y.backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ty = (tx * tx).sum()
    with torch.no_grad():
        tx -= 0.1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()


def test_saved_output_changed_after_forward_raises() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.exp(x)  # exp's VJP reads its output
    z = y.sum()
    with cr.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="its output .* of op 'exp'"):
        z.backward()


def test_an_optimizer_step_between_forward_and_backward_raises() -> None:
    layer = cr.nn.Linear(2, 1)
    opt = cr.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(cr.tensor([[1.0, 2.0]])).sum()
    loss.backward(retain_graph=True)
    opt.step()  # changes the weights the graph saved
    with pytest.raises(RuntimeError, match="op 'linear'"):
        loss.backward()


def test_changing_a_copy_or_after_backward_is_fine() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with cr.no_grad():
        x -= 0.1  # after the backward pass: nothing saved is needed any more
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    (x * 3).sum().backward()  # a new graph records the new version
    np.testing.assert_allclose(x.grad, [5.0, 7.0])


def test_earlier_use_of_a_rebased_tensor_raises() -> None:
    """z used y before y *= 2 rebased it; PyTorch would give z's gradient (add saves nothing),
    chainrule refuses (documented): its graph edges are the tensors themselves."""
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x + 0
    z = y + 1
    y *= 2
    with pytest.raises(RuntimeError, match="op 'add'"):
        (z + y).sum().backward()


def test_version_counts_inplace_changes_as_torch() -> None:
    t, tt = cr.zeros(2), torch.zeros(2)
    for target in (t, tt):
        target += 1
        target[0] = 3
        target *= 2
    assert t.version == tt._version == 3


def test_writes_that_bypass_chainrule_are_caught_under_detect_anomaly() -> None:
    a = np.array([1.0, 2.0])
    with cr.detect_anomaly():
        x = cr.from_numpy(a, requires_grad=True)
        y = (x * x).sum()
        a[0] = 10.0  # through the NumPy array: no version counter can see it
        with pytest.raises(RuntimeError, match="bypassed chainrule"):
            y.backward()
        z = (x * x).sum()
        x.data[1] = 0.0
        with pytest.raises(RuntimeError, match="op 'mul'"):
            z.backward()


def test_inplace_keeps_dtype_and_shape_rules_of_numpy() -> None:
    t = cr.tensor(np.array([1.0, 2.0], np.float32))
    t += np.float64(0.5)  # a scalar never changes the dtype
    assert t.dtype == np.float32
    t += np.array([1.0, 1.0])  # float64 array into float32: NumPy's same_kind cast
    assert t.dtype == np.float32
    i = cr.tensor([1, 2])
    with pytest.raises(TypeError):
        i += 0.5  # NumPy: cannot cast float64 to int64 in place
    with pytest.raises(ValueError, match="cannot broadcast"):
        t += np.ones((2, 2))


def test_ndarray_out_of_a_tensor_that_requires_grad_is_refused() -> None:
    a = np.zeros(2)
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="drop the gradient"):
        a += x
    with cr.no_grad():
        a += x
    np.testing.assert_array_equal(a, [1.0, 2.0])


def test_inplace_through_F_functions_and_backward_twice() -> None:
    x = cr.tensor([[0.5, -0.2]], requires_grad=True)
    h = F.tanh(x)
    h *= 2
    loss = F.mse_loss(h, np.zeros((1, 2)))
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    tx = torch.tensor([[0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    th = torch.tanh(tx).clone()  # torch refuses to change tanh's saved output in place;
    th *= 2  # chainrule moves the history to a copy (the stand-in), so it can
    torch.nn.functional.mse_loss(th, torch.zeros(1, 2, dtype=torch.float64)).backward()
    np.testing.assert_allclose(first, tx.grad.numpy(), rtol=1e-14)


def test_reading_a_tensor_then_changing_it_raises_as_torch() -> None:
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1.0
        z = y[1] * y[2]  # reads y (getitem saves its input)
        y *= 2
        with pytest.raises(RuntimeError, match="in-?place operation"):
            (z + y.sum()).backward()
