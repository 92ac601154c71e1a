"""The benchmark chart (benchmarks/run.py): its legend covers no bar.

The report is made up (no timing is run or asserted); its bars are as long as the axis allows in
every row, the first peer's (chainrule's) longest, so a legend anywhere inside the axes would
cover one.
"""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="the chart needs matplotlib (the benchmark and test extras)")

from benchmarks.run import LABELS, PEERS, chart, figure  # noqa: E402


def _report() -> dict:
    keys = ["W1", "W2", "W3-f32", "W3-f64", "W4", "W5", "chain"]
    workloads = {}
    for k, key in enumerate(keys):
        results = {}
        for i, peer in enumerate(PEERS):
            median = 10.0 ** (1 - 0.3 * i - 0.1 * k)  # chainrule's bar the longest in each row
            results[peer] = {"median_s": median, "min_s": 0.9 * median, "max_s": 1.1 * median}
        workloads[key] = {"title": key, "results": results}
    return {"workloads": workloads, "machine": {"cpu": "x86_64", "cpus": 2}}


def test_legend_covers_no_bar():
    import matplotlib.pyplot as plt
    from matplotlib.transforms import Bbox

    fig = figure(_report())
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        box = legend.get_window_extent(renderer)
        assert [t.get_text() for t in legend.get_texts()] == [LABELS[p] for p in PEERS]
        (ax,) = fig.axes
        bars = [p for p in ax.patches if p.get_width() > 0]
        assert len(bars) == 7 * len(PEERS)
        for bar in bars:
            assert not box.overlaps(bar.get_window_extent(renderer)), bar.get_label()
        for line in ax.lines:  # the whiskers' caps
            assert not box.overlaps(line.get_window_extent(renderer))
        for whiskers in ax.collections:  # a LineCollection has no extent of its own: its ends'
            for segment in whiskers.get_segments():
                ends = ax.transData.transform(segment)
                assert not box.overlaps(Bbox([ends.min(axis=0), ends.max(axis=0)]))
        # and it is below the axes, their tick labels and the axis label, inside the figure
        assert box.y1 <= ax.get_tightbbox(renderer).y0 and box.y0 >= 0
    finally:
        plt.close(fig)


def test_chart_writes_a_png(tmp_path):
    target = tmp_path / "latest.png"
    chart(_report(), target)
    assert target.read_bytes().startswith(b"\x89PNG")
