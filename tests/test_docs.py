"""The documentation site builds with warnings as errors (MkDocs + mkdocstrings, mkdocs.yml).

A broken link, a README section the docs include that no longer exists (pymdownx.snippets
with check_paths), or a docstring mkdocstrings cannot render fails here. The pages' examples
are run by conftest.py (Sybil), like the README's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
    pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")


def test_the_site_builds_strictly(tmp_path):
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--site-dir", str(tmp_path / "site"), "--config-file", str(ROOT / "mkdocs.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # the reference is generated from the docstrings, not left empty
    for name in ("chainrule.tensor.Tensor", "chainrule.functional", "chainrule.nn.Linear",
                 "chainrule.optim.Adam"):
        assert name in api, name
    formats = (site / "formats" / "index.html").read_text(encoding="utf-8")
    assert "The network file" in formats and "--8&lt;--" not in formats  # README sections included
    assert (site / "tutorial.ipynb").is_file()
