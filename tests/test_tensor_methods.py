"""Tensor methods of issue 12 (x.sin(), x.relu(), x.var(axis=0), ...): each is the function it
names, with the same value, the same recorded op and the same gradient."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F

UNARY_NUMPY = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
               "arccosh", "arctanh", "exp2", "log2", "log10", "expm1", "log1p", "square",
               "reciprocal", "sign", "floor", "ceil", "trunc", "erf"]
UNARY_FUNCTIONAL = ["relu", "sigmoid", "tanh", "logsigmoid", "silu", "selu", "mish", "hardswish",
                    "hardsigmoid", "relu6", "softsign"]
DOMAIN = {"arccosh": (1.2, 3.0), "arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9),
          "arctanh": (-0.9, 0.9), "log2": (0.5, 2.0), "log10": (0.5, 2.0), "log1p": (0.5, 2.0),
          "reciprocal": (0.5, 2.0)}

CALLS = (
    [(f"x.{n}()", lambda x, n=n: getattr(x, n)(), lambda x, n=n: getattr(cr, n)(x), n)
     for n in UNARY_NUMPY]
    + [(f"x.{n}()", lambda x, n=n: getattr(x, n)(), lambda x, n=n: getattr(F, n)(x), n)
       for n in UNARY_FUNCTIONAL]
    + [
        ("x.softmax(0)", lambda x: x.softmax(0), lambda x: F.softmax(x, axis=0), None),
        ("x.log_softmax()", lambda x: x.log_softmax(), lambda x: F.log_softmax(x), None),
        ("x.round(1)", lambda x: x.round(1), lambda x: cr.round(x, 1), None),
        ("x.prod(1)", lambda x: x.prod(1), lambda x: cr.prod(x, 1), None),
        ("x.var(0, ddof=1)", lambda x: x.var(0, ddof=1), lambda x: cr.var(x, 0, ddof=1), None),
        ("x.std(keepdims)", lambda x: x.std(keepdims=True), lambda x: cr.std(x, keepdims=True), None),
        ("x.cumsum(1)", lambda x: x.cumsum(1), lambda x: cr.cumsum(x, 1), None),
        ("x.cumprod()", lambda x: x.cumprod(), lambda x: cr.cumprod(x), None),
        ("x.logsumexp(-1)", lambda x: x.logsumexp(-1), lambda x: cr.logsumexp(x, -1), None),
        ("x.ravel()", lambda x: x.ravel(), lambda x: cr.ravel(x), None),
        ("x.flatten()", lambda x: x.flatten(), lambda x: cr.reshape(x, (-1,)), None),
        ("x.flip(1)", lambda x: x.flip(1), lambda x: cr.flip(x, 1), None),
        ("x.roll(1, 0)", lambda x: x.roll(1, 0), lambda x: cr.roll(x, 1, 0), None),
        ("x.diagonal(1)", lambda x: x.diagonal(1), lambda x: cr.diagonal(x, 1), None),
        ("x.trace()", lambda x: x.trace(), lambda x: cr.trace(x), None),
        ("x.dot(x.T)", lambda x: x.dot(x.T), lambda x: cr.dot(x, x.T), None),
        ("x.nan_to_num()", lambda x: x.nan_to_num(), lambda x: cr.nan_to_num(x), None),
    ]
)


@pytest.mark.parametrize("label, method, function, name", CALLS, ids=[c[0] for c in CALLS])
def test_method_is_the_function(label, method, function, name, rng):
    lo, hi = DOMAIN.get(name, (-2.0, 2.0))
    data = rng.uniform(lo, hi, size=(3, 4))
    a, b = cr.tensor(data, requires_grad=True), cr.tensor(data, requires_grad=True)
    out_a, out_b = method(a), function(b)
    assert out_a.op == out_b.op
    np.testing.assert_array_equal(out_a.data, out_b.data)
    w = rng.normal(size=out_a.shape)
    out_a.backward(w)
    out_b.backward(w)
    np.testing.assert_array_equal(a.grad, b.grad)


def test_non_differentiable_methods():
    x = cr.tensor([[0.5, -2.0, 3.0], [1.0, 0.0, -1.0]], requires_grad=True)
    assert x.argmax().item() == 2 and x.argmin(axis=1).tolist() == [1, 2]
    assert x.any(axis=0).tolist() == [True, True, True] and not x.all().item()
    assert not x.argmax(keepdims=True, axis=0).requires_grad
