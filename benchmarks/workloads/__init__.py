"""The workloads of the suite, in the order the report lists them (see the issue's table)."""
from __future__ import annotations

from benchmarks.harness import Workload
from benchmarks.workloads import chain, mlp, overhead, reference_net, training


def all_workloads() -> list[Workload]:
    return (reference_net.workloads() + mlp.workloads() + overhead.workloads() + training.workloads()
            + chain.workloads())
