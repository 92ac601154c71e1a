"""docs/tutorial.ipynb runs from top to bottom, and is committed without outputs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
SRC = Path(__file__).resolve().parents[1] / "src"

nbformat = pytest.importorskip("nbformat", reason="the test extra's nbformat is not installed")


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for i, cell in enumerate(code):
        assert cell.outputs == [] and cell.execution_count is None, \
            f"code cell {i} was committed with outputs; clear them (Edit > Clear Outputs of All Cells)"


def test_notebook_runs_and_shows_the_explanation_and_the_curve(monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="the test extra's nbclient is not installed")
    pytest.importorskip("ipykernel", reason="the test extra's ipykernel is not installed")
    pytest.importorskip("sklearn", reason="the notebook trains on scikit-learn's digits")
    pytest.importorskip("matplotlib", reason="the notebook plots with matplotlib")
    # the kernel is a new process: it must import this checkout's chainrule, headless matplotlib
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert html and "dL/dw_{31-1}" in html[0]  # the explanation, rendered by _repr_html_
    values = [o.data["text/plain"] for o in outputs if o.output_type == "execute_result"
              and "text/html" not in o.data]
    assert values and float(values[0]) == pytest.approx(_dL_dw31_by_hand(), rel=1e-12)
    assert [o for o in outputs if "image/png" in o.get("data", {})], "no training curve plotted inline"
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "test accuracy after 15 epochs" in printed


def _dL_dw31_by_hand() -> float:
    """dL/dw_{31-1} of the notebook's network, the chain rule written out in NumPy."""
    import numpy as np

    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    x = np.array([0.02, 0.03, -2.06])
    y1 = sig(x @ [0.36, 0.74, -0.28] + 0.7)  # hidden unit 1
    y2 = sig(x @ [0.29, -0.27, -0.84] + 0.17)
    yhat = sig(0.4 * y1 + 1.16 * y2 - 0.41)
    # dL/dyhat * dyhat/dz_{1-2} * dz_{1-2}/dy_{1-1} * dy_{1-1}/dz_{1-1} * dz_{1-1}/dw_{31-1}
    return float((yhat - 0.61) * yhat * (1 - yhat) * 0.4 * y1 * (1 - y1) * -2.06)
