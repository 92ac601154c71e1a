"""How long ``chainrule check`` takes on a derivation: the reference solution, and the
``derive --steps`` document of each vector function read back.

Each document is derived (``chainrule derive NAME --steps --format markdown``), then checked
(``check_derivation``), each in a fresh interpreter, as a teacher runs ``chainrule check`` once
per sheet. The times are CPU seconds: of the whole ``derive`` command (imports included, about
1.5 s of it) and of ``check_derivation`` alone (imports excluded). The verdict summary is printed
beside them, so
that a change that makes checking faster can be seen to leave every verdict as it was. Not part
of the test suite (no test asserts a time)::

    python -m benchmarks.check_derivations            # about two minutes
    python -m benchmarks.check_derivations --only softmax,cross_entropy
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "worked-solution.md"  # the reference solution, verbatim
VECTOR = ("softmax", "log_softmax", "softmin", "cross_entropy", "multi_margin_loss",
          "cosine_similarity", "cosine_embedding_loss", "nll_loss")

_CHECK = """
import json, sys, time
from chainrule.symbolic.derivation_check import check_derivation
t = time.process_time()
report = check_derivation(sys.argv[1])
print(json.dumps([time.process_time() - t, report.summary()]))
"""


def _run(*args: str) -> tuple[str, float]:
    """A fresh interpreter on this tree's src/: its last line of output and its CPU seconds."""
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return (out.stdout.strip().splitlines() or [""])[-1], cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated function names (and/or 'reference')")
    args = p.parse_args(argv)
    names = ["reference", *VECTOR] if not args.only else args.only.split(",")
    print(f"{'document':24} {'derive s':>9} {'check s':>8}  verdicts")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if name == "reference":
                path, derive_s = REFERENCE, float("nan")
            else:
                path = Path(tmp) / f"{name}.md"
                _, derive_s = _run("-m", "chainrule.cli", "derive", name, "--steps", "--format", "markdown",
                                   "-o", str(path))
            check_s, summary = json.loads(_run("-c", _CHECK, str(path))[0])
            print(f"{name:24} {derive_s:9.2f} {check_s:8.2f}  {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
