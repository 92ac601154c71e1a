"""The network drawing: names with real subscripts, and no label crossing an edge, a unit or
another label, for every shipped example network and a larger one.

The checks measure the drawn text, not the layout's own estimate: matplotlib's renderer gives
each label's extent in the PNG/SVG it writes, and headless Chromium gives each SVG label's
box (``getBBox`` with its rotation, ``getCTM``) in the HTML page. Overlaps are decided by
matplotlib's path intersection, not by the layout's geometry code.
"""

from __future__ import annotations

import math
import re

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest
from cdp import Browser, find_chromium

from chainrule.explain import example_paths, explain_network, load_network, parse_network
from chainrule.explain.diagram import (
    Box,
    boxes_overlap,
    label_runs,
    layout,
    mathtext,
    name_runs,
    network_svg,
    plain_name,
    segment_hits_box,
)
from chainrule.explain.numbers import fmt

LARGER = """
title = "5-6-4-2 network, larger than the shipped examples"
sizes = [5, 6, 4, 2]
activation = ["tanh", "sigmoid", "none"]
seed = 3

[loss]
name = "l2_loss"

[data]
input = [0.3, -1.2, 0.8, 0.05, 1.5]
target = [0.25, -0.5]
"""


def _networks() -> list[tuple[str, object]]:
    shipped = [(p.stem, load_network(p)) for p in example_paths() if "worksheet" not in p.name]
    assert len(shipped) >= 4
    return shipped + [("larger-5-6-4-2", parse_network(tomllib.loads(LARGER)))]


NETWORKS = _networks()
IDS = [name for name, _ in NETWORKS]


@pytest.fixture(scope="module", params=NETWORKS, ids=IDS)
def explanation(request):
    return explain_network(request.param[1], lr=0.1)


# --- names --------------------------------------------------------------------------------


def test_names_are_runs_with_subscripts():
    assert name_runs("w_{11-1}") == [("w", "math"), ("11-1", "sub")]
    assert name_runs("dL/dw_{31-1}") == [
        ("∂", "math"),
        ("L", "math"),
        ("/∂", "math"),
        ("w", "math"),
        ("31-1", "sub"),
    ]
    assert name_runs("yhat") == [("ŷ", "math")]
    assert name_runs("z_{1-1}^{(2)}") == [("z", "math"), ("1-1", "sub"), ("(2)", "sup")]
    assert name_runs("x_1") == [("x", "math"), ("1", "sub")]
    assert name_runs("W1[0,2]") == [("W1[0,2]", "math")]  # matrix notation: nothing to lower


def test_tooltips_use_unicode_indices():
    assert plain_name("dL/dw_{31-1}") == "∂L/∂w₃₁₋₁"
    assert plain_name("z_{1-1}^{(2)}") == "z₁₋₁⁽²⁾"
    assert plain_name("a_{ij}") == "a_ij"  # letters have no subscript form: kept readable


def test_mathtext_writes_the_hyphen_as_text():
    # w_{11-1}: the hyphen of the reference's names, not a minus sign, in a real subscript
    assert mathtext(label_runs("w_{11-1}", "0.3600")) == r"$w_{11\text{-}1}$ = 0.3600"
    assert mathtext(label_runs("dL/dyhat", "0.1037")) == r"$\partial L/\partial \hat{y}$ = 0.1037"
    assert mathtext(label_runs("z_{2-1}^{(2)}", "1")) == r"$z_{2\text{-}1}^{(2)}$ = 1"


def test_svg_has_no_literal_tex(explanation):
    svg = network_svg(explanation)
    shown = re.sub(r"<[^>]*>", "", svg)  # the text a reader sees, without tags and attributes
    for raw in ("_{", "^{", "yhat", "dL/d"):
        assert raw not in shown
    assert "∂L/∂w" in shown or explanation.network.loss == "none"  # no loss: the output's own ∂z/∂w
    assert 'font-size="8.6"' in svg  # subscripts are smaller tspans


# --- the layout's geometry, on hand-made cases --------------------------------------------


