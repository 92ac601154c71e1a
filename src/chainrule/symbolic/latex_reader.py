"""LaTeX as students write derivations, read into SymPy: one adapter over latex2sympy2_extended.

Why that parser: of the 223 expressions between the ``=`` signs of parts 1 and 2 of the
reference solution, latex2sympy2_extended 1.11 reads 56 as they stand, SymPy 1.14's
``parse_latex(backend="lark")`` 16, and SymPy's ANTLR backend none (it needs
antlr4-python3-runtime 4.11 exactly; latex2sympy2_extended itself needs 4.13, so the two cannot
share an environment). Measured once, by splitting each ``$$`` block at ``=`` and calling each
parser on each piece. With the pre-processing below, the checker reads and checks all 66 steps of
parts 1 and 2 (``tests/test_derivation_check.py``).

The pre-processing is only what the notation of a derivation needs and the parser lacks:

* ``\\frac{\\partial}{\\partial x}(...)`` and ``\\frac{\\partial A}{\\partial z_{ij}}`` become
  placeholder functions (the parser does not take a subscripted variable there) and then
  ``sp.Derivative``; ``\\frac{\\partial f}{\\partial w}`` of a function f means ∂f(w)/∂w;
* ``\\hat{y}`` is a name of its own (ŷ, ``hat_y``), and ``y_{ij}``, ``\\hat{y}_i``, ``z_{uv}``
  are elements ``y[i, j]`` of indexed bases, so that sums over them and derivatives with
  respect to them mean what they say (∂z_uv/∂z_ij = δ_ui δ_vj);
* ``\\sum_{v \\neq j}`` is the sum over v from 1 to the size that v ran to before, without
  the term v = j; ``\\sum_v`` is the sum over all v;
* ``\\sum_{1 \\le k \\le n}`` and SymPy's ``\\substack`` double sums are sums with limits;
* ``\\begin{cases}`` becomes ``Piecewise`` (``else``, ``elsewhere`` and ``otherwise`` are the
  last case; ``u = i, v \\neq j`` is a condition on indices), nested ones too, and an
  indicator (``\\mathbb{1}`` or ``\\mathbb{I}`` of a condition) is the cases 1 and 0;
* ``\\log`` is the natural logarithm; ``|y|``, ``\\|y\\|``, ``\\|y\\|_2`` and ``\\lVert y \\rVert`` of a
  vector are its Euclidean norm (bars around one name are read as a pair on their own);
* function names (σ, ReLU, θ, and any the document defines, such as J or CE) are functions;
  ``\\cosh x`` without brackets applies to x alone; a transpose (``w^\\top``) is dropped, the
  names being numbers;
* a word in ``\\mathrm{...}`` or ``\\text{...}`` standing where an operand stands
  (``\\mathrm{margin} - y s``) is one name;
* ``\\left``/``\\right``, spacing, ``\\text{...}`` remarks and ``\\cancel{...}`` (struck-out
  work, reported by the caller) are dropped.

``read(tex, context)`` returns a SymPy expression or raises ``Unreadable`` saying what it could
not read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sympy as sp

INDEX = dict(integer=True, positive=True)
INDEX_LETTERS = set("ijkuvlt")
SIZE_NAMES = {"n", "m", "c", "C", "N", "M"}


class Unreadable(ValueError):
    """What could not be read, in words (one line)."""


@dataclass
class Context:
    """What the document has told the reader so far.

    ``functions``: names used as functions (σ, ReLU, J...); ``sizes``: the upper limit each
    summation index last ran to (``\\sum_{v \\neq j}`` reuses it); ``vectors``: names used with
    indices (so ``|y|`` is a norm).
    """

    functions: set[str] = field(default_factory=lambda: {"sigma", "ReLU", "f", "g", "CE", "J", "L"})
    sizes: dict[str, Any] = field(default_factory=dict)
    vectors: set[str] = field(default_factory=set)


# --- small LaTeX scanning helpers ------------------------------------------------------------

def group_end(s: str, start: int, open_: str = "{", close: str = "}") -> int:
    """Index just past the group opening at ``s[start]`` (braces, or parentheses)."""
    depth = 0
    i = start
    while i < len(s):
        if s.startswith("\\left" + open_, i):
            depth += 1
            i += 5 + len(open_)
            continue
        if s.startswith("\\right" + close, i):
            depth -= 1
            i += 6 + len(close)
            if depth == 0:
                return i
            continue
        ch = s[i]
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise Unreadable(f"unbalanced {open_}{close} in {s.strip()[:60]!r}")


def strip_command(s: str, name: str, keep: bool = False) -> str:
    """Remove ``\\name{...}`` (its argument kept when ``keep``)."""
    out = []
    i = 0
    token = "\\" + name + "{"
    while True:
        k = s.find(token, i)
        if k < 0:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i:k])
        end = group_end(s, k + len(token) - 1)
        if keep:
            out.append(s[k + len(token):end - 1])
        i = end


def split_top(s: str, seps: tuple[str, ...]) -> list[str]:
    """Split at separators outside any braces, parentheses or ``\\begin...\\end`` environment."""
    parts, depth, last, i = [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if s.startswith("\\begin{", i) or s.startswith("\\end{", i):
            depth += 1 if s.startswith("\\begin{", i) else -1
            i = s.index("}", i) + 1
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif depth == 0:
            for sep in seps:
                if s.startswith(sep, i) and not (sep == "=" and i > 0 and s[i - 1] in "<>!\\"):
                    parts.append(s[last:i])
                    i += len(sep)
                    last = i
                    break
            else:
                i += 1
                continue
            continue
        i += 1
    parts.append(s[last:])
    return parts


_SPACING = re.compile(r"\\(left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![a-zA-Z])|\\[,;:!]")


def clean(tex: str) -> str:
    """Spacing, sizing, remarks and struck-out work removed."""
    tex = strip_command(tex, "cancel")
    for command in ("label", "tag"):  # equation numbering, not mathematics
        tex = strip_command(tex, command)
    tex = re.sub(r"\\(nonumber|notag)(?![a-zA-Z])", " ", tex)
    tex = _SPACING.sub(" ", tex)
    # w^\top x, w^T x: a transpose; the reader's names are numbers (or elements), where it is the identity
    tex = re.sub(r"\^\s*(?:\{\s*(?:\\top|\\intercal|\\mathsf\{T\}|T)\s*\}|\\top|\\intercal|T(?![A-Za-z]))",
                 " ", tex)
    tex = re.sub(r"\\[lr]?[Vv]ert(?![a-zA-Z])|\\\|", "|", tex)  # ‖y‖ (\lVert y \rVert, \|y\|) is |y|
    tex = re.sub(r"(\|[^|]+\|)\s*_\s*(?:\{\s*2\s*\}|2)", r"\1", tex)  # ‖y‖₂: the Euclidean norm
    tex = tex.replace("\\mathcal{J}", "J").replace("\\mathrm", "\\text").replace("\\operatorname", "\\text")
    tex = derivative_notation(tex)
    tex = _function_names(tex)
    while (unbraced := _unbrace_calls(tex)) != tex:  # σ{(f{(w)})}: inner calls too
        tex = unbraced
    tex = re.sub(r"\\text\{\s*([A-Za-z])\s*\}", r" \1 ", tex)  # \mathrm{e}^{-x}, \mathrm{x}: a letter
    # remarks; not a function's name (\operatorname{SiLU}(x)), nor a placeholder \text{P0} of
    # an earlier stage read again
    tex = re.sub(r"\\text\{(?!(?:" + "|".join(_TEXT_FUNCTIONS)
                 + r"|[CDNPQX]\d+)\})(?![A-Za-z]+\}\s*\()[^{}]*\}",
                 " ", tex)
    tex = tex.replace("\\cdot", "\\cdot ").replace("\\times", "\\cdot ")
    tex = _BARE_ARGUMENT.sub(r"\1(\2)", tex)
    return re.sub(r"\s+", " ", tex).strip().rstrip(".,;")


# --- notations of the same thing, written one way ----------------------------------------------

#: function names written as \text{...}, \operatorname{...} or \mathrm{...} (or as a macro such as
#: \sgn) that the parser does not know, and what they are read as: a SymPy function, or a name
#: whose meaning the checker supplies when the document does not define it (σ, ReLU, softplus)
_TEXT_FUNCTIONS: dict[str, Any] = {
    "ReLU": "ReLU", "sign": sp.sign, "sech": sp.sech, "csch": sp.csch, "coth": sp.coth,
    "erf": sp.erf, "softplus": "softplus",
}
#: other spellings of those names (\text{relu}, \operatorname{sgn}, \text{sigmoid} = σ)
_NAME_SPELLINGS = {"relu": "ReLU", "Relu": "ReLU", "sgn": "sign", "Softplus": "softplus",
                   "sigmoid": None, "sigm": None}
#: names the parser knows as commands when written \text{tanh}, \operatorname{exp}, ...
_PARSER_COMMANDS = {"tanh", "sinh", "cosh", "exp", "log", "ln", "max", "min", "sin", "cos", "tan",
                    "arctan", "arcsin", "arccos"}


#: \cosh x, \log \hat{y}_{uv}: a function applied to one name without brackets (the parser would
#: take \cosh x \cdot \cosh x for cosh(x·cosh x))
_BARE_ARGUMENT = re.compile(r"(\\(?:sinh|cosh|tanh|sin|cos|tan|exp|log|ln)(?:\^\{?\d\}?)?)\s+"
                            r"((?:\\hat\{y\}|[A-Za-z])(?:_\{[^{}]*\}|_[A-Za-z0-9])?)(?![A-Za-z{(_^'])")


def _function_names(tex: str) -> str:
    """One spelling per function name: ``\\operatorname{tanh}`` is ``\\tanh``, ``\\text{sgn}``
    and ``\\sgn`` are ``\\text{sign}``, ``\\text{relu}`` is ``\\text{ReLU}``, ``\\text{sigmoid}``
    is ``\\sigma``; a known name stays a function, anything else in ``\\text{}`` is a remark."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name in _PARSER_COMMANDS:
            return "\\" + name + " "
        if name in _NAME_SPELLINGS:
            target = _NAME_SPELLINGS[name]
            return "\\sigma " if target is None else f"\\text{{{target}}}"
        if name in _TEXT_FUNCTIONS:
            return f"\\text{{{name}}}"
        return m.group(0)

    macros = "|".join(n for n in (*_TEXT_FUNCTIONS, *_NAME_SPELLINGS) if n not in ("sign",))
    return re.sub(r"\\text\{\s*([A-Za-z]+)\s*\}|\\(" + macros + r")(?![A-Za-z])", one, tex)


