"""A chain of 100,000 elementwise ops (alternately ``* c`` and ``+ d``), summed, then backward.

Measures that the walk is linear in the graph and cheap per node. The exact gradient is
c ** 50000 for every element, which the check compares too (through chainrule's result).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Impl, Workload

N_OPS = 100_000
C, D = 1.00001, 0.001


def make_problem() -> SimpleNamespace:
    return SimpleNamespace(x=np.linspace(-1.0, 1.0, 16), n=N_OPS)


def chainrule_impl(p: SimpleNamespace) -> Impl:
    import chainrule as cr

    x = cr.tensor(p.x, requires_grad=True)

    def step():
        x.grad = None
        y = x
        for _ in range(p.n // 2):
            y = y * C
            y = y + D
        loss = y.sum()
        loss.backward()
        return loss

    def grads():
        expected = np.full_like(p.x, C ** (p.n // 2))
        if not np.allclose(x.grad, expected, rtol=1e-9, atol=0):
            raise AssertionError(f"chain: chainrule's gradient {x.grad[0]!r}, exact {expected[0]!r}")
        return [x.grad]

    return Impl(step, lambda loss: loss.item(), grads)


def torch_impl(p: SimpleNamespace) -> Impl:
    import torch

    x = torch.tensor(p.x, requires_grad=True)

    def step():
        x.grad = None
        y = x
        for _ in range(p.n // 2):
            y = y * C
            y = y + D
        loss = y.sum()
        loss.backward()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [x.grad.numpy()])


def numpy_impl(p: SimpleNamespace) -> Impl:
    grads: list[np.ndarray] = []

    def step():
        y = p.x
        for _ in range(p.n // 2):
            y = y * C
            y = y + D
        loss = y.sum()
        g = np.ones_like(p.x)
        for _ in range(p.n // 2):  # backward: + D passes g through, * C scales it
            g = g * C
        grads[:] = [g]
        return loss

    return Impl(step, float, lambda: grads)


def autograd_impl(p: SimpleNamespace) -> Impl:
    from autograd import value_and_grad

    def loss_fn(x):
        y = x
        for _ in range(p.n // 2):
            y = y * C
            y = y + D
        return y.sum()

    value_and_grad_fn = value_and_grad(loss_fn)
    grads: list[np.ndarray] = []

    def step():
        loss, g = value_and_grad_fn(p.x)
        grads[:] = [g]
        return loss

    return Impl(step, float, lambda: grads)


def workloads() -> list[Workload]:
    return [Workload("chain", f"{N_OPS:,} elementwise ops, forward+backward, shape (16,)", np.float64,
                     make_problem,
                     {"chainrule": chainrule_impl, "numpy": numpy_impl, "torch": torch_impl,
                      "autograd": autograd_impl},
                     {"micrograd": "its recursive topological sort overflows Python's stack at this depth",
                      "jax": "jit would compile a 100,000-op program; not what JAX is for"})]
