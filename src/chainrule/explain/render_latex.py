"""A standalone LaTeX document (article + amsmath): compile it with pdflatex as it is."""

from __future__ import annotations

from chainrule.explain.model import Explanation
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import (
    array_text,
    layout_note,
    local_rows,
    node_rows,
    sections,
    with_alias_latex,
)
from chainrule.explain.tex import tex_mono, tex_name, tex_numbers, tex_text

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\allowdisplaybreaks
"""


def _training(e: Explanation, digits: int) -> list[str]:
    """--steps N: each step's loss and its parameters after it, one paragraph per step (the
    lines wrap as the page needs)."""
    t = e.training
    out = ["", rf"\section*{{{tex_text(t.title)}}}"] + ([tex_text(f"({t.note})"), ""] if t.note else [])
    for step, detail in t.rows():
        params = detail and ", ".join(
            f"${tex_name(with_alias_latex(latex, e.alias_of(name)))} = {tex_numbers(fmt(v, digits))}$"
            for name, latex, v in step.parameters
        )
        out.append(
            rf"\paragraph{{Step {step.index}}} $L = {tex_numbers(fmt(step.loss, digits))}$"
            + (f"; then {params}." if params else ".")
        )
        out.append("")
    out.append(rf"\paragraph{{After step {len(t.steps)}}} $L = {tex_numbers(fmt(t.final_loss, digits))}$.")
    return out


def render_latex(e: Explanation, digits: int | None = None) -> str:
    digits = e.digits if digits is None else digits
    out = [_PREAMBLE, rf"\title{{{tex_text(e.title)}}}", r"\date{}", r"\begin{document}", r"\maketitle", ""]
    secs = sections(e, digits)
    for sec in secs:
        out += [rf"\section*{{{tex_text(sec.title)}}}", r"\begin{align*}"]
        lines = []
        for r in sec.rows:
            parts = [tex_name(r.label_latex)]
            if r.symbolic_latex:
                parts.append(tex_name(r.symbolic_latex))
            if r.numeric:
                parts.append(tex_numbers(r.numeric_latex or r.numeric))
            parts.append(tex_numbers(r.value))
            lines.append(parts[0] + " &= " + " = ".join(parts[1:]))
        out.append(" \\\\\n".join(lines))
        out += [r"\end{align*}", ""]
    if secs:
        out += [r"\section*{Gradients}", r"\begin{align*}"]
        lines = []
        for a in e.arrays + e.update_arrays:
            body = r" \\ ".join(" & ".join(tex_numbers(c) for c in r) for r in array_text(a.values, digits))
            note = rf" \quad \text{{({tex_text(layout_note(a))})}}" if a.layout else ""
            lines.append(rf"{tex_name(a.latex)} &= \begin{{bmatrix}} {body} \end{{bmatrix}}{note}")
        lines.append(rf"L &= {tex_numbers(fmt(e.loss, digits))}")
        out += [" \\\\\n".join(lines), r"\end{align*}"]
    else:
        out += [r"\section*{Forward: every tensor of the graph}", r"\begin{align*}"]
        lines = []
        for n, value, grad in node_rows(e, digits):
            rhs = f"{n.expression_latex} = " if n.op else ""
            lines.append(
                rf"{tex_mono(n.name)} &= {rhs}{tex_mono(value)}, \quad "
                rf"\frac{{\partial L}}{{\partial {tex_mono(n.name)}}} = {tex_mono(grad)}"
            )
        out += [" \\\\\n".join(lines), r"\end{align*}", r"\section*{Local derivatives}", r"\begin{itemize}"]
        out += [
            rf"\item $\partial {tex_mono(a)} / \partial {tex_mono(b)}$: "
            rf"\texttt{{{tex_text(t)}}}"
            for a, b, t in local_rows(e, digits)
        ]
        out.append(r"\end{itemize}")
    if e.training is not None:
        out += _training(e, digits)
    out += ["", r"\end{document}", ""]
    return "\n".join(out)
