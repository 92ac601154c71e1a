"""F.conv1d/conv2d/conv3d against PyTorch, HIPS autograd and finite differences.

Every case runs the forward and both (three, with a bias) gradients against the two oracles to
1e-10 in float64. The autograd oracle is written independently here, the textbook way: one
shifted slice of the padded input per kernel offset, summed (a Python loop over the kernel's
cells and the groups, which is fine in an oracle). The three conv primitives' own VJPs (the
second derivatives of a convolution) are checked against autograd's second derivatives and
by central differences.
"""
from __future__ import annotations

import inspect
import itertools
import math
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F
from chainrule.functional.conv import conv_input_grad_prim, conv_prim, conv_weight_grad_prim
from chainrule.tensor import apply

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover - CI installs torch
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
needs_create_graph = pytest.mark.skipif("create_graph" not in inspect.signature(cr.grad).parameters,
                                        reason="cr.grad(create_graph=True) (issue 13) is not in this tree")


@dataclass(frozen=True)
class Case:
    d: int
    n: int
    c: int
    o: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = True
    unbatched: bool = False

    def __repr__(self) -> str:
        return (f"conv{self.d}d(n={self.n},c={self.c},o={self.o},x={self.spatial},k={self.kernel},"
                f"s={self.stride},p={self.padding},d={self.dilation},g={self.groups},b={self.bias}"
                f"{',unbatched' if self.unbatched else ''})")


