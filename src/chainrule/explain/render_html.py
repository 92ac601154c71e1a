"""One self-contained HTML page: tables and an inline SVG drawing, no network access needed.

Formulas are typeset by the vendored KaTeX, inlined into the page (``chainrule._katex``); each
formula carries an HTML fallback (``w<sub>11-1</sub>``) that shows where scripts do not run,
which is what the Jupyter fragment (``render_html_fragment``) shows unless asked to typeset.
"""

from __future__ import annotations

import html
import re

from chainrule._katex import head_html, math
from chainrule.explain.model import Explanation
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import array_text, layout_note, local_rows, node_rows, sections
from chainrule.explain.tex import tex_mono, tex_name, tex_numbers

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; color: #1f3b73; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f8; } td.v { text-align: right; font-family: monospace; }
td.n { font-family: monospace; color: #555; }
.alias { font-family: monospace; color: #555; }
.training { overflow-x: auto; } .layout { color: #555; font-size: 0.9em; }
.diagram { overflow-x: auto; border: 1px solid #dde; margin: 1em 0 0.3em; }
.key { color: #555; font-size: 0.9em; margin: 0 0 1em; }
"""


def name_html(name: str) -> str:
    """w_{11-1} -> w<sub>11-1</sub>, yhat -> y-hat, dL/dx -> partial signs; escaped."""

    def one(part: str) -> str:
        part = html.escape(part)
        part = part.replace("yhat", "&#375;")
        part = re.sub(r"\^\{([^{}]*)\}", r"<sup>\1</sup>", part)
        part = re.sub(r"_\{([^{}]*)\}", r"<sub>\1</sub>", part)
        return re.sub(r"_(\w)(?!\w)", r"<sub>\1</sub>", part)  # x_1, but not l2_loss

    m = re.fullmatch(r"d(.+)/d(.+)", name)
    if m:
        return f"&part;{one(m.group(1))}/&part;{one(m.group(2))}"
    return one(name)


def _expr_html(text: str) -> str:
    """Names inside an expression, typeset like ``name_html``."""
    return " ".join(
        name_html(tok)
        if "_" in tok or "yhat" in tok or tok.startswith("d") and "/" in tok
        else html.escape(tok)
        for tok in text.split(" ")
    )


def _body(e: Explanation, digits: int) -> str:
    out = [f"<h1>{html.escape(e.title)}</h1>"]
    if e.network is not None:
        from chainrule.explain.diagram import layout, network_svg

        drawing = layout(e, digits)
        out.append('<div class="diagram">' + network_svg(e, digits, drawing) + "</div>")
        if drawing.unit_labels:
            edges = (
                "Along each edge: its weight (blue) and the gradient of the loss with respect to "
                "that weight (red)."
                if drawing.edge_labels
                else "Too many weights to write on the edges: point at an edge for its weight and "
                "gradient; the tables below list them all."
            )
            out.append(
                f"<p class='key'>{edges} Above each unit: its pre-activation z and output y; below "
                "it: &part;L/&part;z, its bias B and &part;L/&part;B.</p>"
            )
        else:
            out.append(
                "<p class='key'>Too many units and weights to write their values on the drawing: "
                "point at a unit or an edge for its values; the tables below list them all.</p>"
            )
    secs = sections(e, digits)
    for sec in secs:
        out.append(f"<h2>{html.escape(sec.title)}</h2><table>")
        if sec.key == "given":
            out.append("<tr><th>quantity</th><th>value</th></tr>")
            out += [f"<tr><td>{_name_cell(r)}</td><td class='v'>{r.value}</td></tr>" for r in sec.rows]
        else:
            out.append("<tr><th>quantity</th><th>expression</th><th>numbers</th><th>value</th></tr>")
            out += [
                f"<tr><td>{_name_cell(r)}</td>"
                f"<td>{_formula(tex_name(r.symbolic_latex), _expr_html(r.symbolic))}</td>"
                f"<td class='n'>{_formula(_numbers_tex(r), html.escape(r.numeric))}</td>"
                f"<td class='v'>{r.value}</td></tr>"
                for r in sec.rows
            ]
        out.append("</table>")
    if secs:
        out.append("<h2>Gradients</h2>")
        for a in e.arrays + e.update_arrays:
            note = f" <span class='layout'>({html.escape(layout_note(a))})</span>" if a.layout else ""
            out.append(f"<table><caption>{math(tex_name(a.latex), name_html(a.name))}{note}</caption>")
            for names, vals in zip(a.element_names, array_text(a.values, digits), strict=False):
                out.append(
                    "<tr>"
                    + "".join(
                        f"<td class='v' title='{html.escape(n)}'>{v}</td>"
                        for n, v in zip(names, vals, strict=False)
                    )
                    + "</tr>"
                )
            out.append("</table>")
        out.append(f"<p>Loss L = <b>{fmt(e.loss, digits)}</b></p>")
    else:
        out.append(
            "<h2>Forward: every tensor of the graph</h2><table>"
            "<tr><th>tensor</th><th>expression</th><th>value</th><th>gradient dL/d&middot;</th></tr>"
        )
        for n, value, grad in node_rows(e, digits):
            out.append(
                f"<tr><td>{html.escape(n.name)}</td>"
                f"<td>{_formula(n.expression_latex if n.op else '', html.escape(n.expression))}</td>"
                f"<td class='v'>{html.escape(value)}</td><td class='v'>{html.escape(grad)}</td></tr>"
            )
        out.append("</table><h2>Backward: local derivatives (from each operation's VJP)</h2><table>")
        out += [
            f"<tr><td>{_partial(a, b)}</td><td class='v'>{html.escape(t)}</td></tr>"
            for a, b, t in local_rows(e, digits)
        ]
        out.append("</table>")
    if e.training is not None:
        out.append(training_html(e, digits))
    return "\n".join(out)


def _name_cell(r) -> str:
    """A quantity's name typeset, and the exercise's own name beside it (out_h1)."""
    alias = f" <span class='alias'>({html.escape(r.alias)})</span>" if r.alias else ""
    return math(tex_name(r.latex), name_html(r.name)) + alias


def training_html(e: Explanation, digits: int) -> str:
    """--steps N: a table, one row per step: its loss, then its parameters after it."""
    t = e.training
    if t is None:
        return ""
    params = t.steps[0].parameters
    head = "<th>step</th><th>L (before the step)</th>" + "".join(
        f"<th>{math(tex_name(latex), name_html(name))}"
        + (f" <span class='alias'>({html.escape(e.alias_of(name))})</span>" if e.alias_of(name) else "")
        + "</th>"
        for name, latex, _ in params
    )
    rows = "".join(
        f"<tr><td class='v'>{step.index}</td><td class='v'>{fmt(step.loss, digits)}</td>"
        + (
            "".join(f"<td class='v'>{fmt(v, digits)}</td>" for _, _, v in step.parameters)
            if detail
            else f"<td colspan='{len(params)}'></td>"
        )
        + "</tr>"
        for step, detail in t.rows()
    )
    note = f"<p class='key'>{html.escape(t.note)}</p>" if t.note else ""
    return (
        f"<h2 id='training'>{html.escape(t.title)}</h2>{note}<div class='training'><table>"
        f"<tr>{head}</tr>{rows}</table></div>"
        f"<p>After step {len(t.steps)}: L = <b>{fmt(t.final_loss, digits)}</b></p>"
    )


def _numbers_tex(r) -> str:
    return r.numeric_latex or (tex_numbers(r.numeric) if r.numeric else "")


def _formula(tex: str, fallback: str) -> str:
    """A cell's formula, or its text where there is no LaTeX for it (nothing where neither)."""
    return math(tex, fallback) if tex else fallback


def _partial(a: str, b: str) -> str:
    """d a / d b for two graph tensors' names, typeset, with an HTML fallback."""
    tex = r"\frac{\partial " + tex_mono(a) + r"}{\partial " + tex_mono(b) + "}"
    return math(tex, f"&part;{html.escape(a)}/&part;{html.escape(b)}")


def render_html_fragment(e: Explanation, digits: int | None = None, typeset: bool = False) -> str:
    """The page's body with its style, for embedding (Jupyter's ``_repr_html_``).

    ``typeset=True`` carries KaTeX along (about 0.5 MB, for a notebook output that runs
    scripts); otherwise formulas show their HTML fallback (subscripts, &part;).
    """
    digits = e.digits if digits is None else digits
    katex = head_html() if typeset else ""
    return f"<div class='chainrule-explanation'>{katex}<style>{_CSS}</style>\n{_body(e, digits)}</div>"


def render_html(e: Explanation, digits: int | None = None) -> str:
    """A standalone page (str): formulas typeset by the inlined KaTeX, the network drawn as
    inline SVG; it loads nothing from the network."""
    digits = e.digits if digits is None else digits
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(e.title)}</title>\n{head_html()}<style>{_CSS}</style></head>\n<body>\n"
        f"{_body(e, digits)}\n</body></html>\n"
    )