def _unbrace_calls(tex: str) -> str:
    """``\\sigma{\\left(x\\right)}`` (SymPy's own LaTeX for a function call) is ``\\sigma(x)``."""
    out, i = [], 0
    for m in re.finditer(r"(\\[A-Za-z]+|\\text\{[A-Za-z]+\}|(?<![\\A-Za-z])[A-Za-z])\{\s*\(", tex):
        if m.start() < i:
            continue
        brace = m.end() - m.group(0)[::-1].index("{") - 1
        end = group_end(tex, brace)
        inner = tex[brace + 1:end - 1].strip()
        if not (inner.startswith("(") and group_end(inner, 0, "(", ")") == len(inner)):
            continue
        out.append(tex[i:brace])
        out.append(inner)
        i = end
    out.append(tex[i:])
    return "".join(out)


_LEIBNIZ_D = re.compile(r"^\s*d(?![A-Za-z]{2})(?=\s|\\|[({]|[A-Za-z](?![A-Za-z])|$)")
_LEIBNIZ_VAR = re.compile(
    r"^\s*d\s*((?:\\[A-Za-z]+(?:\{[^{}]*\})?|[A-Za-z])(?:_\{[^{}]*\}|_[A-Za-z0-9])?)\s*$")


def derivative_notation(tex: str) -> str:
    """Every way of writing a first derivative, as ``\\frac{\\partial ...}{\\partial x}``:
    ``\\frac{d}{dx}``, ``\\dfrac{d}{dx}``, ``\\frac{\\mathrm{d}}{\\mathrm{d}x}``, ``\\frac{df}{dx}``,
    ``d/dx`` and ``\\partial/\\partial x`` inline, ``\\dot{f}(x)`` (as ``f'(x)``). ``d`` and ``∂``
    mean the same here: every function the reader meets has one variable, or is differentiated
    holding the others fixed, as the textbook does."""
    tex = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", tex)
    tex = re.sub(r"\\text\{\s*d\s*\}", "d", tex)
    tex = re.sub(r"\\dot\{([^{}]+)\}\s*(?=\()", r"\1'", tex)
    out, i = [], 0
    for m in re.finditer(r"\\frac\s*\{", tex):
        if m.start() < i:
            continue
        num_end = group_end(tex, m.end() - 1)
        if num_end >= len(tex) or tex[num_end] != "{":
            continue
        den_end = group_end(tex, num_end)
        num, den = tex[m.end():num_end - 1], tex[num_end + 1:den_end - 1]
        var = _LEIBNIZ_VAR.match(den)
        if not (var and _LEIBNIZ_D.match(num)):
            continue
        top = num.strip()[1:].strip()
        out.append(tex[i:m.start()])
        out.append(f"\\frac{{\\partial {top}}}{{\\partial {var.group(1)}}}" if top
                   else f"\\frac{{\\partial}}{{\\partial {var.group(1)}}}")
        i = den_end
    out.append(tex[i:])
    tex = "".join(out)
    # d/dx and ∂/∂x written inline
    return re.sub(r"(?<![A-Za-z\\])(?:d|\\partial)\s*/\s*(?:d|\\partial)\s*([A-Za-z])(?![A-Za-z])",
                  r"\\frac{\\partial}{\\partial \1} ", tex)


#: words that are remarks or the parts of a case's condition, never a variable's name
_WORDS = {"if", "for", "and", "or", "else", "otherwise", "elsewhere", "where", "since", "hence",
          "then", "when", "with", "so", "thus", "by", "let", "i.e", "ie", "eg", "all", "each"}
_NAMED = re.compile(r"(?<![A-Za-z])\\(?:text|mathrm|textrm|mathit|operatorname)\s*"
                    r"\{\s*([A-Za-z][A-Za-z0-9]+)\s*\}")
_SPACE = r"(?:\s|\\[,:;! ]|\\quad|\\qquad)*"
_BEFORE_OPERAND = re.compile(r"(^|[-+=({,*/^_&<>]|\\cdot|\\times|\\frac\{|\}\{|\\[lgn]eq?|\\left"
                             r"|\\text\{\s*[A-Za-z]+\s*\})" + _SPACE + "$")
_AFTER_OPERAND = re.compile(r"^" + _SPACE
                            + r"($|[-+=)},*/^_<>&]|\\cdot|\\times|\\right|\\\\|\\[lgn]eq?(?![a-z]))")


def _names(tex: str, pre: _Pre) -> str:
    """``\\mathrm{margin}``, ``\\text{lr}`` standing where an operand stands (between operators)
    are one variable each, not remarks (placeholders ``\\text{Nk}``); a function's name (followed
    by its argument) and the words of a remark or a case's condition stay what they are."""
    out, i = [], 0
    for m in _NAMED.finditer(tex):
        name = m.group(1)
        if name.lower() in _WORDS or name in _TEXT_FUNCTIONS or name in _NAME_SPELLINGS \
                or name in _PARSER_COMMANDS or re.fullmatch(r"[CDNPQX]\d+", name):
            continue
        if not (_BEFORE_OPERAND.search(tex[:m.start()]) and _AFTER_OPERAND.match(tex[m.end():])):
            continue
        pre.names.append(name)
        out.append(tex[i:m.start()])
        out.append(f" {pre.token('N', len(pre.names) - 1)} ")
        i = m.end()
    out.append(tex[i:])
    return "".join(out)


_INDICATOR = re.compile(r"\\math(?:bb|bf)\s*\{\s*[1I]\s*\}|\\mathbb\s*[1I]|𝟙")


def _indicators(tex: str, pre: _Pre) -> str:
    """The indicator ``\\mathbb{1}[u > 0]`` (also ``\\mathbb{1}(...)``, ``\\mathbb{1}\\{...\\}``,
    ``\\mathbb{1}_{u > 0}``): 1 where the condition holds, else 0 (a case placeholder)."""
    while (m := _INDICATOR.search(tex)):
        rest = tex[m.end():]
        lead = len(rest) - len(rest.lstrip())
        k = m.end() + lead
        pairs = {"[": "]", "(": ")"}
        if tex.startswith("\\{", k):
            end = tex.find("\\}", k)
            cond, after = tex[k + 2:end], end + 2
        elif tex.startswith("_{", k):
            end = group_end(tex, k + 1)
            cond, after = tex[k + 2:end - 1], end
        elif k < len(tex) and tex[k] in pairs:
            end = group_end(tex, k, tex[k], pairs[tex[k]])
            cond, after = tex[k + 1:end - 1], end
        else:
            raise Unreadable("an indicator \\mathbb{1} without its condition in brackets")
        if end < 0:
            raise Unreadable("an indicator's condition never closed")
        pre.cases.append(sp.Piecewise((1, _condition(cond, pre.ctx, pre)), (0, True)))
        tex = tex[:m.start()] + f" {pre.token('P', len(pre.cases) - 1)} " + tex[after:]
    return tex


# --- the reader -----------------------------------------------------------------------------

class _Pre:
    """One expression's pre-processing: placeholders and what they stand for."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.derivatives: list[tuple[str, str]] = []  # (operand or "", variable) per D-token
        self.cases: list[sp.Basic] = []
        self.excluded: list[tuple[str, str]] = []  # \sum_{v \neq j}: (v, j)
        self.calls: list[tuple[str, list[str]]] = []  # function name, argument LaTeX
        self.primes: list[tuple[str, str, int]] = []  # f'(x): function LaTeX, argument LaTeX, order

        self.names: list[str] = []  # \mathrm{margin}: one variable's name, not a remark

    def token(self, kind: str, k: int) -> str:
        return f"\\text{{{kind}{k}}}"


def read(tex: str, ctx: Context | None = None, _outer: _Pre | None = None) -> sp.Basic:
    """One expression (no ``=``) to SymPy; raises ``Unreadable``.

    ``_outer``: the pre-processing of the expression this one is part of (the operand of a
    derivative, a function's argument), whose placeholders it may hold."""
    ctx = ctx or Context()
    pre = _outer or _Pre(ctx)
    s = clean(_indicators(_names(tex, pre), pre))
    if not s:
        raise Unreadable("an empty expression")
    s = _bars(s)
    s = _cases(s, pre)
    s = _primes(s, pre)
    s = _derivatives(s, pre)
    s = _sums(s, pre)
    s = _functions(s, pre)
    # ŷ_{uv}(1 − ŷ_{uv}) is a product, not a function ŷ_uv applied to 1 − ŷ_uv
    def product(m: re.Match) -> str:
        args = s[m.end():group_end(s, m.end() - 1, "(", ")") - 1]
        call = m.group(1) in pre.ctx.functions or len(split_top(args, (",",))) > 1  # L_s(y_j, ŷ_j)
        return m.group(1) + (" (" if call else " \\cdot (")

    s = re.sub(r"(?<![A-Za-z\\])((?:[A-Za-z]|\\hat\{y\})(?:_\{[^{}]*\}|_[A-Za-z0-9]))\s*\(", product, s)
    s = s.replace("\\hat{y}", "\\upsilon").replace("\\hat y", "\\upsilon")
    if "\\hat" in s:
        raise Unreadable(f"a hat other than ŷ in {tex.strip()[:60]!r}")
    if "\\langle" in s or "\\dots" in s or "\\ldots" in s or "\\begin" in s:
        raise Unreadable(f"a vector written out, not an expression: {tex.strip()[:60]!r}")
    expr = _parse(s, tex)
    return _post(expr, pre, ctx, tex)


#: |y|, |\hat{y}|, |x_i|: bars around one name, which the parser pairs wrongly when a line holds
#: several (|ŷ| y_i − J |y| ŷ_i read as |ŷ·y·|J − y_i||·ŷ_i): a call of abs instead
_BARS = re.compile(r"(?<![\\|])\|\s*((?:\\hat\{y\}|\\hat\s*y|[A-Za-z])(?:_\{[^{}|]*\}|_[A-Za-z0-9])?)\s*\|")


def _bars(s: str) -> str:
    return _BARS.sub(r" \\text{abs}(\1) ", s)


def _parse(s: str, original: str) -> sp.Basic:
    parsed, why = _parsed(s)
    if why is not None:
        raise Unreadable(f"the LaTeX parser could not read {original.strip()[:70]!r} ({why[:60]})")
    return parsed


@lru_cache(maxsize=4096)
def _parsed(s: str) -> tuple[Any, str | None]:
    """The parser's reading of ``s`` and None, or None and the first line of why it could not.

    Cached: the parser (ANTLR in pure Python) is most of the time ``check`` takes, and a
    document reads the same pieces again (the line before each step, a definition's name, the
    operand ``f(w)`` of every ∂/∂w); the reading depends on ``s`` alone, and SymPy expressions
    are immutable, so every caller may share one."""
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    try:
        return latex2sympy(
            s,
            normalization_config=NormalizationConfig(basic_latex=False, units=False,
                                                     malformed_operators=False,
                                                     nits=False, boxed="none", equations=False),
            conversion_config=ConversionConfig(interpret_as_mixed_fractions=False,
                                               lowercase_symbols=False)), None
    except Exception as exc:  # the parser raises its own exception types; all mean "unreadable"
        return None, (str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _cases(s: str, pre: _Pre) -> str:
    while True:
        k = s.find("\\begin{cases}")
        if k < 0:
            return s
        end = _end_of_cases(s, k)
        body = s[k + len("\\begin{cases}"):end]
        pieces = []
        for row in split_top(body, ("\\\\",)):  # rows of this cases, not of one nested in it
            if not row.strip():
                continue
            expr, *cond = split_top(row, ("&",))
            cond = "&".join(cond)
            pieces.append((read(expr, pre.ctx, pre), _condition(cond, pre.ctx, pre)))
        if not pieces:
            raise Unreadable("an empty \\begin{cases}")
        if pieces[-1][1] is not sp.true:
            pieces.append((sp.nan, True))
        pre.cases.append(sp.Piecewise(*pieces, evaluate=False))
        s = s[:k] + f" {pre.token('P', len(pre.cases) - 1)} " + s[end + len("\\end{cases}"):]


def _end_of_cases(s: str, start: int) -> int:
    """Where the ``\\end{cases}`` that closes the ``\\begin{cases}`` at ``start`` begins (cases
    nest: a case of max(0, ·) inside a case of the loss)."""
    depth, i = 0, start
    while True:
        opening, closing = s.find("\\begin{cases}", i), s.find("\\end{cases}", i)
        if closing < 0:
            raise Unreadable("\\begin{cases} without \\end{cases}")
        if 0 <= opening < closing:
            depth, i = depth + 1, opening + 1
            continue
        depth -= 1
        if depth == 0:
            return closing
        i = closing + 1


def _condition(cond: str, ctx: Context, pre: _Pre | None = None):
    """A case's condition (``x > 0``, ``u = i, v \\neq j``, ``\\text{otherwise}``) as a SymPy
    relation; ``pre``: the expression's pre-processing, whose placeholders it may hold."""
    raw = cond.strip()
    words = re.sub(r"\\text\{([^{}]*)\}", r"\1", raw).strip().rstrip(".").lower().replace(" ", "")
    if words in ("else", "elsewhere", "otherwise", ""):
        return sp.true
    either = split_top(raw, ("\\vee", "\\lor", "\\text{ or }", "\\text{or}"))
    if len(either) > 1:  # x ≥ 3 ∨ x ≤ −3
        return sp.Or(*(_condition(c, ctx, pre) for c in either))
    separators = (",", "\\text{ and }", "\\text{and}", "\\wedge", "\\land")
    parts = [p for p in split_top(raw, separators) if p.strip()]
    out = []
    for p in parts:
        rel = read(p.replace("\\neq", "\\ne "), ctx, pre) if "\\neq" not in p else None
        if rel is None:
            a, b = p.split("\\neq", 1)
            rel = sp.Ne(read(a, ctx, pre), read(b, ctx, pre))
        if isinstance(rel, sp.Eq) or isinstance(rel, sp.core.relational.Relational):
            out.append(rel)
        else:
            raise Unreadable(f"a condition that is not a comparison: {p.strip()!r}")
    return sp.And(*out)


_PARTIAL_OP = re.compile(r"\\frac\{\s*\\partial\s*\}\{\s*\\partial\s*")
_PARTIAL_FRAC = re.compile(r"\\frac\{\s*\\partial\s*(?=[^}\s])")


def _derivatives(s: str, pre: _Pre) -> str:
    """∂/∂x (operand) and ∂A/∂x as placeholder functions ``\\text{Dk}(operand)``."""
    out = s
    while True:
        m = _PARTIAL_OP.search(out)
        if m:
            var_end = _var_end(out, m.end())
            var = out[m.end():var_end - 1].strip()
            rest_start = var_end
            operand, after = _operand(out, rest_start)
            pre.derivatives.append((operand, var))
            out = out[:m.start()] + f" {pre.token('D', len(pre.derivatives) - 1)} " + out[after:]
            continue
        m = _PARTIAL_FRAC.search(out)
        if m:
            num_end = group_end(out, m.start() + len("\\frac"))
            numerator = out[m.start() + len("\\frac{"):num_end - 1].strip()
            assert numerator.startswith("\\partial")
            numerator = numerator[len("\\partial"):].strip()
            if out[num_end] != "{" or not out[num_end + 1:].lstrip().startswith("\\partial"):
                raise Unreadable(f"a derivative without \\partial below: {s[:60]!r}")
            den_end = group_end(out, num_end)
            var = out[num_end + 1:den_end - 1].strip()[len("\\partial"):].strip()
            if numerator.startswith("(") and numerator.endswith(")"):
                numerator = numerator[1:-1]
            pre.derivatives.append((numerator, var))
            out = out[:m.start()] + f" {pre.token('D', len(pre.derivatives) - 1)} " + out[den_end:]
            continue
        return out


def _var_end(s: str, start: int) -> int:
    """End (past the closing brace) of the ``\\partial VAR}`` of ``\\frac{\\partial}{\\partial VAR}``."""
    depth = 1
    i = start
    while i < len(s):
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise Unreadable("unbalanced braces in a derivative")


_FUNC_HEAD = re.compile(r"\s*(\\cdot\s*)?(\\[a-zA-Z]+(\^\{?\d\}?)?|\\text\{[A-Za-z]+\}"
                        r"|[A-Za-z](_\{?[A-Za-z0-9]+\}?)?)\s*\(")


def _operand(s: str, start: int) -> tuple[str, int]:
    """What ∂/∂x applies to: a parenthesised group, |...|, a function application, or the rest
    of the term (up to the next + or − outside brackets)."""
    i = start
    while i < len(s) and s[i] == " ":
        i += 1
    if s.startswith("\\cdot", i):
        i += len("\\cdot")
        while i < len(s) and s[i] == " ":
            i += 1
    if i < len(s) and s[i] == "(":
        end = group_end(s, i, "(", ")")
        return _with_power(s, s[i + 1:end - 1], end, paren=True)
    if i < len(s) and s[i] == "|":
        end = s.find("|", i + 1)
        if end < 0:
            raise Unreadable("an unclosed |")
        return _with_power(s, s[i:end + 1], end + 1)
    m = _FUNC_HEAD.match(s, i)
    if m:
        end = group_end(s, m.end() - 1, "(", ")")
        return s[i:end].replace("\\cdot", "", 1) if m.group(1) else s[i:end], end
    # the rest of the term
    depth, j = 0, i
    while j < len(s):
        ch = s[j]
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and ch in "+-" and j > i:
            break
        j += 1
    if j == i:
        raise Unreadable("∂/∂x with nothing to differentiate")
    return s[i:j], j


def _with_power(s: str, operand: str, end: int, paren: bool = False) -> tuple[str, int]:
    """∂/∂w (y − ŷ)^2 differentiates the square, not y − ŷ."""
    m = re.match(r"\s*\^\s*(\{[^{}]*\}|\w)", s[end:])
    if not m:
        return operand, end
    base = f"({operand})" if paren else operand
    return base + "^" + m.group(1), end + m.end()


_SUM_NEQ = re.compile(r"\\sum_\{\s*([a-z])\s*\\neq\s*([a-z])\s*\}")
_SUM_BARE = re.compile(r"\\sum_(?:\{\s*([a-z])\s*\}|([a-z]))(?!\s*=)(?![^\\]*\^)")
_SUM_FULL = re.compile(r"\\sum_\{\s*([a-z])\s*=\s*1\s*\}\^\{?\s*([A-Za-z0-9]+)\s*\}?")


_BOUND = r"\s*([A-Za-z0-9]+)\s*\\(?:leq?|leqslant)\s*([a-z])\s*\\(?:leq?|leqslant)\s*([A-Za-z0-9]+)\s*"


def _ranges(s: str) -> str:
    """``\\sum_{1 \\le k \\le n}`` is ``\\sum_{k=1}^{n}``;
    ``\\sum_{\\substack{1 \\le v \\le C \\\\ 1 \\le u \\le m}}`` (SymPy's form of a double sum) is
    ``\\sum_{u=1}^{m} \\sum_{v=1}^{C}``."""
    def substack(m: re.Match) -> str:
        rows = [r for r in m.group(1).split("\\\\") if r.strip()]
        sums = []
        for row in reversed(rows):
            r = re.fullmatch(_BOUND, row)
            if not r:
                raise Unreadable(f"a sum over {row.strip()!r}: expected bounds such as 1 \\leq k \\leq n")
            sums.append(f"\\sum_{{{r.group(2)}={r.group(1)}}}^{{{r.group(3)}}}")
        return " ".join(sums) + " "

    s = re.sub(r"\\sum_\{\s*\\substack\{((?:[^{}]|\{[^{}]*\})*)\}\s*\}", substack, s)
    return re.sub(r"\\sum_\{" + _BOUND + r"\}",
                  lambda m: f"\\sum_{{{m.group(2)}={m.group(1)}}}^{{{m.group(3)}}} ", s)


def _sums(s: str, pre: _Pre) -> str:
    s = _ranges(s)
    for m in _SUM_FULL.finditer(s):
        pre.ctx.sizes[m.group(1)] = m.group(2)

    def neq(m: re.Match) -> str:
        v, j = m.group(1), m.group(2)
        pre.excluded.append((v, j))
        size = pre.ctx.sizes.get(v, "n")
        return f"\\sum_{{{v}=1}}^{{{size}}} \\text{{X{len(pre.excluded) - 1}}}"

    s = _SUM_NEQ.sub(neq, s)

    def bare(m: re.Match) -> str:
        v = m.group(1) or m.group(2)
        return f"\\sum_{{{v}=1}}^{{{pre.ctx.sizes.get(v, 'n')}}}"

    return re.sub(r"\\sum_(?:\{\s*([a-z])\s*\}|([a-z]))(?=\s*[^\s^=])", bare, s)


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "pi", "rho", "tau", "upsilon", "phi", "chi", "psi", "omega",
          "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Phi", "Psi", "Omega"}
_FUNC_TEX = {"\\sigma": "sigma", "\\text{abs}": "abs", **{f"\\text{{{n}}}": n for n in _TEXT_FUNCTIONS}}
_PRIME = re.compile(r"(\\text\{[A-Za-z]+\}|\\[A-Za-z]+|(?<![\\A-Za-z])[A-Za-z])\s*"
                    r"((?:'|\^\{?\s*\\prime\s*\}?|\\prime)+)\s*\(")


def _primes(s: str, pre: _Pre) -> str:
    """``f'(x)``, ``\\sigma'(z)``, ``f^{\\prime}(x)``, ``f''(x)``: the derivative of the function
    at the argument (placeholders ``\\text{Qk}``)."""
    out, i = [], 0
    for m in _PRIME.finditer(s):
        if m.start() < i:
            continue
        end = group_end(s, m.end() - 1, "(", ")")
        order = m.group(2).count("'") + m.group(2).count("prime")
        pre.primes.append((m.group(1), s[m.end():end - 1], order))
        out.append(s[i:m.start()])
        out.append(f" {pre.token('Q', len(pre.primes) - 1)} ")
        i = end
    out.append(s[i:])
    return "".join(out)


def _functions(s: str, pre: _Pre) -> str:
    """Function applications as atoms ``\\text{Ck}``, their arguments read separately (the
    parser takes ``name(...)`` for a product when the argument holds parentheses)."""
    names = dict(_FUNC_TEX)
    for name in re.findall(r"\\text\{([A-Za-z]+)\}\s*\(", s):  # \operatorname{SiLU}(x)
        names.setdefault(f"\\text{{{name}}}", name)
    for name in pre.ctx.functions:
        if name in _GREEK:  # θ(u) = ... defined as a function: \theta\left(...\right) is a call
            names["\\" + name] = name
        elif re.fullmatch(r"[A-Za-z]+(_[A-Za-z])?", name) and name not in ("sigma", "ReLU"):
            names[name] = name
    pattern = "|".join(re.escape(t) if t.startswith("\\")
                       else r"(?<![\\A-Za-z{])" + re.escape(t) + r"(?![A-Za-z_])"
                       for t in sorted(names, key=len, reverse=True))
    out, i = [], 0
    for m in re.finditer(rf"({pattern})\s*(\^\s*(?:\{{[^{{}}]*\}}|\w))?\s*\(", s):
        if m.start() < i:
            continue
        end = group_end(s, m.end() - 1, "(", ")")
        args = split_top(s[m.end():end - 1], (",",))
        pre.calls.append((names[m.group(1)], args))
        out.append(s[i:m.start()])
        call = pre.token('C', len(pre.calls) - 1)
        out.append(f" ({call}){m.group(2)} " if m.group(2) else f" {call} ")  # sech^2(x) = (sech(x))^2
        i = end
    out.append(s[i:])
    return "".join(out)


def _post(expr: sp.Basic, pre: _Pre, ctx: Context, original: str) -> sp.Basic:
    # log means the natural logarithm in a derivation
    expr = expr.xreplace({sp.log(10): sp.Integer(1)}) if expr.has(sp.log) else expr
    expr = expr.replace(lambda e: isinstance(e, sp.log) and len(e.args) == 2,
                        lambda e: sp.log(e.args[0]))
    expr = _symbols(expr, ctx)
    # \theta(u), L_\delta(y, ŷ), read by the parser as functions named "\theta", "L_\delta":
    # θ and L_δ, named as a bare L_{\delta} is (L_delta)
    expr = expr.replace(lambda e: isinstance(e, sp.core.function.AppliedUndef) and "\\" in e.func.__name__,
                        lambda e: sp.Function(_plain_name(e.func.__name__))(*e.args))
    # placeholders back: C (a call), D (a derivative), P (cases), X (a sum's excluded term)
    def atom(sym: sp.Symbol) -> sp.Basic | None:
        m = re.fullmatch(r"(?:\\text\{)?([CDNPQX])(\d+)\}?", sym.name)
        if not m:
            return None
        kind, k = m.group(1), int(m.group(2))
        if kind == "C":
            name, args = pre.calls[k]
            if name == "abs":  # |y|: the norm of a vector, the absolute value of a number
                return _symbols(sp.Abs(read(args[0], ctx, pre)), ctx)
            known = _TEXT_FUNCTIONS.get(name)
            func = known if callable(known) else sp.Function(name)
            return func(*(read(a, ctx, pre) for a in args))
        if kind == "Q":
            return _prime(*pre.primes[k], ctx, pre)
        if kind == "D":
            operand, var = pre.derivatives[k]
            v = _symbols(_parse(_prepare_var(var), original), ctx)
            body = _apply_bare_functions(read(operand, ctx, pre) if operand else sp.Integer(1), v, ctx)
            if isinstance(v, sp.Symbol):  # ∂/∂f of σ(f(w)): the variable is f(w)
                apps = [a for a in body.atoms(sp.core.function.AppliedUndef) if a.func.__name__ == v.name]
                if apps:
                    v = apps[0]
            return sp.Derivative(body, v, evaluate=False)
        if kind == "P":
            return pre.cases[k]
        if kind == "N":
            return sp.Symbol(pre.names[k], real=True)
        v, j = pre.excluded[k]
        return 1 - sp.KroneckerDelta(sp.Symbol(v, **INDEX), sp.Symbol(j, **INDEX))

    sub = {}
    for sym in expr.free_symbols:
        if isinstance(sym, sp.Symbol):
            got = atom(sym)
            if got is not None:
                sub[sym] = got
    expr = expr.xreplace(sub)
    leftover = [str(s) for s in expr.free_symbols if "\\" in str(s)]
    if leftover:
        raise Unreadable(f"{leftover[0]} in {original.strip()[:60]!r}")
    return expr


def _plain_name(name: str) -> str:
    """``\\theta`` -> ``theta``, ``L_{\\delta}`` and ``L_\\delta`` -> ``L_delta``."""
    return re.sub(r"\{?\\([A-Za-z]+)\}?", r"\1", name)


def _prime(name: str, arg: str, order: int, ctx: Context, pre: _Pre) -> sp.Basic:
    """``f'(a)``: d/dξ f(ξ) at ξ = a (a plain ``Derivative`` when ``a`` is a variable)."""
    if re.fullmatch(r"[A-Za-z]", name):
        ctx.functions.add(name)  # f'(x) says f is a function
    xi = sp.Dummy("xi", real=True)
    at = read(f"{name}(\\xi)", ctx).xreplace({sp.Symbol("xi", real=True): xi})
    if xi not in at.free_symbols or at == xi:
        raise Unreadable(f"{name}' applied to ({arg}): {name} is not a function")
    derivative = sp.Derivative(at, (xi, order), evaluate=False)
    value = read(arg, ctx, pre)
    if isinstance(value, sp.Symbol):
        return sp.Derivative(at.xreplace({xi: value}), (value, order), evaluate=False)
    return sp.Subs(derivative, xi, value)


def _prepare_var(var: str) -> str:
    return var.replace("\\hat{y}", "\\upsilon")


def _apply_bare_functions(body: sp.Basic, var: sp.Basic, ctx: Context) -> sp.Basic:
    """∂f/∂w with f a function: ∂f(w)/∂w; dσ/dx is dσ(x)/dx."""
    if (isinstance(body, sp.Symbol) and body.name in ("sigma", "ReLU", "softplus")
            and isinstance(var, sp.Symbol)):
        return sp.Function(body.name)(var)
    for s in list(body.free_symbols):
        if isinstance(s, sp.Symbol) and s.name in ("f", "g") and not isinstance(var, sp.Indexed):
            body = body.xreplace({s: sp.Function(s.name)(var)})
    return body


_SUBSCRIPTED = re.compile(r"^(upsilon|[A-Za-z])_\{?([A-Za-z0-9]+)\}?$")


def _symbols(expr: sp.Basic, ctx: Context) -> sp.Basic:
    """Names to what they are: y_{ij} -> y[i, j], ŷ -> hat_y, i -> an integer index."""
    sub: dict[sp.Basic, sp.Basic] = {}
    bound = {lim[0] for S in expr.atoms(sp.Sum) for lim in S.limits}  # Σ_i binds the i of y_i
    for s in expr.free_symbols | bound:
        if not isinstance(s, sp.Symbol):
            continue
        name = s.name.replace("hat{y}", "upsilon")
        delta = re.fullmatch(r"delta_\{?\s*([a-z])\s*,?\s*([a-z])\s*\}?", name)
        if delta:  # δ_ij, with two indices, is Kronecker's delta
            sub[s] = sp.KroneckerDelta(*(sp.Symbol(q, **INDEX) for q in delta.groups()))
            continue
        m = _SUBSCRIPTED.match(name)
        if m and (m.group(2).isalpha() or m.group(2).isdigit()):
            base = "hat_y" if m.group(1) == "upsilon" else m.group(1)
            idx = m.group(2)
            letters = list(idx) if idx.isalpha() else [int(idx)]
            indices = [sp.Symbol(q, **INDEX) if isinstance(q, str) else sp.Integer(q) for q in letters]
            sub[s] = sp.IndexedBase(base, real=True)[tuple(indices)]
            ctx.vectors.add(base)
        elif name == "upsilon":
            sub[s] = sp.Symbol("hat_y", real=True)
        elif name in INDEX_LETTERS or name in SIZE_NAMES:
            sub[s] = sp.Symbol(name, **INDEX)
        elif name.startswith("upsilon"):
            sub[s] = sp.Symbol(name.replace("upsilon", "hat_y"), real=True)
        elif "\\" not in name:
            sub[s] = sp.Symbol(name, real=True)
        elif re.fullmatch(r"[A-Za-z]_\{?\\[A-Za-z]+\}?", name):  # L_{\delta}: the name L_δ
            sub[s] = sp.Symbol(_plain_name(name), real=True)
    # |y| of a vector is its norm: replaced before y becomes real (|ŷ|² must not become ŷ²)
    def norm(e):
        (arg,) = e.args
        name = "hat_y" if isinstance(arg, sp.Symbol) and arg.name in ("upsilon", "hat{y}") else str(arg)
        if isinstance(arg, sp.Symbol) and name in ctx.vectors:
            return sp.Symbol(f"|{name}|", positive=True)
        return None

    expr = expr.replace(lambda e: isinstance(e, sp.Abs) and norm(e) is not None, norm)
    return expr.xreplace(sub)


# --- where the notation leaves a sum's extent open -------------------------------------------

def leaked_indices(expr: sp.Basic) -> set[sp.Symbol]:
    """Indices a sum binds that are also used outside it: ``Σ_{v≠j} a_v − b_v`` read as
    written leaves the v of ``b_v`` outside the sum, which is never what the writer meant."""
    bound = {lim[0] for S in expr.atoms(sp.Sum) for lim in S.limits}
    return bound & expr.free_symbols


_SUM_HEAD = re.compile(r"\\sum_(?:\{([^{}]*)\}|([a-z]))(?:\s*\^\s*(?:\{[^{}]*\}|\w))?")


def readings(tex: str, ctx: Context, index: str) -> list[tuple[sp.Basic, str]]:
    """Other readings of ``tex`` where a sum over ``index`` is followed, without brackets, by
    terms that use ``index``: the sum taking in those terms (``Σ_v (a_v − b_v)``), and the terms
    as factors of the sum's term (``Σ_v a_v · (−b_v)``: a product written as ``a_v -b_v``).
    Each reading comes with its LaTeX, so that a report can say how the line was read."""
    s = clean(tex)
    for m in _SUM_HEAD.finditer(s):
        head = m.group(1) or m.group(2) or ""
        if not re.match(rf"\s*{index}(?![a-z])", head):
            continue
        start = m.end()
        end = _group_close(s, start)
        terms = _signed_terms(s[start:end])
        if len(terms) < 2:
            continue
        uses = re.compile(rf"_\{{[^{{}}]*{index}[^{{}}]*\}}|_{index}(?![a-z])")
        k = 1
        while k < len(terms) and uses.search(terms[k][1]):
            k += 1
        if k == 1:
            continue
        first = terms[0][0] + terms[0][1]
        inside = " ".join(sign + " " + body for sign, body in terms[1:k])
        factors = " \\cdot ".join(f"({sign} {body})" for sign, body in terms[1:k])
        rest = " ".join(sign + " " + body for sign, body in terms[k:])
        out = []
        for body in (f"({first} {inside})", f"({first}) \\cdot {factors}"):
            alt = s[:start] + " " + body + " " + rest + s[end:]
            try:
                out.append((read(alt, ctx), alt))
            except Unreadable:
                continue
        return out
    return []


def _group_close(s: str, start: int) -> int:
    """Where the bracket level that ``s[start]`` sits in closes (or the end of ``s``)."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] in "{([":
            depth += 1
        elif s[i] in "})]":
            if depth == 0:
                return i
            depth -= 1
    return len(s)


def _signed_terms(s: str) -> list[tuple[str, str]]:
    """``a - b + c`` as ``[("", "a"), ("-", "b"), ("+", "c")]``, split outside brackets only
    (a sign right after an operator such as ``\\cdot`` belongs to its factor)."""
    terms: list[tuple[str, str]] = []
    depth, last, sign = 0, 0, ""
    for i, ch in enumerate(s):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif depth == 0 and ch in "+-" and s[last:i].strip() and \
                not re.search(r"(\\cdot|\\times|[=(^_*/])\s*$", s[:i]):
            terms.append((sign, s[last:i].strip()))
            sign, last = ch, i + 1
    terms.append((sign, s[last:].strip()))
    return [t for t in terms if t[1]]
