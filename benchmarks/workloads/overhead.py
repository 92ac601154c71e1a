"""W4: per-op overhead. ``(a * b).sum()`` and its backward on shape (4,) tensors.

The arrays are so small that the time is all bookkeeping: building the graph, walking it,
allocating gradients. A step clears the gradients, runs forward and backward.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Impl, Workload


def make_problem() -> SimpleNamespace:
    return SimpleNamespace(a=np.array([1.0, -2.0, 3.5, 0.25]), b=np.array([0.5, 4.0, -1.0, 2.0]))


def chainrule_impl(p: SimpleNamespace) -> Impl:
    import chainrule as cr

    a, b = cr.tensor(p.a, requires_grad=True), cr.tensor(p.b, requires_grad=True)

    def step():
        a.grad = b.grad = None
        loss = (a * b).sum()
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [a.grad, b.grad])


def torch_impl(p: SimpleNamespace) -> Impl:
    import torch

    a, b = torch.tensor(p.a, requires_grad=True), torch.tensor(p.b, requires_grad=True)

    def step():
        a.grad = b.grad = None
        loss = (a * b).sum()
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [a.grad.numpy(), b.grad.numpy()])


def numpy_impl(p: SimpleNamespace) -> Impl:
    a, b = p.a, p.b
    grads: list[np.ndarray] = []

    def step():
        loss = (a * b).sum()
        g = np.ones_like(a)  # d loss / d (a*b)
        grads[:] = [g * b, g * a]
        return loss

    return Impl(step, float, lambda: grads)


def autograd_impl(p: SimpleNamespace) -> Impl:
    from autograd import value_and_grad

    value_and_grad_fn = value_and_grad(lambda a, b: (a * b).sum(), argnum=[0, 1])
    grads: list[np.ndarray] = []

    def step():
        loss, g = value_and_grad_fn(p.a, p.b)
        grads[:] = g
        return loss

    return Impl(step, float, lambda: grads)


def jax_impl(p: SimpleNamespace) -> Impl:
    import jax
    import jax.numpy as jnp

    import benchmarks.workloads._jax  # noqa: F401 (float64 on)

    value_and_grad_fn = jax.jit(jax.value_and_grad(lambda a, b: (a * b).sum(), argnums=(0, 1)))
    a, b = jnp.asarray(p.a), jnp.asarray(p.b)
    grads: list = []

    def step():
        loss, g = jax.block_until_ready(value_and_grad_fn(a, b))
        grads[:] = g
        return loss

    return Impl(step, float, lambda: [np.asarray(g) for g in grads])


def micrograd_impl(p: SimpleNamespace) -> Impl:
    from micrograd.engine import Value

    a, b = [Value(float(v)) for v in p.a], [Value(float(v)) for v in p.b]

    def step():
        for v in a + b:
            v.grad = 0
        loss = sum(ai * bi for ai, bi in zip(a, b, strict=True))
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.data,
                lambda: [np.array([v.grad for v in a]), np.array([v.grad for v in b])])


def workloads() -> list[Workload]:
    return [Workload("W4", "per-op overhead: (a*b).sum() + backward, shape (4,)", np.float64,
                     make_problem,
                     {"chainrule": chainrule_impl, "numpy": numpy_impl, "torch": torch_impl,
                      "autograd": autograd_impl, "micrograd": micrograd_impl, "jax": jax_impl})]
