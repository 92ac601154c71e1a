"""Finding the math of a derivation: the display formulas of a Markdown document (``$$ ... $$``)
or of a LaTeX one (``\\[ ... \\]``, ``equation``, ``align``), each with its line and the prose
before it. Math opened and never closed is unusable input (``DerivationError``)."""
from __future__ import annotations

import re
from dataclasses import dataclass


class DerivationError(ValueError):
    """The document cannot be used at all (one line, with the line number)."""


@dataclass
class Block:
    line: int  # where the formula starts
    tex: str
    before: str = ""  # the prose between the previous formula and this one
    before_line: int = 0  # the line where that prose starts


def markdown_blocks(source: str) -> list[Block]:
    """Every ``$$ ... $$`` display formula, with its line and the prose before it."""
    blocks: list[Block] = []
    prose: list[str] = []
    prose_line = 1
    lines = source.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if "$$" not in line:
            if not prose:
                prose_line = k + 1
            prose.append(line)
            k += 1
            continue
        start = k + 1
        first = line.index("$$")
        rest = line[first + 2:]
        if "$$" in rest:
            tex = rest[:rest.index("$$")]
            k += 1
        else:
            body = [rest]
            k += 1
            while k < len(lines) and "$$" not in lines[k]:
                body.append(lines[k])
                k += 1
            if k == len(lines):
                raise DerivationError(f"line {start}: $$ opened here is never closed")
            body.append(lines[k][:lines[k].index("$$")])
            k += 1
            tex = "\n".join(body)
        blocks.append(Block(start, tex, "\n".join(prose), prose_line))
        prose = []
    return blocks


_TEX_ENV = re.compile(r"\\begin\{(equation\*?|align\*?|displaymath)\}(.*?)\\end\{\1\}"
                      r"|\\\[(.*?)\\\]|\$\$(.*?)\$\$",
                      re.S)


def latex_blocks(source: str) -> list[Block]:
    """Display math of a LaTeX document: ``\\[...\\]``, ``$$...$$``, equation and align
    (``%`` comments are not read; lines keep their numbers)."""
    source = re.sub(r"(?<!\\)%[^\n]*", "", source)
    body = source
    if "\\begin{document}" in source:
        body = source[source.index("\\begin{document}"):]
    offset = source.index(body)
    blocks = []
    last = 0
    for m in _TEX_ENV.finditer(body):
        _unclosed(source, offset, body[last:m.start()], last)
        tex = m.group(2) or m.group(3) or m.group(4) or ""
        start = m.start(2) if m.group(2) is not None else m.start()
        prose, prose_line = body[last:m.start()], source.count("\n", 0, offset + last) + 1
        # \intertext{...} between an align's rows is prose: the rows after it are a new formula
        pieces = re.split(r"(\\intertext\{[^{}]*\})", tex) if m.group(1) else [tex]
        for k in range(0, len(pieces), 2):
            piece = pieces[k]
            if k:
                prose = re.sub(r"^\\intertext\{|\}$", "", pieces[k - 1])
                prose_line = source.count("\n", 0, offset + start) + 1
            if piece.strip().strip("\\").strip():
                if m.group(1) and m.group(1).startswith("align"):
                    piece = "\\begin{aligned}" + piece + "\\end{aligned}"
                line = source.count("\n", 0, offset + (start if k else m.start())) + 1
                blocks.append(Block(line, piece, prose, prose_line))
            start += len(piece if not piece.startswith("\\begin{aligned}") else
                         piece[len("\\begin{aligned}"):-len("\\end{aligned}")])
            if k + 1 < len(pieces):
                start += len(pieces[k + 1])
        last = m.end()
    _unclosed(source, offset, body[last:], last)
    return blocks


_OPENERS = re.compile(r"\\\[|\$\$|\\begin\{(equation\*?|align\*?|displaymath)\}")


def _unclosed(source: str, offset: int, prose: str, start: int) -> None:
    """Display math opened in what lies between the formulas is never closed: unusable input."""
    m = _OPENERS.search(prose)
    if m:
        line = source.count("\n", 0, offset + start + m.start()) + 1
        raise DerivationError(f"line {line}: {m.group(0)} opened here is never closed")
