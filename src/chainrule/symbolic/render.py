"""A derivation as text, Markdown, LaTeX, JSON or HTML (formulas typeset offline by the vendored
KaTeX, ``chainrule._katex``).

Expressions are written with the reference solution's names: ``z[i, j]`` as z_ij, ``p`` as ŷ,
Σ for sums, δ_ij for Kronecker deltas and {… if …; … otherwise} for cases, and in its notation,
the same in every format:

- every derivative with ∂, ∂σ(x)/∂x as much as ∂J/∂z_ij, as the reference solution writes them
  all (∂/∂x(σ(x)) in part 1), never SymPy's d/dx for an expression of one variable next to ∂
  for one of several;
- a product in the textbook's order: the number first, then names (x, ŷ_ij, δ_ij), functions
  (σ(x), e^x, log ŷ_uv), bracketed sums and Σ, and the derivatives last: σ(x)(1 − σ(x)),
  y_uv log ŷ_uv, ŷ_ij(1 − ŷ_ij), σ(f(w))(1 − σ(f(w))) ∂f(w)/∂w; SymPy's canonical order
  writes (1 − σ(x))σ(x). Only the printing changes, never the expression;
- a sum with a positive term first: 1 − ŷ·y, (y − ŷ)², not SymPy's −ŷ·y + 1;
- minus as U+2212 (−) in text, as the formulas' text forms (``chainrule.formula``) write it.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

FORMATS = ("text", "markdown", "latex", "json", "html")

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")

_GREEK = {"sigma": "σ", "delta": "δ", "alpha": "α", "beta": "β", "ell": "ℓ", "L_delta": "L_δ",
          "yhat": "ŷ", "theta": "θ", "lambda": "λ"}


def _is_dw(expr) -> bool:
    """The chain rule's placeholders ``d<name>/dw[i, j]``, printed ∂<name>_ij/∂w."""
    return isinstance(expr, sp.Indexed) and str(expr.base.label).startswith("d") \
        and str(expr.base.label).endswith("/dw")


def _factor_rank(factor: sp.Basic) -> float:
    """Where a factor goes in a printed product: 0 a number (2, √2, π), 1 a name (x, ŷ_ij, δ_ij),
    2 a function of names (σ(x), e^−x, log ŷ_uv), 3 a bracketed sum, a Σ or cases, 3.5 a function
    of a sum (log(1 − ŷ)), 4 a derivative. A power goes where its base goes (x², tanh²(x),
    (1 + e^−x)²). So σ(x)·(1 − σ(x)), y_uv·log(ŷ_uv), −(1 − y)·log(1 − ŷ), ŷ_ij·(1 − ŷ_ij)."""
    base = factor.base if isinstance(factor, sp.Pow) else factor
    if factor.is_number:  # 2, √2, π, 1/√π
        return 0
    if isinstance(base, sp.Derivative) or _is_dw(base):
        return 4
    if isinstance(base, sp.Number):  # 2^x
        return 2
    if isinstance(base, (sp.Symbol, sp.Indexed, sp.KroneckerDelta)) or base.is_Atom:
        return 1
    if isinstance(base, (sp.Add, sp.Mul, sp.Sum, sp.Piecewise)):
        return 3
    if all(not a.has(sp.Add, sp.Sum) for a in base.args):
        return 2
    return 3.5  # a function of a sum after the brackets: (1 − y)·log(1 − ŷ)


def _textbook_order(expr):
    """``expr`` (a commutative Mul) with its factors in the textbook's order, as an unevaluated
    Mul: SymPy's printing order, stably sorted by ``_factor_rank``. Anything else as it is, and
    so an unevaluated Mul written to show its numbers (``1·x``, ``x·2``)."""
    if not isinstance(expr, sp.Mul) or not expr.is_commutative or expr.args[0] is sp.S.One \
            or any(isinstance(a, sp.Number) for a in expr.args[1:]):
        return expr
    coeff, rest = expr.as_coeff_Mul()  # not as_ordered_factors' −1·2·y for −2y
    factors = sorted(rest.as_ordered_factors() if isinstance(rest, sp.Mul) else [rest], key=_factor_rank)
    return sp.Mul._from_args(factors if coeff is sp.S.One else [coeff, *factors], True)


