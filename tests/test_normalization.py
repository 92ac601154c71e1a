"""F.batch_norm and F.layer_norm against PyTorch, HIPS autograd and finite differences,
including the running statistics (momentum, unbiased variance) and large-mean inputs."""
from __future__ import annotations

import inspect

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

SHAPES = [(4, 3), (5, 3, 7), (2, 3, 4, 5), (1, 2, 3, 3)]  # (N, C), (N, C, L), (N, C, H, W), batch of 1


def bn_oracle(x, w, b, eps=1e-5):
    """Batch norm in autograd.numpy, straight from Ioffe & Szegedy (2015), Algorithm 1."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu = anp.mean(x, axis=axes, keepdims=True)
    var = anp.mean((x - mu) ** 2, axis=axes, keepdims=True)
    return (x - mu) / anp.sqrt(var + eps) * anp.reshape(w, shape) + anp.reshape(b, shape)


def ln_oracle(x, w, b, k, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = anp.mean(x, axis=axes, keepdims=True)
    var = anp.mean((x - mu) ** 2, axis=axes, keepdims=True)
    return (x - mu) / anp.sqrt(var + eps) * w + b


def _bn_grads(x, w, b, r, **kw):
    X, W, B = (cr.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(X, kw.pop("rm", None), kw.pop("rv", None), W, B, **kw)
    (y * r).sum().backward()
    return y.data, (X.grad, W.grad, B.grad)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_training_against_autograd(shape, rng):
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    r = rng.standard_normal(shape)
    y, grads = _bn_grads(x, w, b, r, training=True)
    np.testing.assert_allclose(y, bn_oracle(x, w, b), rtol=0, atol=1e-10)
    loss = lambda x, w, b: anp.sum(bn_oracle(x, w, b) * r)  # noqa: E731
    for i, g in enumerate(grads):
        np.testing.assert_allclose(g, autograd.grad(loss, i)(x, w, b), rtol=0, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("momentum", [0.1, 0.7])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_against_torch_with_running_stats(shape, momentum, rng):
    c = shape[1]
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    for _ in range(3):  # several steps: the running statistics accumulate
        x = rng.standard_normal(shape) * 2 - 1
        w, b = rng.standard_normal(c), rng.standard_normal(c)
        r = rng.standard_normal(shape)
        y, grads = _bn_grads(x, w, b, r, rm=rm, rv=rv, training=True, momentum=momentum)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=momentum)
        (ty * torch.tensor(r)).sum().backward()
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
        for g, t in zip(grads, (tx, tw, tb), strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=0, atol=1e-12)
    # evaluation mode: the running statistics normalise
    x = rng.standard_normal(shape)
    r = rng.standard_normal(shape)
    y, grads = _bn_grads(x, w, b, r, rm=rm, rv=rv, training=False)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training=False)
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-10)
    for g, t in zip(grads, (tx, tw, tb), strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=1e-10)


def test_batch_norm_running_stats_by_hand():
    """One channel, x = [1, 3] (N = 2): mean 2, biased var 1, unbiased var 2. With momentum
    0.5 from running (0, 1): mean 0.5*0 + 0.5*2 = 1, var 0.5*1 + 0.5*2 = 1.5. Output:
    (x - 2) / sqrt(1 + eps) = [-1, 1] / sqrt(1 + 1e-5)."""
    rm, rv = np.zeros(1), np.ones(1)
    y = F.batch_norm(np.array([[1.0], [3.0]]), rm, rv, training=True, momentum=0.5)
    np.testing.assert_allclose(y.data[:, 0], np.array([-1.0, 1.0]) / np.sqrt(1 + 1e-5), rtol=1e-15)
    np.testing.assert_array_equal(rm, [1.0])
    np.testing.assert_array_equal(rv, [1.5])


def test_batch_norm_large_mean_is_stable():
    """Values 1e8 + [0, 1, 2, 3]: the two-pass variance is exactly 1.25; E[x^2] - E[x]^2 would
    lose every digit (1e16 against 1.25) in float64."""
    x = cr.tensor((1e8 + np.arange(4.0))[:, None], requires_grad=True)
    y = F.batch_norm(x, None, None, training=True, eps=0.0)
    np.testing.assert_allclose(y.data[:, 0], (np.arange(4.0) - 1.5) / np.sqrt(1.25), rtol=1e-12)
    (y[:, 0] * cr.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_batch_norm_gradcheck(rng):
    x = rng.standard_normal((3, 2, 4))
    w, b, r = rng.standard_normal(2), rng.standard_normal(2), rng.standard_normal((3, 2, 4))
    assert cr.gradcheck(lambda x, w, b: (F.batch_norm(x, None, None, w, b, training=True) * r).sum(),
                        *(cr.tensor(a, requires_grad=True) for a in (x, w, b)))


def test_batch_norm_float32(rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    X = cr.tensor(x, requires_grad=True)
    w = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    y = F.batch_norm(X, rm, rv, w, None, training=True)
    y.sum().backward()
    assert y.dtype == X.grad.dtype == w.grad.dtype == rm.dtype == rv.dtype == np.float32
    expected = bn_oracle(x.astype(np.float64), np.ones(3), np.zeros(3))
    np.testing.assert_allclose(y.data, expected, atol=1e-5)


@pytest.mark.parametrize("shape, k", [((4, 5), 1), ((2, 3, 4), 2), ((2, 3, 4), 1), ((1, 6), 1)], ids=str)
def test_layer_norm_against_oracles(shape, k, rng):
    x = rng.standard_normal(shape) * 2 + 3
    ns = shape[-k:]
    w, b = rng.standard_normal(ns), rng.standard_normal(ns)
    r = rng.standard_normal(shape)
    X, W, B = (cr.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.layer_norm(X, ns, W, B)
    (y * r).sum().backward()
    np.testing.assert_allclose(y.data, ln_oracle(x, w, b, k), rtol=0, atol=1e-10)
    loss = lambda x, w, b: anp.sum(ln_oracle(x, w, b, k) * r)  # noqa: E731
    for i, g in enumerate((X.grad, W.grad, B.grad)):
        np.testing.assert_allclose(g, autograd.grad(loss, i)(x, w, b), rtol=0, atol=1e-10)
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        ty = TF.layer_norm(tx, ns, tw, tb)
        (ty * torch.tensor(r)).sum().backward()
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=1e-10)
        for g, t in zip((X.grad, W.grad, B.grad), (tx, tw, tb), strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=1e-10)
    assert cr.gradcheck(lambda x: (F.layer_norm(x, ns) * r).sum(), cr.tensor(x, requires_grad=True))


@pytest.mark.parametrize("call, parts", [
    (lambda: F.batch_norm(np.ones((1, 3)), np.zeros(3), np.ones(3), training=True),
     ["more than 1", "(1, 3)"]),
    (lambda: F.batch_norm(np.ones((1, 3, 1, 1)), None, None, training=True), ["more than 1", "(1, 3, 1, 1)"]),
    (lambda: F.batch_norm(np.ones((4, 3)), np.zeros(2), np.ones(3)), ["running_mean", "(3,)", "(2,)"]),
    (lambda: F.batch_norm(np.ones((4, 3)), None, None), ["running_mean", "training=False"]),
    (lambda: F.batch_norm(np.ones(3), None, None, training=True), ["(N, C)", "(3,)"]),
    (lambda: F.layer_norm(np.ones((2, 3)), (2,)), ["(2,)", "(2, 3)"]),
    (lambda: F.layer_norm(np.ones((2, 3)), 3, np.ones(2)), ["weight", "(3,)", "(2,)"]),
])
def test_normalization_bad_input(call, parts):
    with pytest.raises(ValueError) as info:
        call()
    for part in parts:
        assert part in str(info.value)


@needs_create_graph
@pytest.mark.parametrize("which", ["batch_norm", "layer_norm"])
def test_normalization_double_backward(which, rng):
    """grad of <v, dL/dx> and <u, dL/dw> for L = sum(r * norm(x)^2): autograd and torch."""
    x = rng.standard_normal((4, 3, 5))
    n = 3 if which == "batch_norm" else 5
    w, b = rng.standard_normal(n), rng.standard_normal(n)
    r, v, u = rng.standard_normal(x.shape), rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    ours = ((lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)) if which == "batch_norm"
            else (lambda x, w, b: F.layer_norm(x, 5, w, b)))
    oracle = ((lambda x, w, b: bn_oracle(x, w, b)) if which == "batch_norm"
              else (lambda x, w, b: ln_oracle(x, w, b, 1)))
    X, W, B = (cr.tensor(a, requires_grad=True) for a in (x, w, b))
    gx, gw = cr.grad((ours(X, W, B) ** 2 * r).sum(), [X, W], create_graph=True)
    ((gx * v).sum() + (gw * u).sum()).backward()

    def loss(x, w, b):
        return anp.sum(oracle(x, w, b) ** 2 * r)

    def outer(x, w, b):
        return anp.sum(autograd.grad(loss, 0)(x, w, b) * v) + anp.sum(autograd.grad(loss, 1)(x, w, b) * u)

    for i, got in enumerate((X.grad, W.grad, B.grad)):
        np.testing.assert_allclose(got, autograd.grad(outer, i)(x, w, b), rtol=0, atol=1e-9)
