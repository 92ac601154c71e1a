"""Plain text for any terminal or file; colour and tables with ``rich`` when asked (a TTY).

``rich`` is optional (the ``pretty`` extra): without it, or with ``color=False``, the output is
plain ASCII lines, one equation per line, as a hand-worked solution is written.
"""

from __future__ import annotations

import io
import shutil

from chainrule.explain.model import Explanation, Training
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import array_text, array_title, local_rows, node_rows, sections


def _equation(r) -> str:
    parts = [r.label]
    if r.symbolic:
        parts.append(r.symbolic)
    if r.numeric:
        parts.append(r.numeric)
    parts.append(r.value)
    return " = ".join(parts)


def _matrix_lines(values, digits: int, indent: str) -> list[str]:
    cells = array_text(values, digits)
    width = max(len(c) for r in cells for c in r)
    return [indent + "[ " + "  ".join(c.rjust(width) for c in r) + " ]" for r in cells]


def _result_label(e: Explanation) -> str:
    """'Loss L', or 'Output f' for a network explained without a loss."""
    if e.network is not None and e.network.loss == "none":
        return f"Output {e.network.loss_name}"
    return "Loss L"


def render_plain(e: Explanation, digits: int) -> str:
    lines = [e.title, "=" * len(e.title), ""]
    secs = sections(e, digits)
    if secs:
        for sec in secs:
            if sec.key == "update":
                continue  # after the gradients it uses
            lines += [sec.title, "-" * len(sec.title)]
            if sec.key == "given":
                lines += [f"  {r.label} = {r.value}" for r in sec.rows]
            else:
                lines += [f"  {_equation(r)}" for r in sec.rows]
            lines.append("")
        lines += ["Gradients", "---------"]
        for a in e.arrays:
            names = "  ".join("[" + ", ".join(r) + "]" for r in a.element_names)
            lines.append(f"  {array_title(a)} = {names} =")
            lines += _matrix_lines(a.values, digits, "    ")
        lines.append(f"  {_result_label(e)} = {fmt(e.loss, digits)}")
        for sec in secs:
            if sec.key == "update":
                lines += ["", sec.title, "-" * len(sec.title)]
                lines += [f"  {_equation(r)}" for r in sec.rows]
        if e.update_arrays:
            lines += ["", "Updated parameters", "------------------"]
            for a in e.update_arrays:
                lines.append(f"  {array_title(a)} =")
                lines += _matrix_lines(a.values, digits, "    ")
    else:
        lines += _plain_graph(e, digits)
    if e.training is not None:
        lines = [*lines, "", *training_lines(e.training, digits, e.alias_of)]
    return "\n".join(lines).rstrip() + "\n"


def _plain_graph(e: Explanation, digits: int) -> list[str]:
    lines = ["Forward: every tensor of the graph", "----------------------------------"]
    for n, value, _ in node_rows(e, digits):
        lines.append(f"  {n.name} = {n.expression} = {value}" if n.op else f"  {n.name} = {value}")
    lines += [
        "",
        "Backward: local derivatives (from each operation's VJP)",
        "-------------------------------------------------------",
    ]
    lines += [f"  d{node}/d{parent} = {text}" for node, parent, text in local_rows(e, digits)]
    top = e.nodes[-1].name
    title = f"Backward: the gradient d{top}/d(tensor) of every tensor"
    lines += ["", title, "-" * len(title)]
    lines += [f"  d{e.nodes[-1].name}/d{n.name} = {grad}" for n, _, grad in node_rows(e, digits)]
    if e.update_arrays:
        lines += ["", f"Gradient-descent update (eta = {e.lr})", "-----------------------"]
        for a in e.update_arrays:
            lines.append(f"  {a.name} =")
            lines += _matrix_lines(a.values, digits, "    ")
    return lines


def training_lines(t: Training, digits: int, alias_of=lambda name: "") -> list[str]:
    """--steps N: each step's loss, then its parameters after it (named, aliases beside)."""
    lines = [t.title, "-" * len(t.title)]
    if t.note:
        lines.append(f"  ({t.note})")
    for step, detail in t.rows():
        if not detail:
            lines.append(f"  step {step.index}: L = {fmt(step.loss, digits)}")
            continue
        lines.append(f"  step {step.index}: L = {fmt(step.loss, digits)}, then")
        parts = []
        for name, _, value in step.parameters:
            alias = alias_of(name)
            parts.append(f"{name}{f' ({alias})' if alias else ''} = {fmt(value, digits)}")
        if parts:
            lines.append("    " + "  ".join(parts))
    lines.append(f"  after step {len(t.steps)}: L = {fmt(t.final_loss, digits)}")
    return lines


def _terminal_width() -> int:
    return max(80, shutil.get_terminal_size((120, 40)).columns)


def render_rich(e: Explanation, digits: int, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        width=width or _terminal_width(),
        highlight=False,
    )
    console.print(f"[bold]{e.title}[/bold]")
    secs = sections(e, digits)
    if not secs:
        console.print(render_plain(e, digits), markup=False)
        return buffer.getvalue()
    for sec in sorted(secs, key=lambda s: s.key == "update"):
        table = Table(title=sec.title, title_style="bold cyan", title_justify="left", show_edge=False)
        if sec.key == "given":
            table.add_column("quantity", style="bold")
            table.add_column("value", justify="right")
            for r in sec.rows:
                table.add_row(r.label, r.value)
        else:
            table.add_column("quantity", style="bold")
            table.add_column("expression", style="magenta")
            table.add_column("numbers")
            table.add_column("value", justify="right", style="green")
            for r in sec.rows:
                table.add_row(r.label, r.symbolic, r.numeric, r.value)
        console.print(table)
        console.print()
    for a in e.arrays:
        table = Table(title=array_title(a), title_style="bold cyan", title_justify="left", show_header=False)
        for _ in a.element_names[0]:
            table.add_column(justify="right")
        for names, vals in zip(a.element_names, array_text(a.values, digits), strict=False):
            table.add_row(*[f"{v} [dim]{n}[/dim]" for n, v in zip(names, vals, strict=False)])
        console.print(table)
    label, _, name = _result_label(e).partition(" ")
    console.print(f"[bold]{label}[/bold] {name} = [green]{fmt(e.loss, digits)}[/green]")
    for a in e.update_arrays:
        table = Table(title=array_title(a), title_style="bold cyan", title_justify="left", show_header=False)
        for _ in a.element_names[0]:
            table.add_column(justify="right")
        for vals in array_text(a.values, digits):
            table.add_row(*vals)
        console.print(table)
    if e.training is not None:
        console.print()
        console.print("\n".join(training_lines(e.training, digits, e.alias_of)), markup=False)
    return buffer.getvalue()


def render_text(e: Explanation, digits: int | None = None, color: bool = False) -> str:
    """Plain text; with ``color=True`` and rich installed, coloured tables (ANSI codes)."""
    digits = e.digits if digits is None else digits
    if color:
        try:
            return render_rich(e, digits)
        except ImportError:
            pass  # rich is an optional extra: plain text is always available
    return render_plain(e, digits)