CASES = [
    Case(2, 2, 3, 4, (5, 6), (3, 3)),
    Case(2, 2, 3, 4, (7, 5), (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),  # non-square
    Case(2, 2, 4, 6, (6, 7), (3, 3), stride=2, padding=1, groups=2),
    Case(2, 1, 4, 8, (5, 5), (3, 3), padding=1, groups=4),  # depthwise, batch of 1
    Case(2, 2, 3, 2, (6, 5), (2, 4), padding="same", dilation=2),  # even kernel: odd pad at the end
    Case(2, 2, 3, 2, (6, 5), (3, 3), padding="valid", bias=False),
    Case(2, 2, 2, 3, (9, 7), (2, 2), stride=3, padding=3),  # padding beyond the kernel; cells never reached
    Case(2, 1, 2, 3, (4, 4), (4, 4)),  # the kernel covers the image: 1 x 1 output
    Case(2, 1, 3, 2, (5, 4), (3, 3), stride=(1, 2), padding=1, unbatched=True),
    Case(1, 3, 4, 4, (9,), (3,), stride=2, padding=1, dilation=2, groups=2),
    Case(1, 2, 3, 5, (8,), (4,), padding="same"),
    Case(1, 1, 1, 1, (5,), (5,), padding=2, bias=False),
    Case(3, 1, 2, 2, (4, 3, 5), (2, 2, 3), stride=(1, 2, 1), padding=(0, 1, 1)),
]

OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _pads(case: Case) -> list[tuple[int, int]]:
    if case.padding == "same":
        dil = (case.dilation,) * case.d if isinstance(case.dilation, int) else case.dilation
        total = [dl * (k - 1) for k, dl in zip(case.kernel, dil, strict=True)]
        return [(t // 2, t - t // 2) for t in total]
    if case.padding == "valid":
        return [(0, 0)] * case.d
    p = (case.padding,) * case.d if isinstance(case.padding, int) else case.padding
    return [(v, v) for v in p]


def conv_oracle(case: Case, x, w, b=None):
    """Cross-correlation in autograd.numpy: sum over kernel cells of a shifted, strided slice."""
    d = case.d
    stride = (case.stride,) * d if isinstance(case.stride, int) else case.stride
    dil = (case.dilation,) * d if isinstance(case.dilation, int) else case.dilation
    xp = anp.pad(x, [(0, 0), (0, 0), *_pads(case)], mode="constant")
    out = [(xp.shape[2 + i] - dil[i] * (case.kernel[i] - 1) - 1) // stride[i] + 1 for i in range(d)]
    cg, og = case.c // case.groups, case.o // case.groups
    per_group = []
    for g in range(case.groups):
        total = 0.0
        for cell in itertools.product(*(range(k) for k in case.kernel)):
            index = (slice(None), slice(g * cg, (g + 1) * cg)) + tuple(
                slice(cell[i] * dil[i], cell[i] * dil[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                for i in range(d))
            patch = xp[index]  # (N, C/G, *out)
            weight = w[(slice(g * og, (g + 1) * og), slice(None), *cell)]  # (O/G, C/G)
            total = total + anp.einsum("nc...,oc->no...", patch, weight)
        per_group.append(total)
    y = anp.concatenate(per_group, axis=1)
    if b is not None:
        y = y + anp.reshape(b, (1, -1) + (1,) * d)
    return y


def _data(case: Case, rng: np.random.Generator, dtype=np.float64):
    shape = (case.c, *case.spatial) if case.unbatched else (case.n, case.c, *case.spatial)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((case.o, case.c // case.groups, *case.kernel)).astype(dtype)
    b = rng.standard_normal(case.o).astype(dtype) if case.bias else None
    return x, w, b


def _ours(case: Case, x, w, b):
    return OURS[case.d](x, w, b, stride=case.stride, padding=case.padding, dilation=case.dilation,
                        groups=case.groups)


def _chainrule_grads(case: Case, x, w, b, r):
    X, W = cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)
    B = cr.tensor(b, requires_grad=True) if b is not None else None
    y = _ours(case, X, W, B)
    (y * r).sum().backward()
    return y.data, [X.grad, W.grad] + ([B.grad] if B is not None else [])


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_conv_against_autograd(case: Case, rng):
    x, w, b = _data(case, rng)
    xb = x[None] if case.unbatched else x

    def loss(x, w, b, r):
        return anp.sum(conv_oracle(case, x, w, b) * r)

    ref = conv_oracle(case, xb, w, b)
    ref = ref[0] if case.unbatched else ref
    r = rng.standard_normal(ref.shape)
    y, grads = _chainrule_grads(case, x, w, b, r)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10)
    rb = r[None] if case.unbatched else r
    argnums = (0, 1, 2) if b is not None else (0, 1)
    expected = [autograd.grad(loss, i)(xb, w, b, rb) for i in argnums]
    expected[0] = expected[0][0] if case.unbatched else expected[0]
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own note
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_conv_against_torch(case: Case, rng):
    x, w, b = _data(case, rng)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if b is not None else None
    conv = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}[case.d]
    ty = conv(tx, tw, tb, stride=case.stride, padding=case.padding, dilation=case.dilation,
              groups=case.groups)
    r = rng.standard_normal(tuple(ty.shape))
    (ty * torch.tensor(r)).sum().backward()
    y, grads = _chainrule_grads(case, x, w, b, r)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    want = [tx.grad, tw.grad] + ([tb.grad] if tb is not None else [])
    for got, t in zip(grads, want, strict=True):
        np.testing.assert_allclose(got, t.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[6], CASES[9]], ids=repr)
def test_conv_gradcheck(case: Case, rng):
    x, w, b = _data(case, rng)
    y0 = _ours(case, x, w, b)
    r = rng.standard_normal(y0.shape)
    args = [cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)]
    if b is not None:
        args.append(cr.tensor(b, requires_grad=True))
    assert cr.gradcheck(lambda *a: (_ours(case, a[0], a[1], a[2] if len(a) > 2 else None) * r).sum(), *args)


@pytest.mark.parametrize("case", CASES[:4] + [CASES[9]], ids=repr)
def test_conv_float32_stays_float32(case: Case, rng):
    x, w, b = _data(case, rng, np.float32)
    y, grads = _chainrule_grads(case, x, w, b, np.ones(_ours(case, x, w, b).shape, np.float32))
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    y64, grads64 = _chainrule_grads(case, *(None if a is None else a.astype(np.float64) for a in (x, w, b)),
                                    np.ones(y.shape))
    np.testing.assert_allclose(y, y64, rtol=1e-5, atol=1e-5)
    for g, g64 in zip(grads, grads64, strict=True):
        np.testing.assert_allclose(g, g64, rtol=1e-5, atol=1e-4)


# --- the second derivatives: the VJPs of the input- and weight-gradient primitives ------------

SECOND = [CASES[1], CASES[2], CASES[6], CASES[9]]


def _kwargs(case: Case, x_shape: tuple[int, ...]) -> dict:
    d = case.d
    return dict(stride=(case.stride,) * d if isinstance(case.stride, int) else tuple(case.stride),
                padding=tuple(_pads(case)),
                dilation=(case.dilation,) * d if isinstance(case.dilation, int) else tuple(case.dilation),
                groups=case.groups)


@pytest.mark.parametrize("case", SECOND, ids=repr)
def test_conv_second_derivatives_against_autograd(case: Case, rng):
    """d/dw and d/dg of <r, dL/dx> and d/dx, d/dg of <r, dL/dw>, where dL/dx, dL/dw are the
    gradients of L = <g, conv(x, w)>: autograd differentiates its own first derivative."""
    x, w, _ = _data(case, rng)
    kw = _kwargs(case, x.shape)
    g = rng.standard_normal(conv_prim.fn(x, w, **kw).shape)
    rx, rw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    def first(x, w, g):
        return anp.sum(conv_oracle(case, x, w) * g)

    def ig_loss(g, w):  # <rx, dL/dx>
        return anp.sum(autograd.grad(first, 0)(x, w, g) * rx)

    def wg_loss(x, g):  # <rw, dL/dw>
        return anp.sum(autograd.grad(first, 1)(x, w, g) * rw)

    G, W = cr.tensor(g, requires_grad=True), cr.tensor(w, requires_grad=True)
    (apply(conv_input_grad_prim, G, W, x_shape=x.shape, **kw) * rx).sum().backward()
    np.testing.assert_allclose(G.grad, autograd.grad(ig_loss, 0)(g, w), rtol=0, atol=1e-10)
    np.testing.assert_allclose(W.grad, autograd.grad(ig_loss, 1)(g, w), rtol=0, atol=1e-10)
    X, G = cr.tensor(x, requires_grad=True), cr.tensor(g, requires_grad=True)
    (apply(conv_weight_grad_prim, X, G, w_shape=w.shape, **kw) * rw).sum().backward()
    np.testing.assert_allclose(X.grad, autograd.grad(wg_loss, 0)(x, g), rtol=0, atol=1e-10)
    np.testing.assert_allclose(G.grad, autograd.grad(wg_loss, 1)(x, g), rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", SECOND[:2], ids=repr)
def test_conv_gradient_primitives_gradcheck(case: Case, rng):
    x, w, _ = _data(case, rng)
    kw = _kwargs(case, x.shape)
    g = rng.standard_normal(conv_prim.fn(x, w, **kw).shape)
    rx, rw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    assert cr.gradcheck(lambda g, w: (apply(conv_input_grad_prim, g, w, x_shape=x.shape, **kw) * rx).sum(),
                        cr.tensor(g, requires_grad=True), cr.tensor(w, requires_grad=True))
    assert cr.gradcheck(lambda x, g: (apply(conv_weight_grad_prim, x, g, w_shape=w.shape, **kw) * rw).sum(),
                        cr.tensor(x, requires_grad=True), cr.tensor(g, requires_grad=True))


def test_conv_input_gradient_by_hand():
    """A 1-D example worked by hand: x = [1, 2, 3, 4], w = [1, -1], stride 2, no padding.
    y = [1*1 + 2*(-1), 3*1 + 4*(-1)] = [-1, -1]. With dL/dy = [10, 20]: dL/dx = [10, -10, 20, -20]
    (each window sends g * w back to its two cells), dL/dw = [10*1 + 20*3, 10*2 + 20*4] = [70, 100]."""
    x = cr.tensor([[[1.0, 2.0, 3.0, 4.0]]], requires_grad=True)
    w = cr.tensor([[[1.0, -1.0]]], requires_grad=True)
    y = F.conv1d(x, w, stride=2)
    np.testing.assert_array_equal(y.data, [[[-1.0, -1.0]]])
    y.backward(np.array([[[10.0, 20.0]]]))
    np.testing.assert_array_equal(x.grad, [[[10.0, -10.0, 20.0, -20.0]]])
    np.testing.assert_array_equal(w.grad, [[[70.0, 100.0]]])


def test_conv_output_size_formula(rng):
    """PyTorch's H_out = (H + 2p - d(k-1) - 1) // s + 1 for every small combination."""
    for h, k, s, p, dl in itertools.product((5, 6), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2)):
        if dl * (k - 1) + 1 > h + 2 * p:
            continue
        y = F.conv1d(np.ones((1, 1, h)), np.ones((1, 1, k)), stride=s, padding=p, dilation=dl)
        assert y.shape[-1] == (h + 2 * p - dl * (k - 1) - 1) // s + 1
        assert y.shape[-1] == math.floor((h + 2 * p - dl * (k - 1) - 1) / s + 1)


@pytest.mark.parametrize("call, message", [
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3))), ["3 channels", "(4, 2, 3, 3)", "2"]),
    (lambda: F.conv2d(np.ones((3, 5)), np.ones((4, 3, 3, 3))), ["(3, 5)", "3-D", "4-D"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3))), ["4-D", "(4, 3, 3)"]),
    (lambda: F.conv2d(np.ones((1, 3, 2, 2)), np.ones((4, 3, 3, 3))), ["(3, 3)", "(2, 2)"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), stride=0), ["stride", ">= 1"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), stride=(1, 2, 3)), ["stride", "2 ints"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), padding=-1), ["padding", ">= 0"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), padding="full"), ["'same'", "'full'"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), stride=2, padding="same"), ["stride 1"]),
    (lambda: F.conv2d(np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2), ["divisible", "3"]),
    (lambda: F.conv2d(np.ones((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.ones(3)), ["(4,)", "(3,)"]),
])
def test_conv_bad_input_names_the_shapes(call, message):
    with pytest.raises(ValueError) as info:
        call()
    for part in message:
        assert part in str(info.value)


