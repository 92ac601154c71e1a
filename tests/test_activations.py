"""Activations: every function against gradcheck, HIPS autograd and PyTorch, at random and edge points.

Each test is written once and parametrised over the activations (minitorch style). The
oracles are the same functions written independently in ``autograd.numpy`` and ``torch``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F


@dataclass
class Activation:
    name: str
    ours: Callable[[Any], Any]
    auto: Callable[[Any], Any]  # the same function in autograd.numpy
    torch: Callable[[Any, Any], Any] | None = None  # (torch module, tensor) -> tensor
    kwargs: dict = field(default_factory=dict)
    torch_rtol: float = 1e-10  # PyTorch computes a few float64 gradients with float32 constants

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.kwargs.items())})"


def _auto_softplus(x, beta=1.0, threshold=20.0):
    return anp.where(beta * x > threshold, x, anp.logaddexp(0.0, beta * x) / beta)


CASES = [
    Activation("sigmoid", F.sigmoid, lambda x: 1 / (1 + anp.exp(-x)), lambda t, x: t.sigmoid(x)),
    Activation("tanh", F.tanh, anp.tanh, lambda t, x: t.tanh(x)),
    Activation("relu", F.relu, lambda x: anp.where(x > 0, x, 0.0), lambda t, x: t.relu(x)),
    Activation("leaky_relu", lambda x: F.leaky_relu(x, negative_slope=0.1),
               lambda x: anp.where(x > 0, x, 0.1 * x),
               lambda t, x: t.nn.functional.leaky_relu(x, negative_slope=0.1), {"negative_slope": 0.1}),
    Activation("elu", lambda x: F.elu(x, alpha=1.3), lambda x: anp.where(x > 0, x, 1.3 * (anp.exp(x) - 1)),
               lambda t, x: t.nn.functional.elu(x, alpha=1.3), {"alpha": 1.3}),
    Activation("gelu", F.gelu, lambda x: 0.5 * x * (1 + asp.erf(x / math.sqrt(2))),
               lambda t, x: t.nn.functional.gelu(x)),
    Activation("gelu", lambda x: F.gelu(x, approximate="tanh"),
               lambda x: 0.5 * x * (1 + anp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
               lambda t, x: t.nn.functional.gelu(x, approximate="tanh"), {"approximate": "tanh"}),
    Activation("softplus", F.softplus, _auto_softplus, lambda t, x: t.nn.functional.softplus(x)),
    Activation("softplus", lambda x: F.softplus(x, beta=2.0, threshold=5.0),
               lambda x: _auto_softplus(x, 2.0, 5.0),
               lambda t, x: t.nn.functional.softplus(x, beta=2.0, threshold=5.0),
               {"beta": 2.0, "threshold": 5.0}),
    Activation("softmax", F.softmax, lambda x: anp.exp(x - asp.logsumexp(x, axis=-1, keepdims=True)),
               lambda t, x: t.softmax(x, dim=-1)),
    Activation("softmax", lambda x: F.softmax(x, axis=0),
               lambda x: anp.exp(x - asp.logsumexp(x, axis=0, keepdims=True)),
               lambda t, x: t.softmax(x, dim=0), {"axis": 0}),
    Activation("log_softmax", F.log_softmax, lambda x: x - asp.logsumexp(x, axis=-1, keepdims=True),
               lambda t, x: t.log_softmax(x, dim=-1)),
    Activation("log_softmax", lambda x: F.log_softmax(x, axis=0),
               lambda x: x - asp.logsumexp(x, axis=0, keepdims=True),
               lambda t, x: t.log_softmax(x, dim=0), {"axis": 0}),
]

def _auto_sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)

CASES += [  # PyTorch's other activations (issue 12)
    Activation("logsigmoid", F.logsigmoid, lambda x: -anp.logaddexp(0.0, -x),
               lambda t, x: t.nn.functional.logsigmoid(x)),
    Activation("silu", F.silu, lambda x: x * _auto_sigmoid(x), lambda t, x: t.nn.functional.silu(x)),
    Activation("selu", F.selu,
               lambda x: _SELU[1] * anp.where(x > 0, x, _SELU[0] * (anp.exp(anp.minimum(x, 0.0)) - 1)),
               lambda t, x: t.nn.functional.selu(x)),
    # torch's float64 celu backward takes 1/alpha in float32 (~1e-7 off); autograd agrees with us
    Activation("celu", lambda x: F.celu(x, alpha=0.7),
               lambda x: anp.where(x > 0, x, 0.7 * (anp.exp(anp.minimum(x, 0.0) / 0.7) - 1)),
               lambda t, x: t.nn.functional.celu(x, alpha=0.7), {"alpha": 0.7}, torch_rtol=1e-6),
    Activation("mish", F.mish, lambda x: x * anp.tanh(anp.logaddexp(0.0, x)),
               lambda t, x: t.nn.functional.mish(x)),
    Activation("hardswish", F.hardswish,
               lambda x: x * anp.where(x < -3, 0.0, anp.where(x > 3, 6.0, x + 3)) / 6,
               lambda t, x: t.nn.functional.hardswish(x)),
    # torch's hardsigmoid backward multiplies by 1.0f/6.0f, a float32 constant (~3e-8 off)
    Activation("hardsigmoid", F.hardsigmoid,
               lambda x: anp.where(x < -3, 0.0, anp.where(x > 3, 6.0, x + 3)) / 6,
               lambda t, x: t.nn.functional.hardsigmoid(x), torch_rtol=1e-7),
    Activation("hardtanh", F.hardtanh, lambda x: anp.where(x < -1, -1.0, anp.where(x > 1, 1.0, x)),
               lambda t, x: t.nn.functional.hardtanh(x)),
    Activation("hardtanh", lambda x: F.hardtanh(x, -2.0, 0.5),
               lambda x: anp.where(x < -2, -2.0, anp.where(x > 0.5, 0.5, x)),
               lambda t, x: t.nn.functional.hardtanh(x, -2.0, 0.5), {"min_val": -2.0, "max_val": 0.5}),
    Activation("relu6", F.relu6, lambda x: anp.where(x < 0, 0.0, anp.where(x > 6, 6.0, x)),
               lambda t, x: t.nn.functional.relu6(x)),
    Activation("softsign", F.softsign, lambda x: x / (1 + anp.abs(x)),
               lambda t, x: t.nn.functional.softsign(x)),
    Activation("softmin", F.softmin, lambda x: anp.exp(-x - asp.logsumexp(-x, axis=-1, keepdims=True)),
               lambda t, x: t.nn.functional.softmin(x, dim=-1)),
    Activation("softmin", lambda x: F.softmin(x, axis=0),
               lambda x: anp.exp(-x - asp.logsumexp(-x, axis=0, keepdims=True)),
               lambda t, x: t.nn.functional.softmin(x, dim=0), {"axis": 0}),
]
IDS = [repr(c) for c in CASES]
# Points where the derivative changes, and the overflow-prone extremes the issue names.
EDGES = np.array([-1e4, -100.0, -20.0, -3.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 2.5, 3.0, 5.0, 6.0, 20.0,
                  100.0, 1e4])


def _ours(case: Activation, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = cr.tensor(x, requires_grad=True)
    out = case.ours(t)
    (gx,) = cr.grad(out, [t], grad_output=g)
    return out.data, gx.data


def _auto(case: Activation, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return case.auto(x), autograd.grad(lambda a: anp.sum(case.auto(a) * g))(x)


def _torch(case: Activation, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    if case.torch is None:
        pytest.skip(f"{case.name}: no PyTorch counterpart")
    t = torch.tensor(x, requires_grad=True)
    out = case.torch(torch, t)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), t.grad.numpy()


def _assert_close(actual, expected, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture
def x_random(rng):
    return rng.normal(scale=2.0, size=(3, 4))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case, x_random):
    assert cr.gradcheck(case.ours, cr.tensor(x_random, requires_grad=True))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_autograd(case, x_random, rng):
    g = rng.normal(size=x_random.shape)
    value, grad = _ours(case, x_random, g)
    auto_value, auto_grad = _auto(case, x_random, g)
    _assert_close(value, auto_value)
    _assert_close(grad, auto_grad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(case, x_random, rng):
    g = rng.normal(size=x_random.shape)
    torch_value, torch_grad = _torch(case, x_random, g)
    value, grad = _ours(case, x_random, g)
    _assert_close(value, torch_value)
    _assert_close(grad, torch_grad, rtol=case.torch_rtol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_edges_match_torch_float64(case):
    """At 0 (kinks), at the softplus threshold and at +-1e4, as PyTorch, to 1e-10."""
    x = np.stack([EDGES, -EDGES[::-1]])  # two rows, so softmax along either axis is exercised
    g = np.ones_like(x)
    torch_value, torch_grad = _torch(case, x, g)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grad = _ours(case, x, g)
    _assert_close(value, torch_value)
    _assert_close(grad, torch_grad, rtol=case.torch_rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_extremes_finite_without_warnings(case, dtype):
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grad = _ours(case, x, np.ones_like(x))
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert value.dtype == dtype and grad.dtype == dtype


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_gradients_that_underflow_raise_nothing_and_match_torch(case):
    """At +-80..1e4 in float32, g * sigma(x)(1 - sigma(x)) and the softmax products are subnormal
    or 0: the intended values, so errstate(all='raise') must not trip on them (as in the forwards)."""
    x = np.array([[-80, -1e4, -1, 0, 1, 1e4, 80], [80, 80, -80, -89, 0.5, 89, -0.5]], dtype=np.float32)
    g = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)  # not all ones: scaled products underflow
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grad = _ours(case, x, g.astype(np.float32))
    assert value.dtype == np.float32 and grad.dtype == np.float32
    torch_value, torch_grad = _torch(case, x.astype(np.float64), g)
    np.testing.assert_allclose(value, torch_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32_and_agrees(case, x_random):
    x32 = x_random.astype(np.float32)
    value, grad = _ours(case, x32, np.ones_like(x32))
    assert value.dtype == np.float32 and grad.dtype == np.float32
    value64, grad64 = _ours(case, x32.astype(np.float64), np.ones(x32.shape))
    np.testing.assert_allclose(value, value64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, grad64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_zero_dim_and_python_input(case):
    """A 0-d tensor (elementwise functions) or a plain list is accepted, and gives float64."""
    if case.name in ("softmax", "log_softmax", "softmin"):
        out = case.ours([1.0, 2.0, 3.0])
    else:
        out = case.ours(cr.tensor(0.5))
        assert out.shape == ()
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, case.auto(np.array([1.0, 2.0, 3.0]) if out.ndim else 0.5),
                               rtol=1e-12)


def test_relu_derivative_at_zero_is_zero():
    x = cr.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_sigmoid_is_exact_at_extremes():
    # sigma(-1e4) underflows to 0 and sigma(1e4) is 1: no overflow in e^{-x}.
    assert F.sigmoid(cr.tensor([-1e4, 0.0, 1e4])).tolist() == [0.0, 0.5, 1.0]


def test_registered_as_single_primitives():
    """The backward pass is the closed-form derivative: one node per call, named by the function."""
    x = cr.tensor([0.5, -0.5], requires_grad=True)
    for name, fn in F.ACTIVATIONS.items():
        assert fn(x).op == name
    assert F.sigmoid(x)._node.parents[0] is x


@pytest.mark.parametrize("call, message", [
    (lambda: F.gelu([1.0], approximate="fast"), "approximate"),
    (lambda: F.softplus([1.0], beta=0), "beta"),
    (lambda: F.softmax([1.0, 2.0], axis=1), "axis"),
    (lambda: F.celu([1.0], alpha=0.0), "alpha"),
    (lambda: F.hardtanh([1.0], min_val=1.0, max_val=-1.0), "min_val"),
    # a 0-d input is one class (PyTorch's softmax of a scalar): only axis 0 or -1 is wrong
    (lambda: F.log_softmax(cr.tensor(1.0), axis=1), "0 or -1 for a 0-d input"),
    (lambda: F.softmin(cr.tensor(1.0), axis=1), "0 or -1 for a 0-d input"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_registries_and_lookup():
    assert set(F.ACTIVATIONS) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus",
                                  "softmax", "log_softmax", "logsigmoid", "silu", "selu", "celu",
                                  "mish", "hardswish", "hardsigmoid", "hardtanh", "relu6",
                                  "softsign", "softmin"}
    assert F.get_activation("ReLU") is F.relu
    assert F.get_activation("logistic") is F.sigmoid
    assert F.get_activation("LeakyReLU") is F.leaky_relu
    assert F.get_activation("SiLU") is F.silu
    assert F.get_activation("ReLU6") is F.relu6 and F.get_activation("LogSigmoid") is F.logsigmoid
    with pytest.raises(ValueError, match="valid names: sigmoid"):
        F.get_activation("swish")


# --- F.linear: the affine map of a dense layer (PyTorch's weight layout) ------------------------

# bias "shared": a 0-d bias, one for every unit (torch's F.linear broadcasts it; issue 11)
LINEAR_SHAPES = [((5, 3), True), ((5, 3), False), ((3,), True), ((2, 4, 3), True),
                 ((5, 3), "shared"), ((3,), "shared"), ((2, 4, 3), "shared")]


def _linear_args(rng, x_shape, bias):
    x, w = rng.normal(size=x_shape), rng.normal(size=(2, 3))
    if bias == "shared":
        return [x, w, np.asarray(rng.normal())]
    return [x, w, rng.normal(size=(2,))] if bias else [x, w]


@pytest.mark.parametrize("x_shape, bias", LINEAR_SHAPES)
def test_linear_gradcheck(rng, x_shape, bias):
    args = [cr.tensor(a, requires_grad=True) for a in _linear_args(rng, x_shape, bias)]
    assert cr.gradcheck(F.linear, *args)


@pytest.mark.parametrize("x_shape, bias", LINEAR_SHAPES)
def test_linear_matches_autograd_and_torch(rng, x_shape, bias):
    args = _linear_args(rng, x_shape, bias)
    tensors = [cr.tensor(a, requires_grad=True) for a in args]
    out = F.linear(*tensors)
    g = rng.normal(size=out.shape)
    grads = [t.data for t in cr.grad(out, tensors, grad_output=g)]

    def auto_linear(x, w, b=None):
        y = anp.dot(x, w.T)
        return y if b is None else y + b

    _assert_close(out.data, auto_linear(*args))
    for i, ours in enumerate(grads):
        def f(a, i=i):
            return anp.sum(auto_linear(*args[:i], a, *args[i + 1:]) * g)
        _assert_close(ours, autograd.grad(f)(args[i]))

    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    targs = [torch.tensor(a, requires_grad=True) for a in args]
    tout = torch.nn.functional.linear(*targs)
    tout.backward(torch.tensor(g))
    _assert_close(out.data, tout.detach().numpy())
    for ours, t in zip(grads, targs, strict=True):
        _assert_close(ours, t.grad.numpy())


def test_linear_is_one_node_and_keeps_float32(rng):
    x, w, b = (cr.tensor(a.astype(np.float32), requires_grad=True)
               for a in _linear_args(rng, (4, 3), True))
    y = F.linear(x, w, b)
    assert y.op == "linear" and y._node.parents == (x, w, b)
    assert F.linear(x, w).op == "linear_no_bias"
    y.sum().backward()
    assert y.dtype == np.float32 and all(t.grad.dtype == np.float32 for t in (x, w, b))


@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((4, 3), (2, 4), None, r"input shape \(4, 3\) does not end in in_features = 4"),
    ((4, 3), (3,), None, "weight must be 2-D"),
    ((4, 3), (2, 3), (3,), r"bias must have shape \(2,\) or be 0-d"),
    ((4, 3), (2, 3), (1, 2), r"bias must have shape \(2,\) or be 0-d"),
])
def test_linear_shape_errors(x_shape, w_shape, b_shape, message):
    bias = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises(ValueError, match=message):
        F.linear(np.zeros(x_shape), np.zeros(w_shape), bias)


def test_linear_takes_array_likes_as_other_functions_do():
    # nested lists and integers are arrays (float64), as for every activation and loss
    W = cr.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], requires_grad=True)
    y = F.linear([[1, 2, 3]], W, [0.5, -0.5])
    np.testing.assert_allclose(y.data, [[0.5 - 2.0 + 6.0 + 0.5, 1.5 + 0.5 - 1.5 - 0.5]])
    y.sum().backward()
    np.testing.assert_array_equal(W.grad, [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="linear: input must be numeric, got dtype <U1"):
        F.linear(["a", "b", "c"], W)
    with pytest.raises(TypeError, match="linear: bias must be numeric"):
        F.linear([1.0, 2.0, 3.0], W, ["p", "q"])


@pytest.mark.parametrize("shape, axis", [((0, 3), 0), ((2, 0), 1), ((0, 3), 1), ((2, 0, 3), 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_an_empty_input_is_empty_as_in_torch(name, shape, axis):
    # found by the differential tests' generator: NumPy's maximum over an empty axis raised
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for the result's shape")
    x = cr.tensor(np.zeros(shape, dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log-of-zero warning either
        y = getattr(F, name)(x, axis=axis)
        y.sum().backward()
    expected = getattr(torch, name)(torch.zeros(shape), dim=axis)
    assert y.shape == tuple(expected.shape) and y.dtype == np.float32
    assert x.grad.shape == shape and x.grad.dtype == np.float32