def _compact(operand) -> bool:
    """Whether ∂/∂x of ``operand`` is written ∂operand/∂x: one name (x, ŷ_uv, J) or one call of
    names (σ(x), f(w), tanh(x), log ŷ_uv). Anything longer is written ∂/∂x(...) with the operand
    in brackets, so that the reader never has to guess how far the derivative reaches."""
    if isinstance(operand, (sp.Symbol, sp.Indexed, AppliedUndef)):
        return True
    return isinstance(operand, sp.Function) and not isinstance(operand, sp.exp) \
        and all(isinstance(a, (sp.Symbol, sp.Indexed, AppliedUndef)) for a in operand.args)


def _derivatives_apart(expr):
    """``(negative, rest, derivatives)`` of a product with a derivative factor and a denominator,
    printed −rest·∂f/∂w: 1/(1 + e^−x)·∂f(w)/∂w and y_uv/ŷ_uv·∂ŷ_uv/∂z_ij as the reference writes
    them, never ∂f(w)/∂w/(1 + e^−x). ``rest`` keeps its factors as they are (unevaluated: 1/2
    is not multiplied into a sum). None for any other expression."""
    if not isinstance(expr, sp.Mul):
        return None
    derivs = [f for f in expr.args if _factor_rank(f) == 4 and not
              (isinstance(f, sp.Pow) and f.exp.could_extract_minus_sign())]
    rest = [f for f in expr.args if f not in derivs]
    below = any(isinstance(f, sp.Pow) and f.exp.could_extract_minus_sign()
                or isinstance(f, sp.Rational) and f.q != 1 for f in rest)
    if not derivs or not below:
        return None
    negative = rest[0].is_Number and rest[0] < 0
    if negative:
        rest = ([] if rest[0] == -1 else [-rest[0]]) + rest[1:]
    rest = rest[0] if len(rest) == 1 else sp.Mul._from_args(rest, True)
    return negative, rest, sorted(derivs, key=sp.default_sort_key)


def _positive_first(expr):
    """``expr`` (an Add) in SymPy's printing order but with its first positive term first, as
    an unevaluated Add: 1 − ŷ·y, (y − ŷ)², y_i/(|y||ŷ|) − J·ŷ_i/|ŷ|², not −ŷ·y + 1. Anything
    else as it is."""
    if not isinstance(expr, sp.Add):
        return expr
    terms = expr.as_ordered_terms()  # SymPy's printing order (its args are in another)
    k = next((k for k, t in enumerate(terms) if not t.could_extract_minus_sign()), 0)
    return sp.Add._from_args([terms[k], *terms[:k], *terms[k + 1:]])


class _FactorsAsGiven:
    """A printer seen by SymPy's ``_print_Mul`` (``_print_Add``) with its ``order`` setting
    "none": that method then keeps a product's factors (a sum's terms) in the order of
    ``expr.args`` (``_textbook_order``'s, ``_positive_first``'s) instead of sorting them.
    Everything else (the printing of each factor or term) is the printer's own."""

    order = "none"

    def __init__(self, printer):
        self._printer = printer

    def _as_ordered_terms(self, expr, order=None):  # a sum's terms as given too
        return list(expr.args)

    def __getattr__(self, name):
        return getattr(self._printer, name)


def _group_end(s: str, at: int) -> int:
    """The index after the ``}`` that closes the ``{`` at ``s[at]``."""
    depth = 0
    for k in range(at, len(s)):
        depth += {"{": 1, "}": -1}.get(s[k], 0) if s[k - 1:k] != "\\" or k == at else 0
        if depth == 0:
            return k + 1
    return -1


def _unbrace(tex: str) -> str:
    """``\\tanh^{2}{\\left(x \\right)}`` as ``\\tanh^{2}\\left(x \\right)``: a call that ends in
    SymPy's brace group, without the braces; anything else as it is."""
    at = tex.find(r"{\left(")
    if at > 0 and tex.endswith(r"\right)}") and _group_end(tex, at) == len(tex):
        return tex[:at] + tex[at + 1:-1]
    return tex