@needs_create_graph
@pytest.mark.parametrize("case", SECOND, ids=repr)
def test_conv_double_backward(case: Case, rng):
    """grad of <v, grad L> for L = sum(r * conv(x, w, b)^2), through create_graph, against
    autograd differentiating its own gradient, and against torch.autograd's double backward."""
    x, w, b = _data(case, rng)
    y0 = _ours(case, x, w, b)
    r = rng.standard_normal(y0.shape)
    vx, vw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    X, W, B = (cr.tensor(a, requires_grad=True) for a in (x, w, b))
    gx, gw = cr.grad((_ours(case, X, W, B) ** 2 * r).sum(), [X, W], create_graph=True)
    ((gx * vx).sum() + (gw * vw).sum()).backward()

    def loss(x, w, b):
        return anp.sum(conv_oracle(case, x, w, b) ** 2 * r)

    def outer(x, w, b):
        return anp.sum(autograd.grad(loss, 0)(x, w, b) * vx) + anp.sum(autograd.grad(loss, 1)(x, w, b) * vw)

    for i, got in enumerate((X.grad, W.grad, B.grad)):
        np.testing.assert_allclose(got, autograd.grad(outer, i)(x, w, b), rtol=0, atol=1e-10)
    if torch is None:
        return
    conv = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}[case.d]
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = conv(tx, tw, tb, stride=case.stride, padding=case.padding, dilation=case.dilation,
              groups=case.groups)
    tgx, tgw = torch.autograd.grad((ty ** 2 * torch.tensor(r)).sum(), [tx, tw], create_graph=True)
    ((tgx * torch.tensor(vx)).sum() + (tgw * torch.tensor(vw)).sum()).backward()
    for got, t in zip((X.grad, W.grad, B.grad), (tx, tw, tb), strict=True):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=0, atol=1e-10)


def test_empty_batch_as_torch():
    """A batch of 0 convolves to a batch of 0 (PyTorch's shape), and the weight gradient is 0."""
    x = cr.tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
    w = cr.tensor(np.ones((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5) and np.all(w.grad == 0)
