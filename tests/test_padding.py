"""F.pad (PyTorch's pad tuple, last axis first) against PyTorch, HIPS autograd and gradcheck."""
from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover
    torch = None

NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
CASES = [
    ("constant", (2, 3, 4, 5), (1, 2)),
    ("constant", (2, 3, 4, 5), (1, 2, 0, 3)),
    ("constant", (3, 4), (2, 1, 1, 0)),
    ("reflect", (2, 3, 4, 5), (1, 2, 3, 1)),
    ("reflect", (2, 3, 6), (2, 5)),
    ("replicate", (2, 3, 4, 5), (2, 3, 1, 4)),
    ("replicate", (1, 2, 3), (4, 0)),
    ("circular", (2, 3, 4, 5), (1, 2, 4, 3)),
    ("circular", (1, 2, 3), (3, 3)),
]


def _pairs(ndim, pad):
    k = len(pad) // 2
    return [(0, 0)] * (ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]


def oracle(x, mode, pad, value=0.0):
    """np.pad's own modes in autograd.numpy: reflect, edge and wrap are PyTorch's reflect,
    replicate and circular."""
    if mode == "constant":
        return anp.pad(x, _pairs(x.ndim, pad), mode="constant", constant_values=value)
    # autograd differentiates only np.pad's constant mode: build the others from slices.
    for axis, (lo, hi) in enumerate(_pairs(x.ndim, pad)):
        n = x.shape[axis]
        take = lambda idx, axis=axis, x=x: x[(slice(None),) * axis + (idx,)]  # noqa: E731
        if mode == "reflect":
            left, right = np.arange(lo, 0, -1), np.arange(n - 2, n - 2 - hi, -1)
        elif mode == "replicate":
            left, right = np.zeros(lo, int), np.full(hi, n - 1)
        else:
            left, right = np.arange(n - lo, n), np.arange(hi)
        x = anp.concatenate([take(left), x, take(right)], axis=axis)
    return x


@pytest.mark.parametrize("mode, shape, pad", CASES, ids=str)
def test_pad_against_oracles(mode, shape, pad, rng):
    x = rng.standard_normal(shape)
    ref = oracle(x, mode, pad)
    np.testing.assert_array_equal(ref, np.pad(x, _pairs(x.ndim, pad), mode=NP_MODE[mode]))
    r = rng.standard_normal(ref.shape)
    X = cr.tensor(x, requires_grad=True)
    y = F.pad(X, pad, mode=mode)
    (y * r).sum().backward()
    np.testing.assert_array_equal(y.data, ref)
    expected = autograd.grad(lambda x: anp.sum(oracle(x, mode, pad) * r))(x)
    np.testing.assert_allclose(X.grad, expected, atol=1e-12)
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)
        ty = TF.pad(tx, pad, mode=mode)
        (ty * torch.tensor(r)).sum().backward()
        np.testing.assert_array_equal(y.data, ty.detach().numpy())
        np.testing.assert_allclose(X.grad, tx.grad.numpy(), atol=1e-12)


def test_pad_constant_value_and_negative_amounts(rng):
    x = rng.standard_normal((2, 4, 5))
    r = rng.standard_normal((2, 3, 6))
    X = cr.tensor(x, requires_grad=True)
    y = F.pad(X, (-1, 2, 0, -1), value=7.0)  # last axis: crop 1 before, add 2 after; then crop 1 after
    np.testing.assert_array_equal(y.data, np.pad(x[:, :3, 1:], ((0, 0), (0, 0), (0, 2)), constant_values=7.0))
    (y * r).sum().backward()
    expected = np.zeros_like(x)
    expected[:, :3, 1:] = r[:, :, :4]
    np.testing.assert_array_equal(X.grad, expected)
    if torch is not None:
        np.testing.assert_array_equal(y.data, TF.pad(torch.tensor(x), (-1, 2, 0, -1), value=7.0).numpy())


def test_pad_gradcheck_and_float32(rng):
    x = rng.standard_normal((2, 3, 4))
    assert cr.gradcheck(lambda x: (F.pad(x, (2, 1, 1, 2), mode="reflect") ** 2).sum(),
                        cr.tensor(x, requires_grad=True))
    X = cr.tensor(x.astype(np.float32), requires_grad=True)
    y = F.pad(X, (1, 1), mode="replicate")
    y.sum().backward()
    assert y.dtype == X.grad.dtype == np.float32


@pytest.mark.parametrize("call, parts", [
    (lambda: F.pad(np.ones((2, 3)), (1,)), ["even", "(1,)"]),
    (lambda: F.pad(np.ones(3), (1, 1, 1, 1)), ["2 axes", "(3,)"]),
    (lambda: F.pad(np.ones((2, 3)), (3, 0), mode="reflect"), ["smaller", "(2, 3)"]),
    (lambda: F.pad(np.ones((2, 3)), (4, 0), mode="circular"), ["at most", "(2, 3)"]),
    (lambda: F.pad(np.ones((2, 3)), (1, 0), mode="wrap"), ["mode", "'wrap'"]),
    (lambda: F.pad(np.ones((2, 3)), (-2, -1)), ["whole", "(2, 3)"]),
])
def test_pad_bad_input(call, parts):
    with pytest.raises(ValueError) as info:
        call()
    for part in parts:
        assert part in str(info.value)
