"""An interactive HTML page: step through the forward and backward pass one quantity at a time.

Each step is one quantity of the explanation, in the order a hand-worked solution meets them
(forward pass, loss, local derivatives, chain-rule products, the update): the page typesets its
equation with names and with numbers (``dL/dw_{31-1} = dL/dz_{1-1} * dz_{1-1}/dw_{31-1} = ...``),
highlights its unit and edge on the network drawing, and reveals its value on the drawing; what
is not computed yet is faded. Arrow keys (Home, End too) and buttons move between steps.

Everything is in the one file (KaTeX, the SVG, the steps as JSON): no network access. The
numbers are the explanation's, read off the engine; the page's script only shows and hides them
and never computes a value.
"""

from __future__ import annotations

import html
import json
import re

from chainrule._katex import head_html, math
from chainrule.explain.diagram import Drawing, layout, network_svg
from chainrule.explain.model import Explanation
from chainrule.explain.render_common import Row, row
from chainrule.explain.render_html import name_html, tex_name, tex_numbers, training_html

_CSS = """
.training { overflow-x: auto; } .training table { border-collapse: collapse; margin: 0.5em 0; }
.training th, .training td { border: 1px solid #ccd; padding: 0.2em 0.5em; }
.training td { text-align: right; font-family: monospace; } .alias { font-family: monospace; color: #555; }
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 0.4em; }
#controls { display: flex; gap: 0.5em; align-items: center; margin: 0.6em 0; flex-wrap: wrap; }
#controls button { font-size: 1em; padding: 0.3em 0.9em; border: 1px solid #8895a7; border-radius: 4px;
  background: #f4f6fa; cursor: pointer; }
#controls button:disabled { opacity: 0.4; cursor: default; }
#counter { font-variant-numeric: tabular-nums; margin-left: 0.6em; color: #444; }
.hint { color: #777; font-size: 0.9em; margin-left: auto; }
#panel { border: 1px solid #dde; border-radius: 6px; padding: 0.6em 1em; min-height: 5.5em;
  background: #fbfbfd; }
#panel .section { color: #1f3b73; font-weight: 600; margin-bottom: 0.3em; }
#panel .note { color: #555; font-size: 0.92em; }
.step[hidden] { display: none; }
.diagram { overflow-x: auto; border: 1px solid #dde; margin: 1em 0; }
#network .label { transition: opacity 0.15s; }
#network .label.pending { opacity: 0.12; }
#network .label.current { font-weight: bold; fill: #d35400; }
#network .unit.active circle { stroke: #d35400; stroke-width: 5; }
#network line.edge.active { stroke: #d35400; stroke-width: 4; }
#network rect#loss.active { stroke: #d35400; stroke-width: 4; }
"""

_SCRIPT = """
(function () {
  var steps = JSON.parse(document.getElementById("chainrule-steps").textContent);
  var panels = document.querySelectorAll("#panel .step");
  var labels = document.querySelectorAll("#network .label");
  var order = {};  // quantity name -> the step that computes it (givens are absent: known from the start)
  steps.forEach(function (s, k) { if (k > 0) order[s.name] = k; });
  var current = 0;
  function show(k) {
    current = Math.max(0, Math.min(steps.length - 1, k));
    var step = steps[current];
    panels.forEach(function (p, i) { p.hidden = i !== current; });
    document.querySelectorAll("#network .active").forEach(function (el) { el.classList.remove("active"); });
    step.highlight.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.classList.add("active");
    });
    labels.forEach(function (lab) {
      var names = lab.getAttribute("data-q").split(" ");
      var pending = names.some(function (n) { return (order[n] || 0) > current; });
      lab.classList.toggle("pending", pending);
      lab.classList.toggle("current", current > 0 && names.indexOf(step.name) >= 0);
    });
    document.getElementById("counter").textContent = "step " + current + " of " + (steps.length - 1);
    document.getElementById("first").disabled = document.getElementById("prev").disabled = current === 0;
    document.getElementById("last").disabled = document.getElementById("next").disabled =
      current === steps.length - 1;
    document.body.setAttribute("data-step", String(current));
  }
  document.getElementById("first").addEventListener("click", function () { show(0); });
  document.getElementById("prev").addEventListener("click", function () { show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { show(current + 1); });
  document.getElementById("last").addEventListener("click", function () { show(steps.length - 1); });
  document.addEventListener("keydown", function (ev) {
    var to = {ArrowRight: current + 1, ArrowDown: current + 1, ArrowLeft: current - 1, ArrowUp: current - 1,
              Home: 0, End: steps.length - 1}[ev.key];
    if (to === undefined || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    ev.preventDefault();
    show(to);
  });
  show(0);
})();
"""

_SECTION = {
    "forward": "Forward pass",
    "loss": "Forward pass: the loss",
    "local": "Backward pass: a local partial derivative",
    "chain": "Backward pass: the chain rule",
    "update": "Gradient-descent update",
}

_NOTE = {
    "forward": "computed from the values before it; the unit is highlighted",
    "loss": "the loss of the prediction against the target",
    "local": "a factor of the chain rule, from the operation's own derivative (its VJP)",
    "chain": "the product of the gradient arriving from the loss and the local derivative",
    "update": "the new value after one step against the gradient",
}


def _strip(name: str) -> str:
    """A name without its superscripts: the sample of a batch, ``new`` of an update."""
    return re.sub(r"\^\{[^{}]*\}", "", name)