def _index_text(indices, printer) -> str:
    parts = [printer._print(i) for i in indices]
    return "".join(parts) if all(len(p) == 1 for p in parts) else ",".join(parts)


class TextPrinter(StrPrinter):
    """One line of unicode: e^(−x), ∂σ(x)/∂x, ∂/∂x[...], Σ_{k=1}^{n}, z_ij, |y|, σ(x)·(1 − σ(x))."""

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
        if _is_dw(expr):  # ∂z_ij/∂w placeholders
            return f"∂{self._print(sp.Symbol(str(label)[1:-3]))}_{_index_text(expr.indices, self)}/∂w"
        return f"{name}_{_index_text(expr.indices, self)}"

    def _print_Add(self, expr, order=None):
        return StrPrinter._print_Add(_FactorsAsGiven(self), _positive_first(expr))

    def _print_Mul(self, expr):
        apart = _derivatives_apart(expr)
        if apart:
            negative, rest, derivs = apart
            level = precedence(sp.Mul(2, sp.Symbol("x"), evaluate=False))  # a product's, not a negated one's
            if isinstance(rest, sp.Pow):  # 1/(1 + e^(−x))^2, not (1 + e^(−x))^(−2)
                rest = sp.Mul(sp.S.One, rest, evaluate=False)
            return ("-" if negative else "") + "*".join(
                [self.parenthesize(rest, level, strict=True),
                 *(self.parenthesize(d, level, strict=False) for d in derivs)])
        return StrPrinter._print_Mul(_FactorsAsGiven(self), _textbook_order(expr))

    def _print_Derivative(self, expr):
        # ∂σ(x)/∂x, ∂ŷ_uv/∂z_ij, ∂J/∂z_ij for one name or call (as TexPrinter writes them), the
        # operand in brackets otherwise: ∂/∂x[1/(1 + e^(−x))]
        order = sum(n for _, n in expr.variable_count)
        top = "∂" if order == 1 else f"∂{str(order).translate(_SUPERSCRIPT)}"
        bottom = "".join(f"∂{self._print(v)}" + ("" if n == 1 else str(n).translate(_SUPERSCRIPT))
                         for v, n in expr.variable_count)
        if _compact(expr.expr):
            return f"{top}{self._print(expr.expr)}/{bottom}"
        return f"{top}/{bottom}[{self._bare(expr.expr)}]"

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

    def _print_Pi(self, expr):
        return "π"

    def _print_Exp1(self, expr):
        return "e"

    def _print_ImaginaryUnit(self, expr):
        return "i"

    def _print_Infinity(self, expr):
        return "∞"

    def _print_NegativeInfinity(self, expr):
        return "−∞"

    def _print_Pow(self, expr, rational=False):
        if not rational and expr.exp in (sp.S.Half, -sp.S.Half):  # √2, 1/√π (SymPy: sqrt(pi))
            base = self._print(expr.base)
            root = f"√{base}" if expr.base.is_Atom or isinstance(expr.base, sp.Sum) else f"√({base})"
            return root if expr.exp is sp.S.Half else f"1/{root}"
        if expr.exp.is_Number and expr.exp < 0 and expr.exp != -1:  # 1/(x + 1)^2, not (x + 1)^(−2)
            return f"1/{self.parenthesize(sp.Pow(expr.base, -expr.exp), precedence(expr), strict=True)}"
        if isinstance(expr.base, sp.Derivative) or _is_dw(expr.base):  # (∂f(w)/∂w)^2
            return f"({self._print(expr.base)})^{self.parenthesize(expr.exp, precedence(expr), strict=False)}"
        return super()._print_Pow(expr, rational=rational)

    def _print_exp(self, expr):
        arg = self._print(expr.args[0])
        # e^x, but e^(x_i): "e^x_i" could be read as (e^x)_i
        plain = isinstance(expr.args[0], (sp.Symbol, sp.Number)) and not arg.startswith(("-", "−"))
        return f"e^{arg}" if plain else f"e^({arg})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Piecewise(self, expr):
        cases = []
        for e, c in expr.args:
            cases.append(f"{self._print(e)} otherwise" if c == sp.true
                         else f"{self._print(e)} if {self._print(c)}")
        return "{" + "; ".join(cases) + "}"

    def _bare(self, expr) -> str:
        """``expr`` where brackets follow anyway: a Σ without its own (log(Σ_k e^x_k), not
        log((Σ_k e^x_k)))."""
        out = self._print(expr)
        return out[1:-1] if isinstance(expr, sp.Sum) else out

    def _print_IndexedBase(self, expr):
        return self._print(expr.label)

    def _print_Function(self, expr):
        name = _GREEK.get(type(expr).__name__, type(expr).__name__)
        return f"{name}({', '.join(self._bare(a) for a in expr.args)})"

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
        return (out.replace("**", "^").replace("*", "·").replace("<=", "≤").replace(">=", "≥")
                .replace("-", "−"))


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
        if re.fullmatch(r"[A-Za-z]{2,}", out):
            return rf"\mathrm{{{out}}}"
        return out

    def _print_Indexed(self, expr):
        label = expr.base.label
        idx = _index_text(expr.indices, self)
        if _is_dw(expr):
            inner = self._print(sp.Symbol(str(label)[1:-3]))
            return rf"\frac{{\partial {inner}_{{{idx}}}}}{{\partial w}}"
        return f"{self._print(label)}_{{{idx}}}"

    def _print_KroneckerDelta(self, expr, exp=None):
        return rf"\delta_{{{_index_text(expr.args, self)}}}"

    def _print_Function(self, expr, exp=None):
        # \tanh\left(x \right), not SymPy's \tanh{\left(x \right)}: the brace group reads as
        # the function's whole argument to LaTeX parsers, so that \tanh{\left(x \right)} \left(1
        # - x\right) is read tanh(x·(1 − x)) (latex2sympy), where a reader sees tanh(x)·(1 − x).
        # A function named here (σ, f, s_i, L) keeps the braces: they tell chainrule check that
        # s_{i}{\left(x \right)} is a call, where s_{i}(x) would read as the product s_i·x
        out = super()._print_Function(expr, exp=exp)
        return out if isinstance(expr, AppliedUndef) else _unbrace(out)

    def _print_log(self, expr, exp=None):
        return _unbrace(super()._print_log(expr, exp=exp))

    def _print_Basic(self, expr):
        # SymPy's constants (π, i, ∞) print themselves with their _latex, which the renamed
        # printmethod skips (without this: \text{\Pi})
        own = getattr(expr, "_latex", None)
        return own(self) if own is not None else super()._print_Basic(expr)

    def _print_Add(self, expr, order=None):
        return LatexPrinter._print_Add(_FactorsAsGiven(self), _positive_first(expr))

    def _print_Mul(self, expr):
        apart = _derivatives_apart(expr)
        if apart:
            negative, rest, derivs = apart
            level = precedence(sp.Mul(2, sp.Symbol("x"), evaluate=False))
            return ("- " if negative else "") + " ".join(
                [self.parenthesize(rest, level, strict=True), *(self._print(d) for d in derivs)])
        return LatexPrinter._print_Mul(_FactorsAsGiven(self), _textbook_order(expr))

    def _print_Derivative(self, expr):
        # \partial always, as the reference writes \frac{\partial}{\partial x}(\sigma(x)) (SymPy
        # writes d for an expression of one variable). The operand in brackets unless it is one
        # name or one function call: "\frac{\partial}{\partial w} f(w) \tanh(...)" and
        # "\frac{\partial}{\partial x} e^{x_i} \sum_k e^{x_k}" leave the reader to guess how far
        # the derivative reaches (chainrule check reads the rest of the term)
        order = sum(n for _, n in expr.variable_count)
        top = r"\partial" if order == 1 else rf"\partial^{{{order}}}"
        bottom = " ".join(rf"\partial {self._print(v)}" + ("" if n == 1 else f"^{{{n}}}")
                          for v, n in expr.variable_count)
        if _compact(expr.expr):  # ∂x_i/∂x_j, ∂σ(x)/∂x
            return rf"\frac{{{top} {self._print(expr.expr)}}}{{{bottom}}}"
        return rf"\frac{{{top}}}{{{bottom}}} \left({self._print(expr.expr)}\right)"

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
