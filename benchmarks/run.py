"""Run the benchmark suite: ``python -m benchmarks.run [--quick] [--only W1,W4] [--out DIR]``.

Checks every peer against chainrule, times all of them interleaved, prints a table of
medians (with min and max) and each one's ratio to PyTorch, measures W3's peak memory
against hand-written NumPy, and writes ``DIR/latest.json`` and ``DIR/latest.png``
(default DIR: benchmarks/results/, which git ignores).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks import memory
from benchmarks.harness import run_workload
from benchmarks.workloads import all_workloads

PEERS = ("chainrule", "numpy", "torch", "jax", "autograd", "micrograd")
LABELS = {"chainrule": "chainrule", "numpy": "NumPy by hand", "torch": "PyTorch",
          "jax": "JAX jit", "autograd": "HIPS autograd", "micrograd": "micrograd"}
RESULTS = Path(__file__).resolve().parent / "results"

# Targets of issue 6, as ratios of chainrule's median to PyTorch's.
TARGETS = {"W1": 0.3, "W2": 0.7, "W3-f32": 1.0, "W3-f64": 1.0, "W4": 0.5, "W5": 1.0}
CHAIN_TARGET_S = 1.0
MEMORY_TARGET = 1.2


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "numpy": np.__version__,
            "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["chainrule_commit"] = _commit()
    for package in ("torch", "autograd", "micrograd", "jax"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for pool in threadpool_info() if pool.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = None
    return info


def _commit() -> str | None:
    """The commit measured, with '+changes' when the working tree differs from it (None
    outside a git checkout): results are only comparable between runs of known code."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def limit_threads(n: int) -> None:
    """One thread count for NumPy's BLAS and PyTorch alike (on a loaded machine 1 is steadiest)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(n)  # stays in force for the process
    # JAX (0.10) is not limited: XLA's CPU runtime keeps its own pool, which neither
    # threadpoolctl nor XLA_FLAGS' thread options change (measured: same time, 1.4 ms vs 2.0 ms
    # for W3-f32 pinned to one core). Its rows use every core; the README says so.
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def table(report: dict) -> str:
    """Markdown: one row per workload, median [min-max] per peer, then chainrule / PyTorch."""
    peers = [p for p in PEERS if any(p in w["results"] for w in report["workloads"].values())]
    head = ["workload"] + [LABELS[p] for p in peers] + ["chainrule / PyTorch", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, w in report["workloads"].items():
        cells = [f"{key}: {w['title']}"]
        for p in peers:
            r = w["results"].get(p)
            cells.append("-" if r is None else f"{format_time(r['median_s'])} "
                         f"({format_time(r['min_s'])}-{format_time(r['max_s'])})")
        ratio = w.get("ratio_to_torch")
        cells.append("-" if ratio is None else f"{ratio:.2f}x")
        target = TARGETS.get(key)
        cells.append(f"<= {target}x" if target else (f"< {CHAIN_TARGET_S:g} s" if key == "chain" else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(report: dict) -> str:
    lines = ["| W3 peak memory (tracemalloc) | " + " | ".join(LABELS[p] for p in memory.MEMORY_PEERS)
             + " | chainrule / NumPy |", "|---|" + "---|" * (len(memory.MEMORY_PEERS) + 1)]
    for key, rows in report.items():
        cells = [key] + [f"{rows[p]['peak_bytes'] / 2**20:.1f} MiB" if p in rows else "-"
                         for p in memory.MEMORY_PEERS]
        cells.append(f"{rows['chainrule']['ratio_to_numpy']:.2f}x (target <= {MEMORY_TARGET}x)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(report: dict):
    """The chart as a matplotlib Figure: per workload, one bar per peer (median, min-max whiskers).

    The legend sits in its own row below the axes, outside them, so it can never cover a
    bar however long the bars are (tests/test_benchmark_chart.py checks that it does not).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(report["workloads"])
    peers = [p for p in PEERS if any(p in w["results"] for w in report["workloads"].values())]
    fig, ax = plt.subplots(figsize=(10, 0.9 * len(keys) + 2.2), layout="constrained")
    height = 0.8 / len(peers)
    for i, p in enumerate(peers):
        ys, xs, lo, hi = [], [], [], []
        for k, key in enumerate(keys):
            r = report["workloads"][key]["results"].get(p)
            if r:
                ys.append(k + i * height)
                xs.append(r["median_s"])
                lo.append(r["median_s"] - r["min_s"])
                hi.append(r["max_s"] - r["median_s"])
        ax.barh(ys, xs, height=height, xerr=[lo, hi], label=LABELS[p], capsize=2)
    ax.set_yticks([k + 0.4 - height / 2 for k in range(len(keys))], keys)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds per step (median, min-max), log scale; shorter is faster")
    ax.set_title(f"chainrule benchmarks, {report['machine']['cpu']}, {report['machine']['cpus']} cores")
    # one row of entries under the x axis's label: outside the plotting area
    fig.legend(loc="outside lower center", ncols=len(peers), fontsize="small", frameon=False)
    return fig


