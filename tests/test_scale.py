"""Scale: a 1,000,000-op graph backpropagates, and memory goes as the backward pass goes.

Memory is measured with tracemalloc (Python-level allocations, NumPy's buffers included).
Stated bounds, both relative to the memory the forward graph holds when backward starts:
- peak during backward <= 1.5x (the graph, plus the walk's own bookkeeping: its order list,
  the gradient being passed on; no second copy of the graph);
- halfway through the walk, memory held <= 0.6x (the unvisited half, plus bookkeeping): the
  visited half's saved inputs and outputs are already released.
"""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np

import chainrule as cr
from chainrule import ops
from chainrule.tensor import apply

PEAK_MULTIPLE = 1.5
HALFWAY_MULTIPLE = 0.6


class MemoryProbe:
    """An identity op whose VJP records the traced memory when the backward walk reaches it."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.prim = ops.Primitive("memory_probe", lambda a: a, (self._vjp,))

    def _vjp(self, g, ans, a):
        self.seen.append(tracemalloc.get_traced_memory()[0])
        return g

    def __call__(self, t: cr.Tensor) -> cr.Tensor:
        return apply(self.prim, t)


def _chain(n_ops: int, size: int, probe: MemoryProbe) -> tuple[cr.Tensor, cr.Tensor, float]:
    """x -> (x * c + d) repeated: n_ops elementwise ops, the probe at the halfway point."""
    c, d = 0.9999999, 1e-7
    x = cr.tensor(np.full(size, 0.5), requires_grad=True)
    y = x
    for i in range(n_ops // 2):
        if i == n_ops // 4:
            y = probe(y)
        y = y * c
        y = y + d
    return x, y, c ** (n_ops // 2)  # dy/dx, elementwise


def _measure(n_ops: int, size: int) -> dict:
    probe = MemoryProbe()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        x, y, slope = _chain(n_ops, size, probe)
        forward = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.reset_peak()
        y.backward(np.ones(size))
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"x": x, "slope": slope, "forward": forward, "peak": peak - base,
            "halfway": probe.seen[0] - base, "after": current - base}


def test_million_op_chain_backprops_with_bounded_peak_memory():
    m = _measure(1_000_000, 1)  # no RecursionError: the walk is iterative
    np.testing.assert_allclose(m["x"].grad, [m["slope"]], rtol=1e-9)
    assert m["peak"] <= PEAK_MULTIPLE * m["forward"], (
        f"backward peak {m['peak'] / 1e6:.0f} MB > {PEAK_MULTIPLE} x forward graph "
        f"{m['forward'] / 1e6:.0f} MB")
    assert m["after"] < 0.01 * m["forward"], "the graph was not freed after backward"


def test_memory_is_released_as_the_backward_pass_goes():
    # Few ops on big arrays, so the arrays (not per-node bookkeeping) dominate: halfway
    # through, the visited half of the graph's arrays must already be gone.
    m = _measure(2_000, 10_000)
    np.testing.assert_allclose(m["x"].grad, np.full(10_000, m["slope"]), rtol=1e-12)
    assert m["halfway"] <= HALFWAY_MULTIPLE * m["forward"], (
        f"halfway through backward {m['halfway'] / 1e6:.0f} MB still held of the forward's "
        f"{m['forward'] / 1e6:.0f} MB (bound {HALFWAY_MULTIPLE}x)")
    assert m["peak"] <= PEAK_MULTIPLE * m["forward"]
