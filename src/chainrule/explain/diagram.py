"""The network drawn: units with z, y and dL/dz; edges with the weight and its gradient.

``network_svg`` writes the drawing as SVG text by hand (no dependency, embedded in the HTML
page); ``save_diagram`` draws the same layout with matplotlib (the ``plot`` extra) to PNG or
SVG. Both read only the ``Explanation``: the numbers are the engine's.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from chainrule._io import atomic_open
from chainrule.explain.model import Explanation, NetworkView
from chainrule.explain.numbers import fmt

COL_GAP, ROW_GAP, MARGIN, RADIUS = 320, 150, 90, 34


def layout(view: NetworkView) -> list[list[tuple[float, float]]]:
    """Centre of every unit: column 0 the inputs, column l layer l."""
    sizes = [view.input_size] + [layer.units for layer in view.layers]
    tallest = max(sizes)
    cols = []
    for c, n in enumerate(sizes):
        top = MARGIN + 40 + (tallest - n) * ROW_GAP / 2
        cols.append([(MARGIN + 60 + c * COL_GAP, top + r * ROW_GAP) for r in range(n)])
    return cols


def canvas_size(view: NetworkView) -> tuple[int, int]:
    sizes = [view.input_size] + [layer.units for layer in view.layers]
    return (
        int(2 * MARGIN + 120 + (len(sizes) - 1) * COL_GAP + 170),
        int(2 * MARGIN + 80 + (max(sizes) - 1) * ROW_GAP + 40),
    )


def _labels(e: Explanation, digits: int):
    """Everything the drawing writes, with positions: (x, y, text, role)."""
    view = e.network
    pos = layout(view)
    v = lambda name: fmt(e[name].value, digits) if name in e else "?"
    edges, texts, units = [], [], []
    for c, layer in enumerate(view.layers, start=1):
        for i, (x0, y0) in enumerate(pos[c - 1]):
            for j, (x1, y1) in enumerate(pos[c]):
                edges.append((x0 + RADIUS, y0, x1 - RADIUS, y1))
                names = view.edge_names[c - 1][i][j]
                t = 0.3  # near the source, where the edges from one unit fan out
                lx, ly = x0 + RADIUS + t * (x1 - x0 - 2 * RADIUS), y0 + t * (y1 - y0)
                texts.append((lx, ly - 4, f"{names['w']} = {v(names['w'])}", "weight"))
                texts.append((lx, ly + 11, f"dL/dw = {v(names['dw'])}", "grad"))
        for j, (x, y) in enumerate(pos[c]):
            u = view.unit_names[c - 1][j]
            units.append((x, y, layer.activation or "linear"))
            texts.append((x, y - RADIUS - 30, f"z = {v(u['z'])}", "unit"))
            texts.append((x, y - RADIUS - 16, f"y = {v(u['y'])}" if u["y"] != u["z"] else "", "unit"))
            texts.append((x, y + RADIUS + 16, f"dL/dz = {v(u['dz'])}", "grad"))
            if view.bias_names[c - 1]:
                b = view.bias_names[c - 1][j]
                texts.append((x, y + RADIUS + 31, f"{b['b']} = {v(b['b'])}, dL/dB = {v(b['db'])}", "bias"))
    for i, (x, y) in enumerate(pos[0]):
        units.append((x, y, "input"))
        name = view.input_names[i]
        texts.append((x, y - RADIUS - 10, f"{name} = {v(name)}", "unit"))
    last = pos[-1]
    lx = last[0][0] + 120
    ly = sum(p[1] for p in last) / len(last)
    for x, y in last:
        edges.append((x + RADIUS, y, lx - 30, ly))
    texts.append((lx + 20, ly + 5, f"L = {fmt(e.loss, digits)}", "loss"))
    unit_names = [view.input_names] + [[u["z"] for u in col] for col in view.unit_names]
    return pos, edges, texts, units, unit_names, (lx, ly)


def network_svg(e: Explanation, digits: int | None = None) -> str:
    """The drawing as a standalone <svg> element."""
    if e.network is None:
        raise ValueError("this explanation is not of a layered network; there is no network to draw")
    digits = e.digits if digits is None else digits
    width, height = canvas_size(e.network)
    pos, edges, texts, units, _, (lx, ly) = _labels(e, digits)
    colours = {"weight": "#1f3b73", "grad": "#b03a2e", "unit": "#222", "bias": "#555", "loss": "#000"}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="network" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" role="img" '
        f'aria-label="{html.escape(e.title)}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for x0, y0, x1, y1 in edges:
        out.append(
            f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#9aa5b1" '
            'stroke-width="1.5"/>'
        )
    for x, y, kind in units:
        fill = "#e8f0fe" if kind == "input" else "#fdf2e0"
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}" fill="{fill}" stroke="#34495e" '
            'stroke-width="2"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" fill="#34495e">'
            f"{html.escape(kind)}</text>"
        )
    out.append(
        f'<rect x="{lx - 30:.1f}" y="{ly - 16:.1f}" width="150" height="32" rx="6" fill="#eef7ee" '
        'stroke="#2e7d32" stroke-width="2"/>'
    )
    for x, y, text, role in texts:
        if text:
            anchor = "start" if role == "loss" else "middle"
            out.append(
                f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colours[role]}">'
                f"{html.escape(text)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def save_diagram(e: Explanation, path: str | os.PathLike, digits: int | None = None) -> None:
    """Write the drawing to ``path`` (.png or .svg) with matplotlib, atomically."""
    if e.network is None:
        raise ValueError("this explanation is not of a layered network; there is no network to draw")
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"--diagram: expected a file name ending in .png or .svg, got {str(path)!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Circle, FancyBboxPatch
    except ImportError:
        raise ValueError("--diagram needs matplotlib: pip install 'chainrule[plot]'") from None
    digits = e.digits if digits is None else digits
    width, height = canvas_size(e.network)
    pos, edges, texts, units, _, (lx, ly) = _labels(e, digits)
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for x0, y0, x1, y1 in edges:
        ax.plot([x0, x1], [y0, y1], color="#9aa5b1", lw=1.2, zorder=1)
    for x, y, kind in units:
        ax.add_patch(
            Circle(
                (x, y),
                RADIUS,
                facecolor="#e8f0fe" if kind == "input" else "#fdf2e0",
                edgecolor="#34495e",
                lw=2,
                zorder=2,
            )
        )
        ax.text(x, y, kind, ha="center", va="center", fontsize=8, color="#34495e", zorder=3)
    ax.add_patch(
        FancyBboxPatch(
            (lx - 30, ly - 16),
            150,
            32,
            boxstyle="round,pad=0,rounding_size=6",
            facecolor="#eef7ee",
            edgecolor="#2e7d32",
            lw=2,
            zorder=2,
        )
    )
    colours = {"weight": "#1f3b73", "grad": "#b03a2e", "unit": "#222", "bias": "#555", "loss": "#000"}
    for x, y, text, role in texts:
        if text:
            ax.text(
                x,
                y,
                text,
                ha="left" if role == "loss" else "center",
                va="baseline",
                fontsize=8,
                color=colours[role],
                zorder=4,
            )
    try:
        with atomic_open(path, "wb", encoding=None) as handle:
            fig.savefig(handle, format=suffix[1:], dpi=dpi)
    finally:
        plt.close(fig)