def test_turned_boxes():
    flat = Box(0, 0, 10, 2)
    assert boxes_overlap(flat, Box(19, 0, 10, 2)) and not boxes_overlap(flat, Box(21, 0, 10, 2))
    assert boxes_overlap(flat, Box(21, 0, 10, 2), gap=1.5)
    # a box turned 45 degrees whose axis-aligned bounds overlap the flat one but which does not
    turned = Box(18, 9, 10, 2, math.radians(45))  # its nearest side: the line x + y = 12.86
    assert not boxes_overlap(flat, turned)  # flat's corner (10, 2): x + y = 12
    assert boxes_overlap(flat, Box(16, 7, 10, 2, math.radians(45)))  # holds (9.9, 0)
    # a segment 3 px off a side misses it, unless the gap reaches; one through the centre hits
    assert segment_hits_box(-30, 0, 30, 0, flat)
    assert not segment_hits_box(-30, 5, 30, 5, flat) and segment_hits_box(-30, 5, 30, 5, flat, gap=3.5)
    assert segment_hits_box(10, 9, 26, 9, turned) and not segment_hits_box(-20, 20, -5, 20, turned)
    # parallel to its nearest side (x + y = 12.86), 0.47 px outside it
    assert not segment_hits_box(0, 12.2, 12.2, 0, turned) and segment_hits_box(
        0, 12.2, 12.2, 0, turned, gap=0.5
    )


def test_every_layout_is_clean(explanation):
    d = layout(explanation)
    assert d.clean and d.edge_labels and d.unit_labels  # every value written on the drawing
    units = 1 + len(explanation.network.layers)
    assert len({u.column for u in d.units}) == units


BIG = """
title = "10-12-3: too many weights to write on the edges"
sizes = [10, 12, 3]
activation = ["tanh", "none"]
seed = 3

[loss]
name = "l2_loss"

[data]
input = [0.3, -1.2, 0.8, 0.05, 1.5, 0.3, -1.2, 0.8, 0.05, 1.5]
target = [0.25, -0.5, 1.0]
"""


def test_a_network_too_big_to_label_gets_tooltips():
    e = explain_network(parse_network(tomllib.loads(BIG)))
    d = layout(e)
    assert d.clean and not d.edge_labels  # 156 weights: no label beside any edge
    svg = network_svg(e, drawing=d)
    tips = re.findall(r'<line id="e-1-(\d+)-(\d+)"[^>]*><title>([^<]*)</title>', svg)
    assert len(tips) == 10 * 12
    i, j, tip = next(t for t in tips if t[:2] == ("2", "0"))  # input 3 to hidden unit 1: w_{31-1}
    assert tip.startswith(f"w₃₁₋₁ = {fmt(e['w_{31-1}'].value, e.digits, True)}, ∂L/∂w₃₁₋₁ = ")
    assert "Too many" in e.to_html()  # the page says where the values are


# --- the drawn text, measured ------------------------------------------------------------


def _collisions(labels, segments, circles, boxes, inside=None):
    """Pairs that touch: labels are polygons [(x, y) * 4]; decided by matplotlib's paths.
    ``inside``: the loss's label, which must lie within the loss's box and touch no label."""
    from matplotlib.path import Path

    found = []
    if inside is not None:
        x0, y0, x1, y1 = boxes[0]
        if not all(min(x0, x1) <= x <= max(x0, x1) and min(y0, y1) <= y <= max(y0, y1) for x, y in inside):
            found.append(("loss label", "outside its box"))
        labels = [*labels, inside]
        loss_index = len(labels) - 1

    else:
        loss_index = None
    paths = [Path(p + [p[0]], closed=True) for p in labels]

    def bounds(points):
        xs, ys = [x for x, _ in points], [y for _, y in points]
        return min(xs) - 1, min(ys) - 1, max(xs) + 1, max(ys) + 1

    def near(a, b):  # axis-aligned bounds first, so the exact test runs only where it can matter
        return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]

    label_bounds = [bounds(p) for p in labels]
    segment_bounds = [bounds([(x0, y0), (x1, y1)]) for x0, y0, x1, y1 in segments]
    for i, a in enumerate(paths):
        for j in range(i + 1, len(paths)):
            if near(label_bounds[i], label_bounds[j]) and a.intersects_path(paths[j], filled=True):
                found.append(("label", i, "label", j))
        if i == loss_index:
            continue
        for k, (x0, y0, x1, y1) in enumerate(segments):
            if near(label_bounds[i], segment_bounds[k]) and a.intersects_path(
                Path([(x0, y0), (x1, y1)]), filled=True
            ):
                found.append(("label", i, "edge", k))
        for k, (cx, cy, r) in enumerate(circles):
            if a.intersects_path(Path.circle((cx, cy), r), filled=True):
                found.append(("label", i, "unit", k))
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            rect = Path([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], closed=True)
            if a.intersects_path(rect, filled=True):
                found.append(("label", i, "box", k))
    return found


