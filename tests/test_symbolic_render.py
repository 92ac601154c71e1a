"""``chainrule.symbolic.render``'s printers: a derivation's expressions as the textbook writes them.

Every expected string here is typed by hand from the reference solution
(../shared/reference/worked-solution.md) or a textbook, never copied from chainrule's output:
products in the textbook's order (σ(x)(1 − σ(x)), not SymPy's (1 − σ(x))σ(x)), ∂ for every
derivative in every format (the reference writes ∂/∂x(σ(x))), and U+2212 for minus in text.
That only the printing changes is checked by reading each printed form back with a parser that
is not chainrule's (SymPy's ``parse_expr`` for the text form, latex2sympy2_extended for LaTeX)
and comparing it with the expression printed.
"""
from __future__ import annotations

import random
import re

import pytest

sp = pytest.importorskip("sympy", reason="the symbolic extra (SymPy) is not installed")

from chainrule.symbolic.render import latex, text  # noqa: E402

x, y, w, C = (sp.Symbol(n, real=True) for n in ("x", "y", "w", "C"))
u, v, i, j, k, n = (sp.Symbol(q, integer=True, positive=True) for q in "uvijkn")
sigma, f = sp.Function("sigma"), sp.Function("f")
Y, Z = sp.IndexedBase("y", real=True), sp.IndexedBase("z", real=True)
YHAT = sp.IndexedBase("yhat", real=True)  # printed ŷ, \hat{y}


@pytest.mark.parametrize("expr, want_text, want_latex", [
    # the reference, part 1 a): σ(x)(1 − σ(x)); SymPy's own order is (1 − σ(x))σ(x)
    (sigma(x) * (1 - sigma(x)), "σ(x)·(1 − σ(x))",
     r"\sigma{\left(x \right)} \left(1 - \sigma{\left(x \right)}\right)"),
    # part 1 a), the chain rule: the derivative of the inner function last
    (sigma(f(w)) * (1 - sigma(f(w))) * sp.Derivative(f(w), w),
     "σ(f(w))·(1 − σ(f(w)))·∂f(w)/∂w",
     r"\sigma{\left(f{\left(w \right)} \right)} \left(1 - \sigma{\left(f{\left(w \right)} \right)}\right) "
     r"\frac{\partial f{\left(w \right)}}{\partial w}"),
    # part 2 a): ŷ_uv(1 − ŷ_uv), y_uv log(ŷ_uv)
    (YHAT[u, v] * (1 - YHAT[u, v]), "ŷ_uv·(1 − ŷ_uv)", r"\hat{y}_{uv} \left(1 - \hat{y}_{uv}\right)"),
    (Y[u, v] * sp.log(YHAT[u, v]), "y_uv·log(ŷ_uv)", r"y_{uv} \log\left(\hat{y}_{uv} \right)"),
    # part 2 a): (y_uv/ŷ_uv) ∂ŷ_uv/∂z_ij, a fraction before the derivative, not ∂ŷ/∂z·y/ŷ
    (Y[u, v] / YHAT[u, v] * sp.Derivative(YHAT[u, v], Z[i, j]), "y_uv/ŷ_uv·∂ŷ_uv/∂z_ij",
     r"\frac{y_{uv}}{\hat{y}_{uv}} \frac{\partial \hat{y}_{uv}}{\partial z_{ij}}"),
    # the binary cross-entropy: (1 − y) log(1 − ŷ), the bracket before a function of a sum
    (-((1 - y) * sp.log(1 - x)), "−(1 − y)·log(1 − x)",
     r"- \left(1 - y\right) \log\left(1 - x \right)"),
    # a positive term first: 1 − y·x, (y − x)², not SymPy's −x·y + 1
    (1 - x * y, "1 − x·y", "1 - x y"),
    ((y - x) ** 2 / 2, "(y − x)^2/2", r"\frac{\left(y - x\right)^{2}}{2}"),
    # the number first: −2y, √2·x/(2√π)
    (-2 * y, "−2·y", "- 2 y"),
    (sp.sqrt(2) * x * sp.exp(-x ** 2 / 2) / (2 * sp.sqrt(sp.pi)), "√2·x·e^(−x^2/2)/(2·√π)",
     r"\frac{\sqrt{2} x e^{- \frac{x^{2}}{2}}}{2 \sqrt{\pi}}"),
])
def test_products_in_the_textbooks_order(expr, want_text, want_latex):
    assert text(expr) == want_text
    assert latex(expr) == want_latex


