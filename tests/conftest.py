"""Shared test settings: a deterministic hypothesis profile and seeded random inputs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Derandomized so a failure reproduces on every run and machine; no deadline because the
# first call of a NumPy path can be slow on a loaded CI box (no test asserts a time).
settings.register_profile(
    "chainrule", derandomize=True, deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("chainrule")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240229)


@pytest.fixture
def run_cli(capsys):
    """Run ``chainrule ARGV...`` in-process: returns (exit code, stdout, stderr)."""
    from chainrule.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say, in the summary, why the PyTorch-oracle tests skipped and how to run them."""
    try:
        import torch  # noqa: F401
        return
    except ImportError:
        pass
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "torch" in str(getattr(r, "longrepr", "")).lower()]
    if skipped:
        terminalreporter.write_line(
            f"PyTorch is not installed, so {len(skipped)} tests that compare chainrule with PyTorch "
            "(the third gradient oracle, beside finite differences and HIPS autograd, which ran) "
            "were skipped. To run them: pip install torch (this project's CI pins the CPU build "
            "torch==2.13.0).", yellow=True)
