"""Markdown with inline LaTeX math ($...$), as GitHub, Jupyter and most note tools render it."""

from __future__ import annotations

from chainrule.explain.model import Explanation
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import array_text, layout_note, local_rows, node_rows, sections
from chainrule.explain.tex import tex_name, tex_numbers


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def _math(tex: str) -> str:
    """Inline math for a table cell: a bar is \\vert (an escaped ``\\|`` would be read by
    KaTeX/MathJax as the double bar), numbers as powers of ten (``2.843 \\times 10^{-5}``)."""
    tex = tex_numbers(tex_name(tex))
    tex = tex.replace(r"\left|", r"\left\vert ").replace(r"\right|", r"\right\vert ")
    return "$" + tex.replace("|", r"\vert ") + "$"


def _name(r) -> str:
    """The quantity cell: its math, and the exercise's own name beside it (`out_h1`)."""
    return _math(r.latex) + (f" (`{_cell(r.alias)}`)" if r.alias else "")


def _layout(a) -> list[str]:
    """A weight matrix's layout, in words under it."""
    return [f"({layout_note(a)})"] if a.layout else []


def render_markdown(e: Explanation, digits: int | None = None) -> str:
    digits = e.digits if digits is None else digits
    out = [f"# {e.title}", ""]
    secs = sections(e, digits)
    for sec in secs:
        out += [f"## {sec.title}", ""]
        if sec.key == "given":
            out += ["| quantity | value |", "|---|---:|"]
            out += [f"| {_name(r)} | {r.value} |" for r in sec.rows]
        else:
            out += ["| quantity | expression | numbers | value |", "|---|---|---|---:|"]
            for r in sec.rows:
                sym = _math(r.symbolic_latex) if r.symbolic_latex else _cell(r.symbolic)
                out.append(f"| {_name(r)} | {sym} | {_cell(r.numeric)} | {r.value} |")
        out.append("")
    if secs:
        out += ["## Gradients", ""]
        for a in e.arrays:
            cells = array_text(a.values, digits)
            body = r" \\ ".join(" & ".join(tex_numbers(c) for c in r) for r in cells)
            out += [f"$${tex_name(a.latex)} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}$$", *_layout(a), ""]
        out += [f"Loss $L = {tex_numbers(fmt(e.loss, digits))}$", ""]
        for a in e.update_arrays:
            body = r" \\ ".join(" & ".join(tex_numbers(c) for c in r) for r in array_text(a.values, digits))
            out += [f"$${tex_name(a.latex)} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}$$", *_layout(a), ""]
    else:
        out += [
            "## Forward: every tensor of the graph",
            "",
            "| tensor | expression | value | gradient |",
            "|---|---|---|---|",
        ]
        for n, value, grad in node_rows(e, digits):
            out.append(f"| `{n.name}` | `{_cell(n.expression)}` | {_cell(value)} | {_cell(grad)} |")
        out += [
            "",
            "## Backward: local derivatives (from each operation's VJP)",
            "",
            "| derivative | value |",
            "|---|---|",
        ]
        out += [f"| `d{a}/d{b}` | {_cell(t)} |" for a, b, t in local_rows(e, digits)]
        out.append("")
    if e.training is not None:
        out += _training(e, digits)
    return "\n".join(out).rstrip() + "\n"


def _training(e: Explanation, digits: int) -> list[str]:
    """--steps N: a table, one row per step: its loss, then its parameters after it."""
    t = e.training
    params = t.steps[0].parameters
    head = ["step", "$L$ (before the step)"] + [
        _math(latex) + (f" (`{_cell(e.alias_of(name))}`)" if e.alias_of(name) else "")
        for name, latex, _ in params
    ]
    out = [f"## {t.title}", ""] + ([f"({t.note})", ""] if t.note else [])
    out += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for step, detail in t.rows():
        values = [fmt(v, digits) if detail else "" for _, _, v in step.parameters]
        cells = [str(step.index), fmt(step.loss, digits)] + values
        out.append("| " + " | ".join(cells) + " |")
    out += ["", f"After step {len(t.steps)}: $L = {tex_numbers(fmt(t.final_loss, digits))}$", ""]
    return out