def _element_index(e: Explanation, d: Drawing) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Base quantity names -> the id of the unit or edge they belong to, and unit pairs -> edge."""
    view = e.network
    index: dict[str, str] = {view.loss_name: "loss"}
    for u in d.units:
        for n in u.names:
            m = re.fullmatch(r"d(.+)/d(.+)", n)
            index.setdefault(_strip(m.group(2) if m else n), u.id)
    outputs = [u for u in d.units if u.column == len(view.layers)]
    for name, u in zip(view.output_names, outputs, strict=False):  # yhat_k of a softmax output
        index.setdefault(_strip(name), u.id)
    between: dict[tuple[str, str], str] = {}
    for ed in d.edges:
        if ed.names:
            index.setdefault(_strip(ed.names[0]), ed.id)
            between[ed.ends] = ed.id
    return index, between


def highlight(name: str, index: dict[str, str], between: dict[tuple[str, str], str]) -> list[str]:
    """Ids of the diagram's elements a quantity is about: dz_{1-2}/dy_{1-1} -> both units and
    the edge between them; dL/dw_{31-1} -> the loss and the edge of w_{31-1}."""
    m = re.fullmatch(r"d(.+)/d(.+)", name)
    parts = [m.group(1), *m.group(2).split("|")] if m else [name]  # a path: dL/dy_{1-1}|z_{1-2}
    ids = list(dict.fromkeys(index[p] for p in map(_strip, parts) if p in index))
    units = [i for i in ids if i.startswith("u-")]
    if len(units) == 2 and not any(i.startswith("e-") for i in ids):
        edge = between.get((units[1], units[0])) or between.get((units[0], units[1]))
        if edge:
            ids.append(edge)
    return ids


def _equation(r: Row) -> str:
    """``name = symbolic = numbers = value`` in LaTeX, each part once."""
    parts = [tex_name(r.label_latex)]
    if r.symbolic_latex:
        parts.append(tex_name(r.symbolic_latex))
    if r.numeric:
        parts.append(r.numeric_latex or tex_numbers(r.numeric))
    parts.append(tex_numbers(r.value))
    return " = ".join(parts)


def steps(e: Explanation, digits: int | None = None, drawing: Drawing | None = None) -> list[dict]:
    """The page's steps: step 0 shows what is given; then one per computed quantity, in the
    explanation's order. Each: name, kind, row (the rendered row), highlight (element ids)."""
    if e.network is None or not e.quantities:
        raise ValueError(
            "the interactive page needs an explanation of a layered network (a network file, or "
            "F.linear layers ending in a loss); this graph has no network to step through"
        )
    digits = e.digits if digits is None else digits
    index, between = _element_index(e, layout(e, digits) if drawing is None else drawing)
    out: list[dict] = [{"name": "", "kind": "given", "row": None, "highlight": []}]
    for q in e.quantities:
        if q.is_given:
            continue
        out.append(
            {
                "name": q.name,
                "kind": q.kind,
                "row": row(q, e, digits),
                "highlight": highlight(q.name, index, between),
            }
        )
    return out


def _given_panel(e: Explanation, digits: int) -> str:
    given = [row(q, e, digits) for q in e.quantities if q.is_given]
    shown = ", ".join(
        math(f"{tex_name(r.latex)} = {tex_numbers(r.value)}", f"{name_html(r.name)} = {r.value}")
        for r in given
    )
    return (
        "<div class='section'>Given</div>"
        f"<div>{shown}</div>"
        "<div class='note'>Press &rarr; (or Next) to compute the forward pass one quantity at a time, "
        "then the backward pass.</div>"
    )


def render_interactive(e: Explanation, digits: int | None = None) -> str:
    """The interactive page as one HTML string (UTF-8 text; no external resources).

    Raises ValueError for an explanation that is not of a layered network.
    """
    digits = e.digits if digits is None else digits
    drawing = layout(e, digits) if e.network is not None else None  # once, for the steps and the SVG
    all_steps = steps(e, digits, drawing)
    panels = [f"<div class='step' data-name='' hidden>{_given_panel(e, digits)}</div>"]
    for s in all_steps[1:]:
        r: Row = s["row"]
        fallback = html.escape(" = ".join(p for p in (r.name, r.symbolic, r.numeric, r.value) if p))
        panels.append(
            f"<div class='step' data-name='{html.escape(s['name'], quote=True)}' hidden>"
            f"<div class='section'>{_SECTION.get(s['kind'], s['kind'])}</div>"
            f"{math(_equation(r), fallback, display=True)}"
            f"<div class='note'>{_NOTE.get(s['kind'], '')}</div></div>"
        )
    data = [{"name": s["name"], "kind": s["kind"], "highlight": s["highlight"]} for s in all_steps]
    blob = json.dumps(data).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(e.title)} (step by step)</title>\n{head_html()}"
        f"<style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(e.title)}</h1>\n"
        "<div id='controls'>"
        "<button id='first' type='button' title='first step (Home)'>&laquo; First</button>"
        "<button id='prev' type='button' title='previous step (&larr;)'>&#x25C0; Previous</button>"
        "<button id='next' type='button' title='next step (&rarr;)'>Next &#x25B6;</button>"
        "<button id='last' type='button' title='last step (End)'>Last &raquo;</button>"
        "<span id='counter'></span><span class='hint'>keys: &larr; &rarr; Home End</span></div>\n"
        f"<div id='panel'>{''.join(panels)}</div>\n"
        f"<div class='diagram'>{network_svg(e, digits, drawing)}</div>\n"
        f"{training_html(e, digits)}\n"
        f"<script type='application/json' id='chainrule-steps'>{blob}</script>\n"
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )
