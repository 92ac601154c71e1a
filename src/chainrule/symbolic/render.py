"""A derivation as text, Markdown, LaTeX, JSON or HTML (formulas typeset offline by the vendored
KaTeX, ``chainrule._katex``).

Expressions are written with the reference solution's names: ``z[i, j]`` as z_ij, ``p`` as ŷ,
∂/∂x for derivatives, Σ for sums, δ_ij for Kronecker deltas and {… if …; … otherwise} for cases.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

FORMATS = ("text", "markdown", "latex", "json", "html")

_GREEK = {"sigma": "σ", "delta": "δ", "alpha": "α", "beta": "β", "ell": "ℓ", "L_delta": "L_δ",
          "yhat": "ŷ", "theta": "θ", "lambda": "λ"}


def _index_text(indices, printer) -> str:
    parts = [printer._print(i) for i in indices]
    return "".join(parts) if all(len(p) == 1 for p in parts) else ",".join(parts)


class TextPrinter(StrPrinter):
    """One line of unicode: e^(−x), ∂/∂x[...], Σ_{k=1}^{n}, z_ij, |y|."""

    printmethod = "_chainrule_text"  # not Indexed's own _sympystr: ours writes z_ij

    def __init__(self, display: dict | None = None):
        super().__init__()
        self.display = display or {}

    def _print_Symbol(self, expr):
        if expr.name in self.display:
            return self.display[expr.name][0]
        return _GREEK.get(expr.name, expr.name)

    def _print_Indexed(self, expr):
        label = expr.base.label
        name = self._print(label)
        if str(label).startswith("d") and str(label).endswith("/dw"):  # ∂z_ij/∂w placeholders
            return f"∂{self._print(sp.Symbol(str(label)[1:-3]))}_{_index_text(expr.indices, self)}/∂w"
        return f"{name}_{_index_text(expr.indices, self)}"

    def _print_Derivative(self, expr):
        var = self._print(expr.variables[0])
        if isinstance(expr.expr, AppliedUndef):
            return f"∂{self._print(expr.expr)}/∂{var}"
        return f"∂/∂{var}[{self._print(expr.expr)}]"

    def _print_Sum(self, expr):
        skip = excluded(expr)
        if skip is not None:  # Σ_{v≠j}
            var, other, body = skip
            out = f"({self._print(body)})" if isinstance(body, (sp.Add, sp.Sum)) else self._print(body)
            return f"(Σ_{{{self._print(var)}≠{self._print(other)}}} {out})"
        body = expr.function
        out = f"({self._print(body)})" if isinstance(body, (sp.Add, sp.Sum)) else self._print(body)
        for var, lo, hi in expr.limits:  # the first limit is the innermost sum
            out = f"Σ_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} {out}"
        return f"({out})"  # whole: (Σ_k e^x_k)^2, never Σ_k (e^x_k)^2

    def _print_KroneckerDelta(self, expr):
        return f"δ_{_index_text(expr.args, self)}"

    def _print_exp(self, expr):
        arg = self._print(expr.args[0])
        return f"e^{arg}" if expr.args[0].is_Atom and not arg.startswith("-") else f"e^({arg})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Piecewise(self, expr):
        cases = []
        for e, c in expr.args:
            cases.append(f"{self._print(e)} otherwise" if c == sp.true
                         else f"{self._print(e)} if {self._print(c)}")
        return "{" + "; ".join(cases) + "}"

    def _print_Function(self, expr):
        name = _GREEK.get(type(expr).__name__, type(expr).__name__)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Heaviside(self, expr):  # the unit step, as SymPy's LaTeX writes it
        return f"θ({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Unequality(self, expr):
        return f"{self._print(expr.lhs)} ≠ {self._print(expr.rhs)}"

    def doprint(self, expr):
        out = super().doprint(expr)
        return out.replace("**", "^").replace("*", "·").replace("<=", "≤").replace(">=", "≥")


_OPERAND = "OPERAND"  # where a derivative's operand goes in SymPy's LaTeX for d/dx


class TexPrinter(LatexPrinter):
    """SymPy's LaTeX with the reference's names: z_{ij}, \\hat{y}, ∂z_{ij}/∂w."""

    printmethod = "_chainrule_latex"

    def __init__(self, display: dict | None = None):
        super().__init__()
        self.display = display or {}

    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self.display and self.display[expr.name][1]:
            return self.display[expr.name][1]
        if expr.name == "yhat":
            return r"\hat{y}"
        if expr.name.startswith("|"):
            return expr.name.replace("ŷ", r"\hat{y}")
        out = super()._print_Symbol(expr, style=style)
        # a name of several letters (margin) upright, as one name: italic "margin" is m·a·r·g·i·n
        if re.fullmatch(r"[A-Za-z]{2,}", out) and out != _OPERAND:
            return rf"\mathrm{{{out}}}"
        return out

    def _print_Indexed(self, expr):
        label = expr.base.label
        idx = _index_text(expr.indices, self)
        if str(label).startswith("d") and str(label).endswith("/dw"):
            inner = self._print(sp.Symbol(str(label)[1:-3]))
            return rf"\frac{{\partial {inner}_{{{idx}}}}}{{\partial w}}"
        return f"{self._print(label)}_{{{idx}}}"

    def _print_KroneckerDelta(self, expr, exp=None):
        return rf"\delta_{{{_index_text(expr.args, self)}}}"

    def _print_Derivative(self, expr):
        # the operand in brackets unless it is one name or one function call: "\frac{d}{dw} f(w)
        # \tanh(...)" and "\frac{d}{dx} e^{x_i} \sum_k e^{x_k}" leave the reader to guess how far
        # the derivative reaches (chainrule check reads the rest of the term)
        mark = sp.Symbol(_OPERAND)
        op = super()._print_Derivative(sp.Derivative(mark, *expr.variable_count, evaluate=False))
        if isinstance(expr.expr, (sp.Symbol, sp.Indexed, AppliedUndef)):  # ∂x_i/∂x_j, dσ(x)/dx
            m = re.fullmatch(r"\\frac\{([^{}]*(?:\{[^{}]*\})?)\}\{(.*)\}\s*" + _OPERAND, op)
            if m:
                return rf"\frac{{{m.group(1)} {self._print(expr.expr)}}}{{{m.group(2)}}}"
            return op.replace(_OPERAND, self._print(expr.expr))
        return op.replace(_OPERAND, rf"\left({self._print(expr.expr)}\right)")

    def _print_Sum(self, expr):
        skip = excluded(expr)
        if skip is None and len(expr.limits) > 1:
            # Σ_u Σ_v written as two sums, as on paper (SymPy's \substack form is read by few)
            out = self._print(sp.Sum(expr.function, expr.limits[0]))  # the first limit is innermost
            for var, lo, hi in expr.limits[1:]:
                out = rf"\sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}} {out}"
            return out
        if skip is None:
            return super()._print_Sum(expr)
        var, other, body = skip
        inner = self._print(body)
        if isinstance(body, sp.Add):
            inner = rf"\left({inner}\right)"
        return rf"\sum_{{{self._print(var)} \neq {self._print(other)}}} {inner}"


def excluded(expr: sp.Sum):
    """``Σ_v (1 − δ_vj) g(v)`` is ``Σ_{v≠j} g(v)``: (v, j, g) for such a sum, else None."""
    if len(expr.limits) != 1 or not isinstance(expr.function, sp.Mul):
        return None
    var = expr.limits[0][0]
    for factor in expr.function.args:
        if isinstance(factor, sp.Add) and len(factor.args) == 2 and sp.S.One in factor.args:
            (rest,) = [t for t in factor.args if t != sp.S.One]
            deltas = rest.atoms(sp.KroneckerDelta)
            if len(deltas) == 1 and rest == -next(iter(deltas)) and var in rest.free_symbols:
                (d,) = deltas
                other = d.args[1] if d.args[0] == var else d.args[0]
                body = expr.function / factor
                return var, other, body
    return None


def text(expr: sp.Basic, display: dict | None = None) -> str:
    """``expr`` in one line of unicode."""
    return TextPrinter(display).doprint(expr)


def latex(expr: sp.Basic, display: dict | None = None) -> str:
    """``expr`` in LaTeX (KaTeX's subset)."""
    return TexPrinter(display).doprint(expr)


def _verdict(step) -> str:
    return step.check.describe()


def _lhs_text(d, part) -> str:
    return text(part.lhs, d.display)


def _equation(lhs, rhs, d, form) -> str:
    return f"{form(lhs, d.display)} = {form(rhs, d.display)}"


def _where_words(k: int) -> str:
    return "where" if k == 0 else "and"


def _given(s, form, d) -> str:
    """A step's assumption, in words and as an equation: "each row of y sums to 1 (Σ_v y_iv = 1)"."""
    if not s.assumption:
        return ""
    return s.assumption + (f" ({form(s.given, d.display)})" if s.given is not None else "")


def to_dict(d) -> dict[str, Any]:
    return {
        "schema": "chainrule.derivation", "version": 1,
        "name": d.name, "title": d.title, "verified": d.verified,
        "definition": {"text": f"{text(d.definition[0], d.display)} = {text(d.definition[1], d.display)}",
                       "latex": f"{latex(d.definition[0], d.display)} = {latex(d.definition[1], d.display)}"},
        "where": [{"text": _equation(lhs, rhs, d, text), "latex": _equation(lhs, rhs, d, latex)}
                  for lhs, rhs in d.where],
        "result": {"text": text(d.result, d.display), "latex": latex(d.result, d.display)},
        "note": d.note,
        "parts": [{
            "title": p.title,
            "lhs": {"text": text(p.lhs, d.display), "latex": latex(p.lhs, d.display)},
            "start": {"text": text(p.start, d.display), "latex": latex(p.start, d.display)},
            "steps": [{
                "rule": s.rule, "note": s.note, "assumption": s.assumption,
                "given": None if s.given is None else {"text": text(s.given, d.display),
                                                       "latex": latex(s.given, d.display)},
                "text": text(s.expr, d.display), "latex": latex(s.expr, d.display),
                "verified": s.check.status, "points": s.check.points,
                "verification": s.check.describe(),
            } for s in p.steps],
        } for p in d.parts],
    }


def render(d, fmt: str = "text") -> str:
    """``d`` (a ``Derivation``) in ``fmt``, one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return {"text": _text, "markdown": _markdown, "latex": _latex, "json": _json, "html": _html}[fmt](d)


def _json(d) -> str:
    return json.dumps(to_dict(d), indent=2, ensure_ascii=False) + "\n"


def _text(d) -> str:
    lines = [f"{d.title} ({d.name})",
             f"  {text(d.definition[0], d.display)} = {text(d.definition[1], d.display)}"]
    lines += [f"  {_where_words(k)} {_equation(lhs, rhs, d, text)}" for k, (lhs, rhs) in enumerate(d.where)]
    for p in d.parts:
        lines += ["", f"  {p.title}:", f"  {text(p.lhs, d.display)}"]
        if p.start != p.lhs:
            lines.append(f"    = {text(p.start, d.display)}")
        for s in p.steps:
            lines.append(f"    = {text(s.expr, d.display)}")
            why = s.rule + (f": {s.note}" if s.note else "")
            if s.assumption:
                why += f"; assuming {_given(s, text, d)}"
            lines.append(f"        [{why}; {_verdict(s)}]")
    if d.note:
        lines += ["", f"  note: {d.note}"]
    return "\n".join(lines) + "\n"


def _markdown(d) -> str:
    out = [f"## {d.title} (`{d.name}`)", "",
           f"$${latex(d.definition[0], d.display)} = {latex(d.definition[1], d.display)}$$", ""]
    for k, (lhs, rhs) in enumerate(d.where):
        out += [_where_words(k), "", f"$${_equation(lhs, rhs, d, latex)}$$", ""]
    for p in d.parts:
        out += [f"### {p.title}", "", f"$${latex(p.lhs, d.display)}$$", ""]
        if p.start != p.lhs:
            out += [f"$$= {latex(p.start, d.display)}$$", ""]
        for s in p.steps:
            # the assumption as a remark beside the line, where check reads it (Σ_v y_iv = 1)
            given = rf" \quad \text{{given }} {latex(s.given, d.display)}" if s.given is not None else ""
            out += [f"$$= {latex(s.expr, d.display)}{given}$$", "",
                    f"*{s.rule}*{': ' + s.note if s.note else ''}"
                    f"{'; assuming ' + s.assumption if s.assumption else ''} ({_verdict(s)})", ""]
    if d.note:
        out += [f"> {d.note}", ""]
    return "\n".join(out)


def _tex_text(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("^", r"\^{}"), ("&", r"\&"),
                 ("%", r"\%"), ("#", r"\#"), ("{", r"\{"), ("}", r"\}")):
        s = s.replace(a, b)
    return s


def _latex(d) -> str:
    out = [f"% {d.title} ({d.name}): written by chainrule derive --steps --format latex",
           r"\begin{align*}",
           f"  {latex(d.definition[0], d.display)} &= {latex(d.definition[1], d.display)} \\\\"]
    for k, (lhs, rhs) in enumerate(d.where):
        out += [rf"  \intertext{{{_where_words(k)}}}",
                f"  {latex(lhs, d.display)} &= {latex(rhs, d.display)} \\\\"]
    for p in d.parts:
        out.append(rf"  \intertext{{{_tex_text(p.title)}}}")
        first = latex(p.lhs, d.display)
        rows = []
        if p.start != p.lhs:
            rows.append(("", latex(p.start, d.display), ""))
        rows += [(f"{s.rule}; {_verdict(s)}", latex(s.expr, d.display),
                  "" if s.given is None else latex(s.given, d.display)) for s in p.steps]
        for k, (why, tex, given) in enumerate(rows):
            tag = rf" && \text{{{_tex_text(why)}}}" if why else ""
            if given:  # the assumption as math beside the row, where check reads it
                tag += rf"; \text{{given }} {given}"
            out.append(f"  {first if k == 0 else ''} &= {tex}{tag} \\\\")
    out.append(r"\end{align*}")
    return "\n".join(out) + "\n"


def _html(d) -> str:
    from chainrule._katex import head_html, math

    def m(expr, display=True, prefix=""):
        tex = prefix + latex(expr, d.display)
        return math(tex, html.escape(prefix + text(expr, d.display)), display=display)

    body = [f"<h2>{html.escape(d.title)} (<code>{html.escape(d.name)}</code>)</h2>",
            math(f"{latex(d.definition[0], d.display)} = {latex(d.definition[1], d.display)}",
                 html.escape(f"{text(d.definition[0], d.display)} = {text(d.definition[1], d.display)}"),
                 display=True)]
    for k, (lhs, rhs) in enumerate(d.where):
        body.append(f"<p>{_where_words(k)}</p>")
        body.append(math(_equation(lhs, rhs, d, latex), html.escape(_equation(lhs, rhs, d, text)),
                         display=True))
    for p in d.parts:
        body.append(f"<h3>{html.escape(p.title)}</h3>")
        body.append(m(p.lhs))
        if p.start != p.lhs:
            body.append(m(p.start, prefix="= "))
        body.append("<ol class='steps'>")
        for s in p.steps:
            ok = "ok" if s.check.ok else "bad"
            given = "" if s.given is None else \
                " " + math(latex(s.given, d.display), html.escape(text(s.given, d.display)), display=False)
            body.append(f"<li>{m(s.expr, prefix='= ')}<p class='why {ok}'>{html.escape(s.rule)}"
                        f"{': ' + html.escape(s.note) if s.note else ''}"
                        f"{'; assuming ' + html.escape(s.assumption) if s.assumption else ''}{given}"
                        f" <em>({html.escape(_verdict(s))})</em></p></li>")
        body.append("</ol>")
    if d.note:
        body.append(f"<p class='note'>{html.escape(d.note)}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             ".why{color:#555;margin:0 0 1em 0}.why.bad{color:#b00}ol.steps{padding-left:1.5em}")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(d.title)}: derivation</title>\n{head_html()}<style>{style}</style></head>\n"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")
