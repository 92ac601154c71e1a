"""Peak memory of one W3 training step, measured with tracemalloc.

NumPy reports its array buffers to tracemalloc, so the traced peak counts every array a step
holds at its worst moment (parameters, data, activations, gradients) plus Python objects.
PyTorch allocates outside tracemalloc's view, so it is not compared here.
"""
from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from benchmarks.harness import Impl, Workload

MEMORY_PEERS = ("chainrule", "numpy", "autograd")


def peak_bytes(make: Callable, make_problem: Callable) -> dict[str, int]:
    """Traced peak during one step, after a first step has built whatever a step keeps.

    The problem (data and initial weights) is made under tracemalloc too, so an implementation
    that uses those arrays in place is charged for them like one that copies them.
    """
    gc.collect()
    tracemalloc.start()
    try:
        impl: Impl = make(make_problem())
        impl.step()  # gradients and optimizer state now exist, as in training
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = impl.step()
        peak = tracemalloc.get_traced_memory()[1]
        del out
    finally:
        tracemalloc.stop()
    return {"peak_bytes": peak, "resident_before_bytes": before, "transient_bytes": peak - before}


def measure(workloads: list[Workload], log: Callable[[str], None] = print) -> dict:
    report = {}
    for w in workloads:
        if not w.key.startswith("W3"):
            continue
        rows = {}
        for name in MEMORY_PEERS:
            try:
                rows[name] = peak_bytes(w.impls[name], w.make_problem)
            except ImportError:
                continue
        base = rows["numpy"]["peak_bytes"]
        for row in rows.values():
            row["ratio_to_numpy"] = row["peak_bytes"] / base
        report[w.key] = rows
        log(f"  {w.key} peak: " + ", ".join(f"{n} {r['peak_bytes'] / 2**20:.1f} MiB "
                                            f"({r['ratio_to_numpy']:.2f}x numpy)" for n, r in rows.items()))
    return report
