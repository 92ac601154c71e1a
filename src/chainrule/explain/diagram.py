"""The network drawn: units with z, y and dL/dz; edges with the weight and its gradient.

``layout`` places everything once: units in columns, each edge's weight above it and its
gradient below it where no label crosses an edge, a unit or another label (the canvas grows
until every label fits). ``network_svg`` writes that layout as SVG text by hand (no dependency;
embedded in the HTML pages, with ids the interactive page highlights); ``save_diagram`` draws
the same layout with matplotlib (the ``plot`` extra) to PNG or SVG, names in mathtext. Both
read only the ``Explanation``: the numbers are the engine's.

Names are written as the reference solution writes them, with real subscripts: ``w_{11-1}`` is
drawn as w with the subscript 11-1 (a hyphen, not a minus sign), ``dL/dw`` as the partial
derivative, ``yhat`` as y with a hat. Text is measured with the advance widths of DejaVu Sans
(matplotlib's default font, and the SVG's first choice), rounded up, so a label's box holds its
text in either renderer; tests/test_diagram.py measures the drawn text to check it.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chainrule._io import atomic_open
from chainrule.explain.model import Explanation, NetworkView
from chainrule.explain.numbers import fmt

COL_GAP, ROW_GAP, MARGIN, RADIUS = 330.0, 160.0, 24.0, 30.0
FONT_SIZE = 12.0  # px, every label
UNIT_FONT_SIZE = 10.0  # the activation's name inside a unit
SUB_SCALE = 0.72  # subscripts and superscripts
GAP = 3.0  # px kept clear between a label and an edge or a unit
LABEL_GAP = 1.0  # px kept clear between two labels
LINE_GAP = LABEL_GAP + 0.5  # px between stacked lines
MAX_TRIES = 16  # the canvas grows (columns by 12 %, rows by 6 % per try) until every label fits
# Beyond this many weights their labels no longer fit beside the edges on a readable canvas (a
# 5-6-4-2 network, 62 weights, needs 4600 px): edges are drawn bare, each with its weight and
# gradient as a tooltip, and the page's tables list them.
MAX_LABELLED_EDGES = 64

COLOURS = {"weight": "#1f3b73", "grad": "#b03a2e", "unit": "#222222", "bias": "#555555", "loss": "#000000"}
FONT_FAMILY = "DejaVu Sans, Verdana, Bitstream Vera Sans, sans-serif"

# --- names as runs of text: (text, "" | "sub" | "sup" | "math") -------------------------------

Run = tuple[str, str]


def name_runs(name: str) -> list[Run]:
    """A quantity's name as runs of plain, subscript and superscript text:
    ``dL/dw_{11-1}`` -> ∂L/∂w, then "11-1" as a subscript; ``yhat`` -> ŷ."""
    m = re.fullmatch(r"d(.+)/d(.+)", name)
    if m:
        return [("∂", "math"), *name_runs(m.group(1)), ("/∂", "math"), *name_runs(m.group(2))]
    runs: list[Run] = []
    for tok in re.finditer(r"_\{([^{}]*)\}|\^\{([^{}]*)\}|_(\w)|(yhat)|([^_^]+?)(?=_|\^|yhat|$)", name):
        sub, sup, sub1, hat, plain = tok.groups()
        if sub is not None or sub1 is not None:
            runs.append((sub if sub is not None else sub1, "sub"))
        elif sup is not None:
            runs.append((sup, "sup"))
        elif hat:
            runs.append(("ŷ", "math"))
        else:
            runs.append((plain, "math"))
    return runs


_SUB = str.maketrans("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")
_SUP = str.maketrans("0123456789+-=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾")


def plain_name(name: str) -> str:
    """A name as plain text with Unicode sub- and superscripts, for tooltips:
    ``dL/dw_{11-1}`` -> ∂L/∂w₁₁₋₁ (indices Unicode cannot lower keep an underscore)."""
    out = []
    for text, style in name_runs(name):
        if style not in ("sub", "sup"):
            out.append(text)
        elif all(c in "0123456789+-=()" for c in text):
            out.append(text.translate(_SUB if style == "sub" else _SUP))
        else:
            out.append(("_" if style == "sub" else "^") + text)
    return "".join(out)


def label_runs(name: str, value: str) -> list[Run]:
    return [*name_runs(name), (f" = {value}", "")]


# DejaVu Sans advance widths, in em, for the characters labels use; others get a wide default.
_ADVANCE = {
    **dict.fromkeys("0123456789", 0.636),
    ".": 0.318,
    ",": 0.318,
    " ": 0.318,
    "=": 0.838,
    "-": 0.361,
    "+": 0.838,
    "(": 0.39,
    ")": 0.39,
    "/": 0.337,
    "[": 0.39,
    "]": 0.39,
    "e": 0.615,
    "∂": 0.52,
    "ŷ": 0.592,
    ":": 0.337,
}


def _advance(ch: str) -> float:
    if ch in _ADVANCE:
        return _ADVANCE[ch]
    if ch.isupper():
        return 0.78
    return 0.66  # lower-case letters (italic in math) and anything else


def text_width(runs: Iterable[Run], size: float = FONT_SIZE) -> float:
    """Width in px of the runs at ``size`` px, rounded up by 8 % and 2 px (a safe box)."""
    em = sum(_advance(c) * (SUB_SCALE if style in ("sub", "sup") else 1.0) for t, style in runs for c in t)
    return em * size * 1.08 + 2.0


def text_height(runs: Iterable[Run] = (), size: float = FONT_SIZE) -> float:
    """A line's box in px: a browser's text box (the font's ascent and descent, 1.2 em) and
    room for lowered subscripts and raised superscripts (Chromium's ``getBBox`` of
    ``w_{11-1} = 0.36`` is 16.6 px high at 12 px, of ``z_{1-1}^{(1)} = 0.1`` 19 px)."""
    styles = {style for _, style in runs}
    return size * (1.2 + 0.3 * ("sub" in styles) + 0.3 * ("sup" in styles))


# --- the layout ----------------------------------------------------------------------------


class Box:
    """A rectangle turned by ``angle`` (radians, clockwise on screen, y pointing down) about its
    centre: a label's box, which runs along its edge."""

    __slots__ = ("cx", "cy", "hw", "hh", "angle", "_u", "_v", "_bounds")

    def __init__(self, cx: float, cy: float, hw: float, hh: float, angle: float = 0.0):
        self.cx, self.cy, self.hw, self.hh, self.angle = cx, cy, hw, hh, angle
        c, s = math.cos(angle), math.sin(angle)
        self._u, self._v = (c, s), (-s, c)
        ex, ey = hw * abs(c) + hh * abs(s), hw * abs(s) + hh * abs(c)
        self._bounds = (cx - ex, cy - ey, cx + ex, cy + ey)

    def axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return self._u, self._v

    def local(self, x: float, y: float) -> tuple[float, float]:
        (ux, uy), (vx, vy) = self._u, self._v
        dx, dy = x - self.cx, y - self.cy
        return dx * ux + dy * uy, dx * vx + dy * vy

    def corners(self) -> list[tuple[float, float]]:
        (ux, uy), (vx, vy) = self._u, self._v
        return [
            (self.cx + a * self.hw * ux + b * self.hh * vx, self.cy + a * self.hw * uy + b * self.hh * vy)
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]

    def bounds(self) -> tuple[float, float, float, float]:
        """The axis-aligned box around it: x0, y0, x1, y1."""
        return self._bounds


def _near(a: tuple[float, float, float, float], b: tuple[float, float, float, float], gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def boxes_overlap(a: Box, b: Box, gap: float = 0.0) -> bool:
    """Whether two turned rectangles come within ``gap`` of each other (separating axes)."""
    dx, dy = b.cx - a.cx, b.cy - a.cy
    (aux, auy), (avx, avy) = a.axes()
    (bux, buy), (bvx, bvy) = b.axes()
    for x, y in ((aux, auy), (avx, avy), (bux, buy), (bvx, bvy)):
        ra = (a.hw + gap) * abs(aux * x + auy * y) + (a.hh + gap) * abs(avx * x + avy * y)
        rb = b.hw * abs(bux * x + buy * y) + b.hh * abs(bvx * x + bvy * y)
        if abs(dx * x + dy * y) > ra + rb:
            return False
    return True


def segment_hits_box(x0: float, y0: float, x1: float, y1: float, box: Box, gap: float = 0.0) -> bool:
    """Whether the segment (x0, y0)-(x1, y1) passes within ``gap`` of ``box`` (Liang-Barsky
    clipping in the box's own frame)."""
    u0, v0 = box.local(x0, y0)
    u1, v1 = box.local(x1, y1)
    du, dv = u1 - u0, v1 - v0
    lo, hi = 0.0, 1.0
    hw, hh = box.hw + gap, box.hh + gap
    for p, q in ((-du, u0 + hw), (du, hw - u0), (-dv, v0 + hh), (dv, hh - v0)):
        if p == 0:
            if q < 0:
                return False
        else:
            r = q / p
            if p < 0:
                lo = max(lo, r)
            else:
                hi = min(hi, r)
            if lo > hi:
                return False
    return True


def circle_hits_box(cx: float, cy: float, r: float, box: Box, gap: float = 0.0) -> bool:
    u, v = box.local(cx, cy)
    nu, nv = min(max(u, -box.hw), box.hw), min(max(v, -box.hh), box.hh)
    return math.hypot(u - nu, v - nv) < r + gap


@dataclass
class Label:
    runs: list[Run]
    cx: float  # centre of the box
    cy: float
    width: float
    height: float
    role: str  # weight, grad, unit, bias, loss
    quantities: tuple[str, ...] = ()  # the quantities it shows (the interactive page reveals them)
    angle: float = 0.0  # radians, clockwise: a weight's label runs along its edge

    @property
    def box(self) -> Box:
        return Box(self.cx, self.cy, self.width / 2, self.height / 2, self.angle)

    @property
    def degrees(self) -> float:
        return math.degrees(self.angle)

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.runs)


@dataclass
class Unit:
    id: str  # "u-0-2": column 0 (the inputs), unit 2 (0-based)
    x: float
    y: float
    text: str  # the activation's name, or "input"
    names: tuple[str, ...]  # quantity names that belong to the unit (z, y, dL/dz, its bias)
    column: int


@dataclass
class Edge:
    id: str  # "e-1-0-2": layer 1, from unit 0 to unit 2 (0-based)
    x0: float
    y0: float
    x1: float
    y1: float
    names: tuple[str, ...] = ()  # the weight and its gradient; () for the edges into the loss
    ends: tuple[str, str] = ("", "")  # the unit ids it joins


@dataclass
class Drawing:
    width: float
    height: float
    units: list[Unit] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    loss_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1
    clean: bool = True  # every label placed clear of edges, units and other labels
    edge_labels: bool = True  # whether the weights and their gradients are written on the edges
    unit_labels: bool = True  # whether each unit's values are written beside it
    title: str = ""


class _Space:
    """What is already on the canvas, for the labels still to place."""

    def __init__(self, units: list[Unit], edges: list[Edge], loss_box: Box):
        self.units, self.edges, self.loss_box = units, edges, loss_box
        self.boxes: list[Box] = []
        self._edge_bounds = [
            (min(e.x0, e.x1), min(e.y0, e.y1), max(e.x0, e.x1), max(e.y0, e.y1)) for e in edges
        ]

    def free(self, box: Box) -> bool:
        """Whether ``box`` keeps clear of everything placed (axis-aligned bounds first: cheap)."""
        near = box.bounds()
        # a gap grown in a turned box reaches up to sqrt(2) times as far along the axes
        if any(
            _near(near, b.bounds(), 1.5 * LABEL_GAP) and boxes_overlap(box, b, LABEL_GAP) for b in self.boxes
        ):
            return False
        if boxes_overlap(box, self.loss_box, GAP):
            return False
        if any(circle_hits_box(u.x, u.y, RADIUS, box, GAP) for u in self.units):
            return False
        return not any(
            _near(near, eb, 1.5 * GAP) and segment_hits_box(e.x0, e.y0, e.x1, e.y1, box, GAP)
            for e, eb in zip(self.edges, self._edge_bounds, strict=True)
        )

    def take(self, box: Box) -> None:
        self.boxes.append(box)


def _base(name: str) -> str:
    """dL/dw_{11-1} -> dL/dw: the gradient beside its weight needs no indices of its own."""
    return re.sub(r"_\{[^{}]*\}|\^\{[^{}]*\}|_\w", "", name)


def _value(e: Explanation, name: str, digits: int) -> str:
    return fmt(e[name].value, digits) if name in e else "?"


def _unit_label(e: Explanation, name: str, digits: int, role: str, also: tuple[str, ...] = ()) -> Label:
    runs = label_runs(name, _value(e, name, digits))
    return Label(runs, 0.0, 0.0, text_width(runs), text_height(runs), role, (name, *also))


# positions along an edge tried for its labels, nearest the source first (edges fan out there)
_ALONG = (0.22, 0.27, 0.17, 0.32, 0.37, 0.12, 0.42, 0.47, 0.52, 0.57, 0.62, 0.67, 0.72, 0.77, 0.82, 0.87)


# a unit's stack of labels: distance from the circle, then sideways shift, tried in order
_STACK_OFFSETS = [(d, dx) for d in (GAP, 9.0, 16.0, 24.0) for dx in (0.0, -14.0, 14.0, -28.0, 28.0)]


def _stack(u: Unit, stack: list[Label], side: int, d: float, dx: float) -> None:
    """Centres for a stack of labels, the first ``d`` px from the unit's circle."""
    reach = RADIUS + d
    for lab in stack:
        lab.cx, lab.cy = u.x + dx, u.y + side * (reach + lab.height / 2)
        reach += lab.height + LINE_GAP


def _place_stack(space: _Space, labels: list[Label], u: Unit, stack: list[Label], side: int) -> bool:
    """Labels stacked above (side -1) or below (+1) a unit, as close as they fit clear."""
    if not stack:
        return True
    for d, dx in _STACK_OFFSETS:
        _stack(u, stack, side, d, dx)
        if all(space.free(lab.box) for lab in stack):
            break
    else:
        d, dx = _STACK_OFFSETS[0]
        _stack(u, stack, side, d, dx)
        for lab in stack:
            space.take(lab.box)
            labels.append(lab)
        return False
    for lab in stack:
        space.take(lab.box)
        labels.append(lab)
    return True


def _place_edge_labels(space: _Space, labels: list[Label], edge: Edge, w: Label, g: Label) -> bool:
    """The weight on one side of its edge, its gradient on the other side at the same point or
    near it (or stacked with it): the first such placement that touches nothing."""
    dx, dy = edge.x1 - edge.x0, edge.y1 - edge.y0
    length = math.hypot(dx, dy)
    nx, ny = dy / length, -dx / length  # unit normal, pointing above the edge
    clear = GAP + 1.5  # beyond the GAP every check keeps, so a label never just touches its edge

    def at(lab: Label, t: float, off: float) -> Box:
        lab.cx, lab.cy = edge.x0 + t * dx + off * nx, edge.y0 + t * dy + off * ny
        return lab.box

    w_off, g_off = w.height / 2 + clear, g.height / 2 + clear
    step = 40.0 / length  # about 40 px along the edge
    for t in _ALONG:
        for side in (1, -1):
            if not space.free(at(w, t, side * w_off)):
                continue
            wbox = w.box
            tries = [(t, -side * g_off), (t, side * (w.height + clear + LINE_GAP + g.height / 2))]
            tries += [(t + k * step, -side * g_off) for k in (1, -1, 2, -2)]
            for tg, off in tries:
                if (
                    0.05 <= tg <= 0.95
                    and space.free(at(g, tg, off))
                    and not boxes_overlap(wbox, g.box, LABEL_GAP)
                ):
                    at(w, t, side * w_off)
                    for lab in (w, g):
                        space.take(lab.box)
                        labels.append(lab)
                    return True
    at(w, _ALONG[0], w_off)
    at(g, _ALONG[0], -g_off)
    for lab in (w, g):
        space.take(lab.box)
        labels.append(lab)
    return False


def _try_layout(
    e: Explanation, digits: int, sx: float, sy: float, edge_labels: bool = True, unit_labels: bool = True
) -> Drawing:
    view: NetworkView = e.network
    sizes = [view.input_size] + [layer.units for layer in view.layers]
    tallest = max(sizes)
    col_gap, row_gap = COL_GAP * sx, ROW_GAP * sy
    top = MARGIN + 2 * text_height() + RADIUS + 8  # the canvas is cropped to its content at the end
    units: list[list[Unit]] = []
    for c, n in enumerate(sizes):
        y0 = top + (tallest - n) * row_gap / 2
        col = []
        for r in range(n):
            if c == 0:
                name = view.input_names[r]
                names, text = (name,), "input"
            else:
                u = view.unit_names[c - 1][r]
                b = view.bias_names[c - 1][r] if view.bias_names[c - 1] else {}
                names = tuple(dict.fromkeys((u["z"], u["y"], u["dz"], *b.values())))
                text = view.layers[c - 1].activation or "linear"
            col.append(Unit(f"u-{c}-{r}", MARGIN + 90 + c * col_gap, y0 + r * row_gap, text, names, c))
        units.append(col)
    flat_units = [u for col in units for u in col]

    edges: list[Edge] = []
    for c in range(1, len(sizes)):
        for i, a in enumerate(units[c - 1]):
            for j, b in enumerate(units[c]):
                names = view.edge_names[c - 1][i][j]
                edges.append(
                    Edge(
                        f"e-{c}-{i}-{j}",
                        a.x + RADIUS,
                        a.y,
                        b.x - RADIUS,
                        b.y,
                        (names["w"], names["dw"]),
                        (a.id, b.id),
                    )
                )
    last = units[-1]
    loss_runs = label_runs(view.loss_name, fmt(e.loss, digits))
    lw, lh = text_width(loss_runs) + 16, text_height(loss_runs) + 12
    lx0 = last[0].x + RADIUS + max(110.0, 0.4 * col_gap)
    ly = sum(u.y for u in last) / len(last)
    loss_box = (lx0, ly - lh / 2, lx0 + lw, ly + lh / 2)
    loss_obb = Box((loss_box[0] + loss_box[2]) / 2, ly, lw / 2, lh / 2)
    for k, u in enumerate(last):
        edges.append(Edge(f"e-loss-{k}", u.x + RADIUS, u.y, lx0, ly, (), (u.id, "loss")))
    space = _Space(flat_units, edges, loss_obb)
    labels: list[Label] = []
    clean = True

    def put(label: Label, cx: float, cy: float, force: bool = False) -> bool:
        label.cx, label.cy = cx, cy
        ok = space.free(label.box)
        if ok or force:
            space.take(label.box)
            labels.append(label)
        return ok

    # each unit: its values above (z, y) and its gradient and bias below
    for c, col in enumerate(units):
        for r, u in enumerate(col):
            above: list[Label] = []
            below: list[Label] = []
            if c == 0:
                above.append(_unit_label(e, view.input_names[r], digits, "unit"))
            else:
                names = view.unit_names[c - 1][r]
                above.append(_unit_label(e, names["z"], digits, "unit"))
                if names["y"] != names["z"]:
                    above.append(_unit_label(e, names["y"], digits, "unit"))
                runs = label_runs(_base(names["dz"]), _value(e, names["dz"], digits))
                below.append(Label(runs, 0, 0, text_width(runs), text_height(runs), "grad", (names["dz"],)))
                if view.bias_names[c - 1]:
                    b = view.bias_names[c - 1][r]
                    below.append(_unit_label(e, b["b"], digits, "bias"))
                    runs = label_runs(_base(b["db"]), _value(e, b["db"], digits))
                    below.append(Label(runs, 0, 0, text_width(runs), text_height(runs), "grad", (b["db"],)))
            if unit_labels:
                clean &= _place_stack(space, labels, u, above[::-1], -1)  # z on top, y by the unit
                clean &= _place_stack(space, labels, u, below, +1)

    # each edge: its weight and gradient, where they touch nothing
    for edge in edges if edge_labels else ():
        if not edge.names:
            continue
        w_name, dw_name = edge.names
        w = _unit_label(e, w_name, digits, "weight")
        g_runs = label_runs(_base(dw_name), _value(e, dw_name, digits))
        g = Label(g_runs, 0, 0, text_width(g_runs), text_height(g_runs), "grad", (dw_name,))
        w.angle = g.angle = math.atan2(edge.y1 - edge.y0, edge.x1 - edge.x0)
        clean &= _place_edge_labels(space, labels, edge, w, g)

    loss_label = Label(
        loss_runs,
        (loss_box[0] + loss_box[2]) / 2,
        ly,
        text_width(loss_runs),
        text_height(loss_runs),
        "loss",
        (view.loss_name,),
    )
    labels.append(loss_label)

    # the canvas: everything, with a margin
    xs = [lab.box.bounds()[0] for lab in labels] + [u.x - RADIUS for u in flat_units]
    ys = [lab.box.bounds()[1] for lab in labels] + [u.y - RADIUS for u in flat_units]
    shift_x, shift_y = MARGIN - min(xs), MARGIN - min(ys)
    for u in flat_units:
        u.x, u.y = u.x + shift_x, u.y + shift_y
    for ed in edges:
        ed.x0, ed.x1, ed.y0, ed.y1 = ed.x0 + shift_x, ed.x1 + shift_x, ed.y0 + shift_y, ed.y1 + shift_y
    for lab in labels:
        lab.cx, lab.cy = lab.cx + shift_x, lab.cy + shift_y
    loss_box = (loss_box[0] + shift_x, loss_box[1] + shift_y, loss_box[2] + shift_x, loss_box[3] + shift_y)
    width = max([lab.box.bounds()[2] for lab in labels] + [loss_box[2]]) + MARGIN
    height = max([lab.box.bounds()[3] for lab in labels] + [u.y + RADIUS for u in flat_units]) + MARGIN
    return Drawing(
        math.ceil(width),
        math.ceil(height),
        flat_units,
        edges,
        labels,
        loss_box,
        clean=clean,
        title=e.title,
        edge_labels=edge_labels,
        unit_labels=unit_labels,
    )


def layout(e: Explanation, digits: int | None = None) -> Drawing:
    """Where everything goes: the canvas grows (columns by 12 %, rows by 6 % per try) until
    every label is clear of edges, units and other labels. Where that takes more than
    ``MAX_TRIES``, or the network has more than ``MAX_LABELLED_EDGES`` weights, the edges are
    drawn bare (``Drawing.edge_labels`` False), and where even the units' values do not fit,
    the units too (``Drawing.unit_labels`` False): values are then tooltips, and the page's
    tables list them. ``Drawing.clean`` says whether the labels drawn touch nothing. Raises
    ValueError for an explanation that is not of a layered network."""
    if e.network is None:
        raise ValueError("this explanation is not of a layered network; there is no network to draw")
    digits = e.digits if digits is None else digits
    sizes = [e.network.input_size] + [layer.units for layer in e.network.layers]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    modes = [(True, True), (False, True), (False, False)]
    for edge_labels, unit_labels in modes if weights <= MAX_LABELLED_EDGES else modes[1:]:
        sx = sy = 1.0
        for _ in range(MAX_TRIES if unit_labels else 1):
            drawing = _try_layout(e, digits, sx, sy, edge_labels, unit_labels)
            if drawing.clean:
                return drawing
            sx, sy = sx * 1.12, sy * 1.06
    return drawing


# --- SVG by hand ---------------------------------------------------------------------------


def _svg_runs(runs: list[Run]) -> str:
    """tspans: names in italic, subscripts lowered and smaller, the value upright."""
    out, shift = [], 0.0
    for text, style in runs:
        target = {"sub": 0.3, "sup": -0.45}.get(style, 0.0) * FONT_SIZE
        attrs = []
        if target != shift:
            attrs.append(f'dy="{target - shift:.1f}"')
            shift = target
        if style in ("sub", "sup"):
            attrs.append(f'font-size="{FONT_SIZE * SUB_SCALE:.1f}"')
        elif style == "math":
            attrs.append('font-style="italic"')
        out.append(f"<tspan {' '.join(attrs)}>{html.escape(text)}</tspan>" if attrs else html.escape(text))
    return "".join(out)


def network_svg(e: Explanation, digits: int | None = None, drawing: Drawing | None = None) -> str:
    """The drawing as a standalone ``<svg>`` element (str). Units have ids ``u-C-J``, edges
    ``e-L-I-J``, and each label lists the quantities it shows in ``data-q`` (for the
    interactive page). Raises ValueError for an explanation that is not of a layered network."""
    digits = e.digits if digits is None else digits
    d = layout(e, digits) if drawing is None else drawing
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="network" width="{d.width}" height="{d.height}" '
        f'viewBox="0 0 {d.width} {d.height}" font-family="{FONT_FAMILY}" font-size="{FONT_SIZE:g}" '
        f'role="img" aria-label="{html.escape(d.title)}">',
        f'<rect width="{d.width}" height="{d.height}" fill="#ffffff"/>',
    ]
    for ed in d.edges:
        tip = (
            "<title>"
            + html.escape(", ".join(f"{plain_name(n)} = {_value(e, n, digits)}" for n in ed.names))
            + "</title>"
            if ed.names
            else ""
        )
        out.append(
            f'<line id="{ed.id}" class="edge" x1="{ed.x0:.1f}" y1="{ed.y0:.1f}" x2="{ed.x1:.1f}" '
            f'y2="{ed.y1:.1f}" stroke="#9aa5b1" stroke-width="1.5">{tip}</line>'
        )
    for u in d.units:
        fill = "#e8f0fe" if u.column == 0 else "#fdf2e0"
        tip = html.escape(", ".join(f"{plain_name(n)} = {_value(e, n, digits)}" for n in u.names))
        out.append(
            f'<g id="{u.id}" class="unit"><title>{tip}</title>'
            f'<circle cx="{u.x:.1f}" cy="{u.y:.1f}" r="{RADIUS:g}" '
            f'fill="{fill}" stroke="#34495e" stroke-width="2"/>'
            f'<text x="{u.x:.1f}" y="{u.y + UNIT_FONT_SIZE * 0.35:.1f}" text-anchor="middle" '
            f'font-size="{UNIT_FONT_SIZE:g}" fill="#34495e">{html.escape(u.text)}</text></g>'
        )
    x0, y0, x1, y1 = d.loss_box
    out.append(
        f'<rect id="loss" x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="6" '
        'fill="#eef7ee" stroke="#2e7d32" stroke-width="2"/>'
    )
    for lab in d.labels:
        baseline = lab.cy + FONT_SIZE * 0.35
        turn = f' transform="rotate({lab.degrees:.2f} {lab.cx:.1f} {lab.cy:.1f})"' if lab.angle else ""
        out.append(
            f'<text class="label {lab.role}" data-q="{html.escape(" ".join(lab.quantities))}" '
            f'x="{lab.cx:.1f}" y="{baseline:.1f}"{turn} text-anchor="middle" fill="{COLOURS[lab.role]}">'
            f"{_svg_runs(lab.runs)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


# --- matplotlib ----------------------------------------------------------------------------


def mathtext(runs: list[Run]) -> str:
    """The runs as a matplotlib string: names in mathtext (``$w_{11\\text{-}1}$``), values plain."""
    out, math_part = [], []

    def flush() -> None:
        if math_part:
            out.append("$" + "".join(math_part) + "$")
            math_part.clear()

    for text, style in runs:
        if style == "":
            flush()
            out.append(text.replace("$", r"\$"))
        elif style in ("sub", "sup"):
            body = re.sub(r"([{}\\$_^%#&])", r"\\\1", text).replace("-", r"\text{-}")
            math_part.append(("_{" if style == "sub" else "^{") + body + "}")
        else:
            t = re.sub(r"([{}\\$_^%#&])", r"\\\1", text)
            t = t.replace("ŷ", r"\hat{y}").replace("∂", r"\partial ")
            math_part.append(t)
    flush()
    return "".join(out)


def draw(e: Explanation, digits: int | None = None):
    """The drawing as a matplotlib Figure (1 px of the layout = 1 px at 100 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyBboxPatch

    d = layout(e, digits)
    dpi = 100
    fig = plt.figure(figsize=(d.width / dpi, d.height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, d.width)
    ax.set_ylim(d.height, 0)
    ax.axis("off")
    for ed in d.edges:
        ax.plot([ed.x0, ed.x1], [ed.y0, ed.y1], color="#9aa5b1", lw=1.2, zorder=1, gid=ed.id)
    for u in d.units:
        ax.add_patch(
            Circle(
                (u.x, u.y),
                RADIUS,
                facecolor="#e8f0fe" if u.column == 0 else "#fdf2e0",
                edgecolor="#34495e",
                lw=2,
                zorder=2,
                gid=u.id,
            )
        )
        ax.text(
            u.x,
            u.y,
            u.text,
            ha="center",
            va="center",
            fontsize=UNIT_FONT_SIZE * 0.72,
            color="#34495e",
            zorder=3,
        )
    x0, y0, x1, y1 = d.loss_box
    ax.add_patch(
        FancyBboxPatch(
            (x0, y0),
            x1 - x0,
            y1 - y0,
            boxstyle="round,pad=0,rounding_size=6",
            facecolor="#eef7ee",
            edgecolor="#2e7d32",
            lw=2,
            zorder=2,
        )
    )
    for lab in d.labels:
        ax.text(
            lab.cx,
            lab.cy,
            mathtext(lab.runs),
            ha="center",
            va="center",
            fontsize=FONT_SIZE * 0.72,
            color=COLOURS[lab.role],
            zorder=4,
            gid="loss-label" if lab.role == "loss" else "label",
            rotation=-lab.degrees,
            rotation_mode="anchor",
        )
    return fig


def save_diagram(e: Explanation, path: str | os.PathLike, digits: int | None = None) -> None:
    """Write the drawing to ``path`` (.png or .svg) with matplotlib, atomically.

    Raises ValueError for another file type, for an explanation that is not of a layered
    network, or where matplotlib is not installed (``pip install 'chainrule[plot]'``).
    """
    if e.network is None:
        raise ValueError("this explanation is not of a layered network; there is no network to draw")
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"--diagram: expected a file name ending in .png or .svg, got {str(path)!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--diagram needs matplotlib: pip install 'chainrule[plot]'") from None
    fig = draw(e, digits)
    try:
        with atomic_open(path, "wb", encoding=None) as handle:
            fig.savefig(handle, format=suffix[1:], dpi=100)
    finally:
        plt.close(fig)