def chart(report: dict, path: Path) -> None:
    """Write ``figure(report)`` to ``path`` as PNG, atomically."""
    import matplotlib.pyplot as plt

    fig = figure(report)
    from io import BytesIO

    from chainrule._io import atomic_write_bytes
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds (about a minute)")
    parser.add_argument("--only", help="comma-separated workload keys, e.g. W1,W3-f32,chain")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 15, quick 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the W3 peak-memory measurement")
    parser.add_argument("--threads", type=int,
                        help="BLAS/OpenMP threads for every peer (default: each library's own)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.json/latest.png")
    args = parser.parse_args(argv)

    rounds = args.rounds or (5 if args.quick else 15)
    sample_seconds = 0.02 if args.quick else 0.1
    workloads = all_workloads()
    if args.only:
        wanted = [k.strip() for k in args.only.split(",")]
        unknown = set(wanted) - {w.key for w in workloads}
        if unknown:
            parser.error(f"unknown workload {sorted(unknown)}; known: {[w.key for w in workloads]}")
        workloads = [w for w in workloads if w.key in wanted]

    if args.threads:
        limit_threads(args.threads)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "threads": args.threads, "rounds": rounds,
              "sample_seconds": sample_seconds, "workloads": {}}
    m = report["machine"]
    print(f"chainrule {m['chainrule_commit'] or '(not a git checkout)'}; "
          f"{m['cpu']}, {m['cpus']} cores; Python {m['python']}, NumPy {m['numpy']}, torch {m['torch']}; "
          f"BLAS {m['blas']}; {m['openblas_env'] or 'no OPENBLAS_* settings'}", flush=True)
    for w in workloads:
        print(f"{w.key}: {w.title}", flush=True)
        result = run_workload(w, rounds, sample_seconds, slow_seconds=0.5, quick=args.quick,
                              log=lambda s: print(s, flush=True))
        mine, theirs = result["results"]["chainrule"], result["results"].get("torch")
        result["ratio_to_torch"] = None if theirs is None else mine["median_s"] / theirs["median_s"]
        for r in result["results"].values():
            r["ratio_to_torch"] = None if theirs is None else r["median_s"] / theirs["median_s"]
        report["workloads"][w.key] = result
    if not args.no_memory and any(w.key.startswith("W3") for w in workloads):
        print("W3 peak memory:", flush=True)
        report["memory"] = memory.measure(workloads, log=lambda s: print(s, flush=True))

    print()
    print(table(report))
    for key, w in report["workloads"].items():
        for peer, why in w["skipped"].items():
            print(f"  {key}: {peer} not run: {why}")
    if report.get("memory"):
        print()
        print(memory_table(report["memory"]))

    from chainrule._io import atomic_write_text
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "latest.json", json.dumps(report, indent=1) + "\n")
    chart(report, args.out / "latest.png")
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
