"""A standalone LaTeX document (article + amsmath): compile it with pdflatex as it is."""

from __future__ import annotations

from chainrule.explain.model import Explanation
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import (
    LAYOUT_NOTES,
    array_text,
    local_rows,
    node_rows,
    sections,
    with_alias_latex,
)

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\allowdisplaybreaks
"""


def _escape(text: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("{", r"\{"),
        ("}", r"\}"),
        ("^", r"\^{}"),
        ("#", r"\#"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("$", r"\$"),
    ):
        text = text.replace(a, b)
    return text


def _num(text: str) -> str:
    """A rendered number in math mode: 2.843e-05 -> 2.843 \\times 10^{-5}; x -> \\times."""
    import re

    text = re.sub(
        r"(-?\d+(?:\.\d+)?)e([+-]\d+)", lambda m: f"{m.group(1)} \\times 10^{{{int(m.group(2))}}}", text
    )
    return text.replace(" x ", r" \times ")


def _training(e: Explanation, digits: int) -> list[str]:
    """--steps N: each step's loss and its parameters after it, one paragraph per step (the
    lines wrap as the page needs)."""
    t = e.training
    out = ["", rf"\section*{{{_escape(t.title)}}}"]
    for step in t.steps:
        params = ", ".join(
            f"${with_alias_latex(latex, e.alias_of(name))} = {_num(fmt(v, digits))}$"
            for name, latex, v in step.parameters
        )
        out.append(
            rf"\paragraph{{Step {step.index}}} $L = {_num(fmt(step.loss, digits))}$"
            + (f"; then {params}." if params else ".")
        )
        out.append("")
    out.append(rf"\paragraph{{After step {len(t.steps)}}} $L = {_num(fmt(t.final_loss, digits))}$.")
    return out


def render_latex(e: Explanation, digits: int | None = None) -> str:
    digits = e.digits if digits is None else digits
    out = [_PREAMBLE, rf"\title{{{_escape(e.title)}}}", r"\date{}", r"\begin{document}", r"\maketitle", ""]
    secs = sections(e, digits)
    for sec in secs:
        out += [rf"\section*{{{_escape(sec.title)}}}", r"\begin{align*}"]
        lines = []
        for r in sec.rows:
            parts = [r.label_latex]
            if r.symbolic_latex:
                parts.append(r.symbolic_latex)
            if r.numeric:
                parts.append(_num(r.numeric_latex or r.numeric))
            parts.append(_num(r.value))
            lines.append(parts[0] + " &= " + " = ".join(parts[1:]))
        out.append(" \\\\\n".join(lines))
        out += [r"\end{align*}", ""]
    if secs:
        out += [r"\section*{Gradients}", r"\begin{align*}"]
        lines = []
        for a in e.arrays + e.update_arrays:
            body = r" \\ ".join(" & ".join(_num(c) for c in r) for r in array_text(a.values, digits))
            note = rf" \quad \text{{({LAYOUT_NOTES[a.layout]})}}" if a.layout else ""
            lines.append(rf"{a.latex} &= \begin{{bmatrix}} {body} \end{{bmatrix}}{note}")
        lines.append(rf"L &= {_num(fmt(e.loss, digits))}")
        out += [" \\\\\n".join(lines), r"\end{align*}"]
    else:
        out += [r"\section*{Forward: every tensor of the graph}", r"\begin{align*}"]
        lines = []
        for n, value, grad in node_rows(e, digits):
            rhs = f"{n.expression_latex} = " if n.op else ""
            lines.append(
                rf"\mathtt{{{_escape(n.name)}}} &= {rhs}\texttt{{{_escape(value)}}}, \quad "
                rf"\frac{{\partial L}}{{\partial \mathtt{{{_escape(n.name)}}}}} = \texttt{{{_escape(grad)}}}"
            )
        out += [" \\\\\n".join(lines), r"\end{align*}", r"\section*{Local derivatives}", r"\begin{itemize}"]
        out += [
            rf"\item $\partial \mathtt{{{_escape(a)}}} / \partial \mathtt{{{_escape(b)}}}$: "
            rf"\texttt{{{_escape(t)}}}"
            for a, b, t in local_rows(e, digits)
        ]
        out.append(r"\end{itemize}")
    if e.training is not None:
        out += _training(e, digits)
    out += ["", r"\end{document}", ""]
    return "\n".join(out)
