"""W1: the reference solution's 3-2-1 sigmoid network with L2 loss, one forward+backward.

The numbers are part 3 of shared/reference/worked-solution.md. Weights are stored as
PyTorch's ``nn.Linear`` stores them, (out, in); gradients are returned in the order
W1, b1, W2, b2. A step clears the gradients, runs forward and backward; no update.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Impl, Workload


def make_problem() -> SimpleNamespace:
    return SimpleNamespace(
        x=np.array([[0.02, 0.03, -2.06]]),
        y=np.array([[0.61]]),
        W1=np.array([[0.36, 0.74, -0.28], [0.29, -0.27, -0.84]]),
        b1=np.array([0.7, 0.17]),
        W2=np.array([[0.4, 1.16]]),
        b2=np.array([-0.41]),
    )


def chainrule_impl(p: SimpleNamespace) -> Impl:
    import chainrule as cr
    import chainrule.functional as F

    x, y = cr.tensor(p.x), cr.tensor(p.y)
    W1, b1, W2, b2 = params = [cr.tensor(v, requires_grad=True) for v in (p.W1, p.b1, p.W2, p.b2)]

    def step():
        for q in params:
            q.grad = None
        h = F.sigmoid(F.linear(x, W1, b1))
        out = F.sigmoid(F.linear(h, W2, b2))
        loss = F.l2_loss(out, y)
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [q.grad for q in params])


def torch_impl(p: SimpleNamespace) -> Impl:
    import torch
    import torch.nn.functional as F

    x, y = torch.from_numpy(p.x), torch.from_numpy(p.y)
    W1, b1, W2, b2 = params = [torch.tensor(v, requires_grad=True) for v in (p.W1, p.b1, p.W2, p.b2)]

    def step():
        for q in params:
            q.grad = None
        h = torch.sigmoid(F.linear(x, W1, b1))
        out = torch.sigmoid(F.linear(h, W2, b2))
        loss = 0.5 * F.mse_loss(out, y, reduction="sum")
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [q.grad.numpy() for q in params])


def numpy_impl(p: SimpleNamespace) -> Impl:
    x, y, W1, b1, W2, b2 = p.x, p.y, p.W1, p.b1, p.W2, p.b2
    grads: list[np.ndarray] = []

    def step():
        h = 1.0 / (1.0 + np.exp(-(x @ W1.T + b1)))
        out = 1.0 / (1.0 + np.exp(-(h @ W2.T + b2)))
        diff = out - y
        loss = 0.5 * np.sum(diff * diff)
        d2 = diff * out * (1.0 - out)
        d1 = (d2 @ W2) * h * (1.0 - h)
        grads[:] = [d1.T @ x, d1.sum(axis=0), d2.T @ h, d2.sum(axis=0)]
        return loss

    return Impl(step, float, lambda: grads)


def autograd_impl(p: SimpleNamespace) -> Impl:
    import autograd.numpy as anp
    from autograd import value_and_grad

    def sigmoid(z):
        return 1.0 / (1.0 + anp.exp(-z))

    def loss_fn(params, x, y):
        W1, b1, W2, b2 = params
        out = sigmoid(anp.dot(sigmoid(anp.dot(x, W1.T) + b1), W2.T) + b2)
        return 0.5 * anp.sum((out - y) ** 2)

    value_and_grad_fn = value_and_grad(loss_fn)
    params = [p.W1, p.b1, p.W2, p.b2]
    grads: list[np.ndarray] = []

    def step():
        loss, g = value_and_grad_fn(params, p.x, p.y)
        grads[:] = g
        return loss

    return Impl(step, float, lambda: grads)


def jax_impl(p: SimpleNamespace) -> Impl:
    import jax
    import jax.numpy as jnp

    import benchmarks.workloads._jax  # noqa: F401 (float64 on)

    def loss_fn(params, x, y):
        W1, b1, W2, b2 = params
        out = jax.nn.sigmoid(jax.nn.sigmoid(x @ W1.T + b1) @ W2.T + b2)
        return 0.5 * jnp.sum((out - y) ** 2)

    value_and_grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    params = [jnp.asarray(v) for v in (p.W1, p.b1, p.W2, p.b2)]
    x, y = jnp.asarray(p.x), jnp.asarray(p.y)
    grads: list = []

    def step():
        loss, g = jax.block_until_ready(value_and_grad_fn(params, x, y))
        grads[:] = g
        return loss

    return Impl(step, float, lambda: [np.asarray(g) for g in grads])


def micrograd_impl(p: SimpleNamespace) -> Impl:
    from micrograd.engine import Value

    from benchmarks.workloads._micrograd_ops import sigmoid

    x, y = list(p.x[0]), float(p.y[0, 0])
    W1 = [[Value(float(w)) for w in row] for row in p.W1]
    b1 = [Value(float(b)) for b in p.b1]
    W2 = [[Value(float(w)) for w in row] for row in p.W2]
    b2 = [Value(float(b)) for b in p.b2]
    params = [v for rows in (W1, W2) for row in rows for v in row] + b1 + b2

    def neuron(weights, bias, inputs):  # micrograd's Neuron: sum(w*x, start=b)
        return sum((w * xi for w, xi in zip(weights, inputs, strict=True)), bias)

    def step():
        for v in params:
            v.grad = 0
        h = [sigmoid(neuron(row, b, x)) for row, b in zip(W1, b1, strict=True)]
        out = sigmoid(neuron(W2[0], b2[0], h))
        loss = 0.5 * (out - y) ** 2
        loss.backward()
        return loss

    def grads():
        g = lambda vs: np.array([[v.grad for v in row] for row in vs])
        return [g(W1), np.array([v.grad for v in b1]), g(W2), np.array([v.grad for v in b2])]

    return Impl(step, lambda loss: loss.data, grads)


def workloads() -> list[Workload]:
    return [Workload(
        "W1", "reference 3-2-1 sigmoid net, L2 loss, one forward+backward", np.float64, make_problem,
        {"chainrule": chainrule_impl, "numpy": numpy_impl, "torch": torch_impl,
         "autograd": autograd_impl, "micrograd": micrograd_impl, "jax": jax_impl})]
