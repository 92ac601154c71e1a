"""Check, then time, implementations of one workload, interleaved so machine drift cancels.

An implementation is built by a factory ``make(problem) -> Impl``. ``Impl.step()`` is the timed
unit (one forward+backward, or one SGD step); after a step, ``Impl.loss(out)`` and
``Impl.grads()`` read back what it computed, in float64 NumPy, for the correctness check.
Every implementation is checked against chainrule's on a fresh copy of the problem before
any timing: a benchmark of a wrong answer is worthless.
"""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Impl:
    step: Callable[[], Any]  # the timed unit; returns the framework's loss object
    loss: Callable[[Any], float]  # that loss object as a Python float
    grads: Callable[[], list[np.ndarray]]  # gradients of the last step, canonical order
    params: Callable[[], list[np.ndarray]] | None = None  # parameters after the step (SGD)


@dataclass
class Workload:
    key: str  # "W1", "W3-f32", ...
    title: str
    dtype: Any
    make_problem: Callable[[], Any]
    impls: dict[str, Callable[[Any], Impl]]  # peer name -> factory; "chainrule" first
    skipped: dict[str, str] = field(default_factory=dict)  # peer name -> why it is not run
    heavy: frozenset[str] = frozenset()  # peers too slow for --quick (seconds per step)
    # When set, the check runs on implementations built from this problem (e.g. dropout off,
    # where the peers' random masks cannot agree); fresh ones built from make_problem are timed.
    make_check_problem: Callable[[], Any] | None = None


class CheckFailed(AssertionError):
    pass


def tolerance(dtype: Any) -> float:
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-10


def max_rel_error(value: np.ndarray, ref: np.ndarray) -> float:
    """max |value - ref| relative to the largest |ref| (so tiny entries are not over-weighted)."""
    value, ref = np.asarray(value, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if value.shape != ref.shape:
        return float("inf")
    scale = max(float(np.max(np.abs(ref), initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(value - ref), initial=0.0)) / scale


def first_step(make: Callable[[Any], Impl], problem: Any) -> tuple[Impl, dict, float]:
    """Build an implementation, run one step, and return what it computed and how long it took."""
    impl = make(problem)
    start = time.perf_counter()
    out = impl.step()
    seconds = time.perf_counter() - start
    result = {"loss": np.float64(impl.loss(out)), "grads": [np.asarray(g) for g in impl.grads()]}
    result["params"] = None if impl.params is None else [np.array(p) for p in impl.params()]
    return impl, result, seconds


def check(name: str, result: dict, reference: dict, tol: float) -> float:
    """Raise CheckFailed unless ``result`` equals chainrule's ``reference``; return the worst error."""
    errors = [max_rel_error(result["loss"], reference["loss"])]
    if len(result["grads"]) != len(reference["grads"]):
        raise CheckFailed(f"{name}: {len(result['grads'])} gradients, "
                          f"chainrule has {len(reference['grads'])}")
    errors += [max_rel_error(g, r) for g, r in zip(result["grads"], reference["grads"], strict=True)]
    if result["params"] is not None and reference["params"] is not None:
        errors += [max_rel_error(p, r) for p, r in zip(result["params"], reference["params"], strict=True)]
    worst = max(errors)
    if not worst <= tol:
        raise CheckFailed(f"{name} disagrees with chainrule: relative error {worst:.3g} > {tol:g} "
                          f"(loss {float(result['loss'])!r} vs {float(reference['loss'])!r})")
    return worst


def _sample(step: Callable[[], Any], number: int) -> float:
    gc.collect()  # start each sample from the same heap state; the collector stays on, as for users
    start = time.perf_counter()
    for _ in range(number):
        step()
    return (time.perf_counter() - start) / number


def run_workload(workload: Workload, rounds: int, sample_seconds: float, slow_seconds: float,
                 quick: bool = False, log: Callable[[str], None] = print) -> dict:
    """Check every implementation against chainrule, then time them all, interleaved.

    Each round times one sample of every implementation in turn (A B C A B C ...), starting
    one place later each round, so slow drifts of the machine (frequency, other load) fall on
    all of them alike. A sample repeats the step enough times to last about ``sample_seconds``;
    a step slower than ``slow_seconds`` is sampled at most 3 times (once if rounds < 5).
    """
    tol = tolerance(workload.dtype)
    built: dict[str, Impl] = {}
    numbers: dict[str, int] = {}
    samples: dict[str, list[float]] = {}
    report: dict[str, Any] = {"title": workload.title, "dtype": np.dtype(workload.dtype).name,
                              "tolerance": tol, "results": {}, "skipped": dict(workload.skipped)}
    reference = None
    slow: set[str] = set()
    for name, make in workload.impls.items():
        if quick and name in workload.heavy:
            report["skipped"][name] = "too slow for --quick"
            continue
        try:
            impl, result, seconds = first_step(make, (workload.make_check_problem or workload.make_problem)())
        except ImportError as exc:
            if reference is None:
                raise  # chainrule itself must run: every peer is checked against it
            report["skipped"][name] = f"not installed ({exc.name or exc})"
            continue
        if reference is None:
            reference, error = result, 0.0  # chainrule: the others are checked against it
        else:
            error = check(f"{workload.key} {name}", result, reference, tol)
        if workload.make_check_problem is not None:
            impl = make(workload.make_problem())
            start = time.perf_counter()
            impl.step()
            seconds = time.perf_counter() - start
        if seconds < 5 * slow_seconds:  # the first step may include compiling (JAX's jit)
            impl.step()  # warm: caches, allocator, lazily built state
            start = time.perf_counter()
            impl.step()
            seconds = max(time.perf_counter() - start, 1e-7)
        if seconds >= slow_seconds:
            slow.add(name)
        built[name] = impl
        numbers[name] = max(1, int(sample_seconds / seconds))
        samples[name] = []
        report["results"][name] = {"check_error": error, "calls_per_sample": numbers[name]}
        log(f"  {workload.key} {name}: checked (error {error:.1e}), ~{seconds * 1e6:,.0f} us/step")
    names = list(built)
    slow_samples = 3 if rounds >= 5 else 1
    for r in range(rounds):
        for k in range(len(names)):
            name = names[(k + r) % len(names)]
            if name in slow and len(samples[name]) >= slow_samples:
                continue
            samples[name].append(_sample(built[name].step, numbers[name]))
    for name in names:
        s = samples[name]
        report["results"][name].update(median_s=statistics.median(s), min_s=min(s), max_s=max(s),
                                       samples_s=s)
    return report