def _turned(x0, y0, x1, y1, cx, cy, degrees):
    """The corners of an axis-aligned box turned about (cx, cy)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [
        (cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    ]


def test_matplotlib_labels_touch_nothing(explanation):
    pytest.importorskip("matplotlib", reason="the drawing needs the optional 'plot' extra")
    import matplotlib.pyplot as plt

    from chainrule.explain.diagram import draw

    fig = draw(explanation)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (ax,) = fig.axes
        labels, loss_label = [], None
        for text in ax.texts:
            if text.get_gid() not in ("label", "loss-label"):
                continue
            angle = text.get_rotation()
            text.set_rotation(0)
            flat = text.get_window_extent(renderer)
            text.set_rotation(angle)
            cx, cy = ax.transData.transform(text.get_position())
            # display coordinates (y up): matplotlib turns text counter-clockwise
            corners = _turned(flat.x0, flat.y0, flat.x1, flat.y1, cx, cy, angle)
            if text.get_gid() == "loss-label":
                loss_label = corners
            else:
                labels.append(corners)
        segments = []
        for line in ax.lines:
            (x0, y0), (x1, y1) = ax.transData.transform(line.get_xydata())
            segments.append((x0, y0, x1, y1))
        circles = []
        for patch in ax.patches:
            if hasattr(patch, "radius"):
                x, y = patch.center
                (cx, cy), (ex, _) = ax.transData.transform([(x, y), (x + patch.radius, y)])
                circles.append((cx, cy, abs(ex - cx)))
        loss = [p for p in ax.patches if not hasattr(p, "radius")]
        boxes = []
        for p in loss:
            b = p.get_window_extent(renderer)
            boxes.append((b.x0, b.y0, b.x1, b.y1))
        # (the smallest shipped network, CS231n's neuron, has 2 edges and the line to the output box)
        assert len(labels) >= 10 and len(segments) >= 3 and circles and boxes and loss_label
        assert _collisions(labels, segments, circles, boxes, inside=loss_label) == []
    finally:
        plt.close(fig)


CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    with Browser(CHROMIUM) as b:
        yield b


_MEASURE = """
(() => {
  const svg = document.querySelector('svg#network');
  const pt = (m, x, y) => { const p = new DOMPoint(x, y).matrixTransform(m); return [p.x, p.y]; };
  const corners = t => {
    const b = t.getBBox(), m = t.getCTM();
    return [pt(m, b.x, b.y), pt(m, b.x + b.width, b.y), pt(m, b.x + b.width, b.y + b.height),
            pt(m, b.x, b.y + b.height)];
  };
  const labels = [...svg.querySelectorAll('text.label:not(.loss)')].map(corners);
  const lossLabel = corners(svg.querySelector('text.label.loss'));
  const m = svg.getCTM();
  const segments = [...svg.querySelectorAll('line.edge')].map(l =>
    [...pt(m, l.x1.baseVal.value, l.y1.baseVal.value), ...pt(m, l.x2.baseVal.value, l.y2.baseVal.value)]);
  const circles = [...svg.querySelectorAll('circle')].map(c =>
    [...pt(m, c.cx.baseVal.value, c.cy.baseVal.value), c.r.baseVal.value]);
  const r = svg.querySelector('#loss').getBBox();
  const boxes = [[...pt(m, r.x, r.y), ...pt(m, r.x + r.width, r.y + r.height)]];
  return {labels, segments, circles, boxes, lossLabel};
})()
"""


def test_svg_labels_touch_nothing_in_chromium(explanation, browser, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib's paths decide the overlaps")
    page_path = tmp_path / "diagram.html"
    page_path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='margin:0'>"
        f"{network_svg(explanation)}</body></html>",
        encoding="utf-8",
    )
    page = browser.open(page_path.as_uri())
    drawn = page.evaluate(_MEASURE)
    assert len(drawn["labels"]) >= 10 and len(drawn["segments"]) >= 3  # CS231n's neuron: 3
    found = _collisions(
        drawn["labels"], drawn["segments"], drawn["circles"], drawn["boxes"], inside=drawn["lossLabel"]
    )
    assert found == []
    assert page.errors() == []