@pytest.mark.parametrize("expr, want_text, want_latex", [
    # one variable or several, always ∂: the reference writes \frac{\partial}{\partial x}(\sigma(x))
    (sp.Derivative(sigma(x), x), "∂σ(x)/∂x", r"\frac{\partial \sigma{\left(x \right)}}{\partial x}"),
    (sp.Derivative(sp.tanh(x), x), "∂tanh(x)/∂x", r"\frac{\partial \tanh\left(x \right)}{\partial x}"),
    (sp.Derivative(1 / (1 + sp.exp(-x)), x), "∂/∂x[1/(1 + e^(−x))]",
     r"\frac{\partial}{\partial x} \left(\frac{1}{1 + e^{- x}}\right)"),
    (sp.Derivative(sp.Symbol("J"), Z[i, j]), "∂J/∂z_ij", r"\frac{\partial J}{\partial z_{ij}}"),
    (sp.Derivative(sp.log(sp.Sum(sp.exp(Z[u, k]), (k, 1, C))), Z[i, j]),
     "∂/∂z_ij[log(Σ_{k=1}^{C} e^(z_uk))]",  # e^(z_uk): e^z_uk could be (e^z)_uk
     r"\frac{\partial}{\partial z_{ij}} \left(\log\left(\sum_{k=1}^{C} e^{z_{uk}} \right)\right)"),
    (sp.Derivative(x ** 3, (x, 2)), "∂²/∂x²[x^3]", r"\frac{\partial^{2}}{\partial x^{2}} \left(x^{3}\right)"),
])
def test_every_derivative_is_written_with_the_partial_sign(expr, want_text, want_latex):
    assert text(expr) == want_text
    assert latex(expr) == want_latex


def test_text_writes_every_minus_as_the_minus_sign():
    expr = -sp.exp(-x) / (1 + sp.exp(-x)) ** 2 - 3 * y
    out = text(expr)
    assert "-" not in out and out.count("−") == 4, out  # −3·y − e^(−x)/(1 + e^(−x))^2


def test_sympys_constants_are_written_as_such():
    # π as \pi (not \text{\Pi}, which the renamed printmethod once gave), √ in text
    assert latex(sp.pi / 2) == r"\frac{\pi}{2}"
    assert latex(sp.oo) == r"\infty"
    assert text(sp.pi / 2) == "π/2"
    assert text(1 / sp.sqrt(x + 1)) == "1/√(x + 1)"


# --- only the printing changes: each printed form read back by a parser that is not chainrule's

def _from_text(s: str, names: dict) -> sp.Expr:
    from sympy.parsing.sympy_parser import parse_expr

    s = s.replace("−", "-").replace("·", "*").replace("^", "**").replace("π", "pi")
    s = re.sub(r"√(\w+)", r"sqrt(\1)", s).replace("√", "sqrt")
    return parse_expr(s, local_dict=names)


SCALARS = [
    sigma(x) * (1 - sigma(x)),
    -sigma(x) * (1 - sigma(x)) * y / 3,
    x * sp.exp(x) * (x + 2),
    -((1 - y) * sp.log(1 - x)) - y * sp.log(x),
    (1 - y) * sp.exp(-x) / (1 + sp.exp(-x)) ** 2,
    sp.sqrt(2) * x * sp.exp(-x ** 2 / 2) / (2 * sp.sqrt(sp.pi)) + sp.erf(x / sp.sqrt(2)) / 2,
    -2 * x * y * (1 - x) ** 2 / (3 * (x + y)),
    1 - x * y - sp.exp(-x) + 2 * (y - x) ** 2,
    sp.tanh(x) ** 2 * (1 - sp.tanh(x)) * x / 2,
]


@pytest.mark.parametrize("expr", SCALARS)
def test_the_text_form_reads_back_as_the_same_expression(expr):
    back = _from_text(text(expr), {"x": x, "y": y, "σ": sigma, "e": sp.E})
    assert sp.simplify(back - expr) == 0, (text(expr), back)


@pytest.mark.parametrize("expr", [e for e in SCALARS if not e.has(sp.erf)])  # \operatorname{erf}: unread
def test_the_latex_form_reads_back_as_the_same_value(expr):
    l2s = pytest.importorskip("latex2sympy2_extended", reason="the symbolic extra is not installed")
    s = latex(expr).replace(r"\sigma{\left(x \right)}", r"\frac{1}{1 + e^{-x}}")  # σ written out
    s = s.replace(r"\log", r"\ln")  # latex2sympy reads \log as the base-10 logarithm
    back = l2s.latex2sympy(s)
    names = {str(a): a for a in back.free_symbols}
    rng = random.Random(14)
    for _ in range(5):
        at = {x: rng.uniform(0.1, 0.9), y: rng.uniform(0.1, 0.9)}
        want = complex(expr.subs(sigma(x), 1 / (1 + sp.exp(-x))).subs(at).evalf())
        got = complex(back.subs({names[str(s)]: val for s, val in at.items() if str(s) in names}).evalf())
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (latex(expr), back)
