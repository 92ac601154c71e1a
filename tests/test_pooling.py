"""F.max_pool1d/2d and F.avg_pool1d/2d against PyTorch, HIPS autograd and finite differences.

The autograd oracles stack one shifted, strided slice of the padded input per kernel cell and
take the max or the sum; the average's divisor is computed cell by cell with PyTorch's own
rule (window clipped to the padded input, then to the input unless count_include_pad).
"""
from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass

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
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
needs_create_graph = pytest.mark.skipif("create_graph" not in inspect.signature(cr.grad).parameters,
                                        reason="cr.grad(create_graph=True) (issue 13) is not in this tree")


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    shape: tuple[int, ...]
    kw: tuple[tuple[str, object], ...]

    @property
    def d(self) -> int:
        return 2 if len(self.shape) in (3, 4) and "1d" not in self.kind else 1

    def kwargs(self) -> dict:
        return dict(self.kw)

    def __repr__(self) -> str:
        return f"{self.kind}{self.shape}{dict(self.kw)}"


def P(kind: str, shape: tuple[int, ...], **kw: object) -> Pool:
    return Pool(kind, shape, tuple(kw.items()))


CASES = [
    P("max", (2, 3, 6, 6), kernel_size=2),
    P("max", (2, 3, 7, 6), kernel_size=3, stride=2, padding=1),
    P("max", (2, 2, 7, 5), kernel_size=(3, 2), stride=(1, 2), padding=(1, 1)),  # non-square, overlapping
    P("max", (1, 2, 9, 8), kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    P("max", (3, 7, 8), kernel_size=2, ceil_mode=True),  # unbatched
    P("max1d", (2, 3, 10), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    P("avg", (2, 3, 6, 6), kernel_size=2),
    P("avg", (2, 3, 7, 6), kernel_size=3, stride=2, padding=1),
    P("avg", (2, 3, 7, 6), kernel_size=3, stride=2, padding=1, count_include_pad=False),
    P("avg", (1, 2, 7, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    P("avg", (1, 2, 7, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    P("avg", (2, 2, 7, 8), kernel_size=(2, 3), stride=(3, 2), padding=1, divisor_override=5),
    P("avg1d", (2, 3, 10), kernel_size=4, stride=3, padding=2, ceil_mode=True),
]

OURS = {"max": F.max_pool2d, "max1d": F.max_pool1d, "avg": F.avg_pool2d, "avg1d": F.avg_pool1d}


def _geometry(case: Pool):
    kw = case.kwargs()
    d = case.d
    tup = lambda v, default: (default,) * d if v is None else ((v,) * d if isinstance(v, int) else tuple(v))  # noqa: E731
    k = tup(kw["kernel_size"], None)
    s = tup(kw.get("stride"), None) if kw.get("stride") is not None else k
    p = tup(kw.get("padding", 0), 0)
    dl = tup(kw.get("dilation", 1), 1)
    spatial = case.shape[-d:]
    out = []
    for i in range(d):
        num = spatial[i] + 2 * p[i] - dl[i] * (k[i] - 1) - 1
        n = (-(-num // s[i]) if kw.get("ceil_mode") else num // s[i]) + 1
        if kw.get("ceil_mode") and (n - 1) * s[i] >= spatial[i] + p[i]:
            n -= 1
        out.append(n)
    return k, s, p, dl, out


def oracle(case: Pool, x):
    """The pooling in autograd.numpy: every kernel cell's strided slice, stacked, then max or sum."""
    d = case.d
    k, s, p, dl, out = _geometry(case)
    spatial = x.shape[-d:]
    extra = [max(0, (out[i] - 1) * s[i] + dl[i] * (k[i] - 1) + 1 - spatial[i] - 2 * p[i]) for i in range(d)]
    fill = -np.inf if case.kind.startswith("max") else 0.0
    pads = [(0, 0)] * (x.ndim - d) + [(p[i], p[i] + extra[i]) for i in range(d)]
    xp = anp.pad(x, pads, mode="constant", constant_values=fill)
    slices = []
    for cell in itertools.product(*(range(n) for n in k)):
        index = (Ellipsis,) + tuple(slice(cell[i] * dl[i], cell[i] * dl[i] + s[i] * (out[i] - 1) + 1, s[i])
                                    for i in range(d))
        slices.append(xp[index])
    stacked = anp.stack(slices)
    if case.kind.startswith("max"):
        return anp.max(stacked, axis=0)
    return anp.sum(stacked, axis=0) / _divisor(case, spatial)


def _divisor(case: Pool, spatial) -> np.ndarray:
    """PyTorch's avg-pool divisor, cell by cell (aten/src/ATen/native/AvgPoolKernel.cpp's rule)."""
    kw = case.kwargs()
    if kw.get("divisor_override"):
        return np.asarray(float(kw["divisor_override"]))
    k, s, p, _, out = _geometry(case)
    per_axis = []
    for i in range(case.d):
        counts = []
        for o in range(out[i]):
            start = o * s[i] - p[i]
            end = min(start + k[i], spatial[i] + p[i])
            size = end - start
            start, end = max(start, 0), min(end, spatial[i])
            counts.append(size if kw.get("count_include_pad", True) else end - start)
        per_axis.append(np.array(counts, dtype=float))
    return per_axis[0] if case.d == 1 else np.outer(per_axis[0], per_axis[1])


def _run(case: Pool, x, r):
    X = cr.tensor(x, requires_grad=True)
    y = OURS[case.kind](X, **case.kwargs())
    (y * r).sum().backward()
    return y.data, X.grad


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_pool_against_autograd(case: Pool, rng):
    x = rng.standard_normal(case.shape)  # distinct values: no ties, where autograd splits the gradient
    ref = oracle(case, x)
    r = rng.standard_normal(ref.shape)
    y, gx = _run(case, x, r)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12)
    expected = autograd.grad(lambda x: anp.sum(oracle(case, x) * r))(x)
    np.testing.assert_allclose(gx, expected, rtol=0, atol=1e-12)


@needs_torch
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_pool_against_torch(case: Pool, ties: bool, rng):
    x = rng.standard_normal(case.shape)
    if ties:
        x = np.round(x)  # many equal values: the first maximum of a window takes the gradient
    tx = torch.tensor(x, requires_grad=True)
    fn = {"max": TF.max_pool2d, "max1d": TF.max_pool1d, "avg": TF.avg_pool2d,
          "avg1d": TF.avg_pool1d}[case.kind]
    ty = fn(tx, **case.kwargs())
    r = rng.standard_normal(tuple(ty.shape))
    (ty * torch.tensor(r)).sum().backward()
    y, gx = _run(case, x, r)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=0, atol=1e-12)


@needs_torch
def test_max_pool_return_indices_as_torch(rng):
    x = np.round(rng.standard_normal((2, 3, 7, 6)))
    y, idx = F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    ty, tidx = TF.max_pool2d(torch.tensor(x), 3, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(y.data, ty.numpy())
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    assert idx.dtype == np.int64


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[8], CASES[12]], ids=repr)
def test_pool_gradcheck(case: Pool, rng):
    x = rng.standard_normal(case.shape)
    r = rng.standard_normal(OURS[case.kind](x, **case.kwargs()).shape)
    assert cr.gradcheck(lambda x: (OURS[case.kind](x, **case.kwargs()) * r).sum(),
                        cr.tensor(x, requires_grad=True))


@pytest.mark.parametrize("case", [CASES[1], CASES[5], CASES[7], CASES[12]], ids=repr)
def test_pool_float32_stays_float32(case: Pool, rng):
    x = rng.standard_normal(case.shape).astype(np.float32)
    y, gx = _run(case, x, np.float32(1))
    assert y.dtype == np.float32 and gx.dtype == np.float32
    y64, g64 = _run(case, x.astype(np.float64), 1.0)
    np.testing.assert_allclose(y, y64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, g64, rtol=1e-6, atol=1e-6)


def test_max_pool_gradient_by_hand():
    """x = [[1, 3], [3, 2]] in one 2 x 2 window: the max 3 appears twice; PyTorch (and chainrule)
    send the whole gradient to the first in row-major order, (0, 1)."""
    x = cr.tensor([[[[1.0, 3.0], [3.0, 2.0]]]], requires_grad=True)
    y = F.max_pool2d(x, 2)
    y.backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(x.grad, [[[[0.0, 5.0], [0.0, 0.0]]]])


def test_overlapping_windows_add_their_gradients():
    """kernel 2, stride 1 on [0, 5, 1]: both windows pick the 5, so its gradient is g1 + g2."""
    x = cr.tensor([[[0.0, 5.0, 1.0]]], requires_grad=True)
    F.max_pool1d(x, 2, stride=1).backward(np.array([[[2.0, 3.0]]]))
    np.testing.assert_array_equal(x.grad, [[[0.0, 5.0, 0.0]]])


@pytest.mark.parametrize("call, parts", [
    (lambda: F.max_pool2d(np.ones((1, 1, 4, 4)), 3, padding=2), ["padding 2", "half"]),
    (lambda: F.max_pool2d(np.ones((1, 1, 2, 2)), 3), ["(1, 1, 2, 2)", "(3, 3)"]),
    (lambda: F.max_pool2d(np.ones((4, 4)), 2), ["(4, 4)", "3-D", "4-D"]),
    (lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 0), ["kernel_size", ">= 1"]),
    (lambda: F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, divisor_override=0), ["divisor_override"]),
])
def test_pool_bad_input(call, parts):
    with pytest.raises(ValueError) as info:
        call()
    for part in parts:
        assert part in str(info.value)


@needs_create_graph
@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[7], CASES[10], CASES[12]], ids=repr)
def test_pool_double_backward(case: Pool, rng):
    """grad of <v, dL/dx> for L = sum(r * pool(x)^2), against autograd's own second derivative
    (distinct values: no ties) and torch's double backward."""
    x = rng.standard_normal(case.shape)
    r = rng.standard_normal(oracle(case, x).shape)
    v = rng.standard_normal(x.shape)
    X = cr.tensor(x, requires_grad=True)
    (gx,) = cr.grad((OURS[case.kind](X, **case.kwargs()) ** 2 * r).sum(), [X], create_graph=True)
    (gx * v).sum().backward()
    inner = autograd.grad(lambda x: anp.sum(oracle(case, x) ** 2 * r))
    np.testing.assert_allclose(X.grad, autograd.grad(lambda x: anp.sum(inner(x) * v))(x), rtol=0, atol=1e-10)
    if torch is not None:
        fn = {"max": TF.max_pool2d, "max1d": TF.max_pool1d, "avg": TF.avg_pool2d,
              "avg1d": TF.avg_pool1d}[case.kind]
        tx = torch.tensor(x, requires_grad=True)
        (tg,) = torch.autograd.grad((fn(tx, **case.kwargs()) ** 2 * torch.tensor(r)).sum(), [tx],
                                    create_graph=True)
        (tg * torch.tensor(v)).sum().backward()
        np.testing.assert_allclose(X.grad, tx.grad.numpy(), rtol=0, atol=1e-10)


def test_empty_batch_as_torch():
    """A batch of 0 images pools to a batch of 0, as in PyTorch (shape (0, 3, 2, 2))."""
    assert F.max_pool2d(np.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)
    assert F.avg_pool2d(np.zeros((0, 3, 4, 4)), 2).shape == (0, 3, 2, 2)
