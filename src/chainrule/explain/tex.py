"""Text and numbers into LaTeX, once for every renderer that writes TeX (the LaTeX document,
markdown's ``$...$``, the HTML pages' KaTeX).

- ``tex_text``: any text (a title, a name, an alias, a layout note) for LaTeX *text* mode, as
  in ``\\section*{...}`` or ``\\text{...}``: the ten special characters
  (``\\ _ % & # $ { } ~ ^``) escaped, and non-ASCII letters and symbols (σ, ŷ, η, ×, →), which
  pdflatex rejects in text without extra packages and KaTeX's ``\\text`` renders with another
  font, written as inline math (``$\\sigma$``, ``$\\hat{y}$``). Both pdflatex and KaTeX read
  ``$...$`` inside ``\\text{...}``.
- ``tex_numbers``: a row's numbers as the text renderer writes them (``0.0212 x 0.7869``,
  ``sigmoid(1.3062)``, ``2.843e-05``) in math mode: ``\\times``, ``\\operatorname{sigmoid}``
  (upright, as amsmath sets function names), powers of ten (``2.843 \\times 10^{-5}``).
- ``tex_name``: the hyphen of the reference solution's ``w_{11-1}`` as a hyphen.
"""

from __future__ import annotations

import re
import unicodedata

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}

# Symbols that are not letters with accents: their math-mode command.
_SYMBOLS = {
    "×": r"\times",
    "·": r"\cdot",
    "−": "-",
    "→": r"\to",
    "←": r"\leftarrow",
    "∂": r"\partial",
    "∇": r"\nabla",
    "≈": r"\approx",
    "≠": r"\neq",
    "≤": r"\leq",
    "≥": r"\geq",
    "±": r"\pm",
    "∑": r"\sum",
    "√": r"\surd",
    "∞": r"\infty",
    "…": r"\ldots",
    "°": r"^{\circ}",
}
# Plain-text stand-ins (typographic punctuation pdflatex's default encoding lacks).
_PLAIN = {"–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~"}
# Combining accents: the math accent each becomes (ŷ = y + U+0302 -> \hat{y}).
_ACCENTS = {"\u0302": r"\hat", "\u0304": r"\bar", "\u0303": r"\tilde", "\u0307": r"\dot", "\u0308": r"\ddot"}


def _greek(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    m = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER (\w+)", name)
    if not m:
        return None
    letter = m.group(2).lower()
    if letter == "final sigma":
        letter = "sigma"
    if letter in ("omicron",):
        return "o" if m.group(1) == "SMALL" else "O"
    command = "\\" + (letter if m.group(1) == "SMALL" else letter.capitalize())
    # capitals with a Latin look-alike have no command of their own: A, B, E, Z, H, I, K, M, N, P, T, X
    latin = {
        "Alpha": "A",
        "Beta": "B",
        "Epsilon": "E",
        "Zeta": "Z",
        "Eta": "H",
        "Iota": "I",
        "Kappa": "K",
        "Mu": "M",
        "Nu": "N",
        "Rho": "P",
        "Tau": "T",
        "Chi": "X",
    }
    return latin.get(command[1:], command)


def tex_math_char(ch: str) -> str | None:
    """A non-ASCII character as math-mode TeX (σ -> \\sigma, ŷ -> \\hat{y}), None where unknown."""
    if ch in _SYMBOLS:
        return _SYMBOLS[ch]
    g = _greek(ch)
    if g is not None:
        return g
    parts = unicodedata.normalize("NFD", ch)
    if len(parts) >= 2 and parts[0].isascii() and parts[0].isalpha():
        accent = _ACCENTS.get(parts[1])
        return f"{accent}{{{parts[0]}}}" if accent else parts[0]
    return None


def tex_text(text: str) -> str:
    """``text`` for LaTeX text mode (a heading, a paragraph, inside ``\\text{}``): every special
    character escaped, every non-ASCII character as inline math or its ASCII stand-in, so the
    result compiles with a bare ``article`` preamble and typesets in KaTeX."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch.isascii():
            out.append(ch)
        elif ch in _PLAIN:
            out.append(_PLAIN[ch])
        else:
            m = tex_math_char(ch)
            out.append(f"${m}$" if m is not None else "?")
    return "".join(out)


# In math mode the same, except where text mode's commands do not exist there.
_MATH_SPECIAL = {**_SPECIAL, "\\": r"\backslash ", "~": r"\sim ", "^": r"\wedge ", " ": r"\ "}


def tex_mono(name: str) -> str:
    """A graph tensor's name, or an alias (any text), for math mode in typewriter type:
    ``out_h1`` -> ``\\mathtt{out\\_h1}``; non-ASCII letters as their math symbols."""
    out = []
    for ch in str(name):
        if ch in _MATH_SPECIAL:
            out.append(_MATH_SPECIAL[ch])
        elif ch.isascii():
            out.append(ch)
        else:
            m = tex_math_char(ch)
            out.append(m if m is not None else "?")
    return r"\mathtt{" + "".join(out) + "}"


_E_NOTATION = re.compile(r"(-?\d+(?:\.\d+)?)e([+-]\d+)")


def tex_numbers(text: str) -> str:
    """A row's numbers as rendered for text (``0.0212 x 0.7869``, ``sigmoid(1.3062)``,
    ``2.843e-05``) in LaTeX math: ``\\times``, ``\\cdot``, ``\\operatorname{sigmoid}``, powers
    of ten. Idempotent on its own output."""
    text = _E_NOTATION.sub(lambda m: f"{m.group(1)} \\times 10^{{{int(m.group(2))}}}", text)
    text = re.sub(
        r"(?<![\\A-Za-z{])([A-Za-z][A-Za-z0-9_]*)\(",
        lambda m: rf"\operatorname{{{tex_text(m.group(1))}}}(",
        text,
    )
    return text.replace(" x ", r" \times ").replace(" * ", r" \cdot ")


def tex_name(latex: str) -> str:
    """A name's LaTeX as the reference solution writes it: the hyphen of ``w_{11-1}`` is a
    hyphen (``w_{11\\text{-}1}``), not a minus sign with a binary operator's spacing."""
    return re.sub(r"_\{([^{}]*)\}", lambda m: "_{" + m.group(1).replace("-", r"\text{-}") + "}", latex)
