"""The stated formulas are right: SymPy differentiates each definition and checks the derivative.

For every registered formula: (1) SymPy's derivative of the symbolic definition equals the
stated derivative (exactly, by simplification, for the scalar functions; at random points to
1e-12 for the vector ones, where simplification over sums cannot always decide), and (2) the
engine's forward equals the definition and its VJP equals the stated derivative at random points.
Together with the autograd/torch tests, this ties the LaTeX-side math to the numbers.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F
from chainrule.functional import FORMULAS

sp = pytest.importorskip("sympy", reason="the symbolic proofs need SymPy (extra 'symbolic')")

N = 3  # vector length for the vector formulas
POINTS = 25  # random points per scalar formula


def _normal(scale=2.0):
    return lambda rng, size: rng.normal(scale=scale, size=size)


def _uniform(lo, hi):
    return lambda rng, size: rng.uniform(lo, hi, size)


def _pm1(rng, size):
    return rng.choice([-1.0, 1.0], size=size)


def _simplex(rng, size):
    e = rng.random(size) + 0.05
    return e / e.sum()


@dataclass
class Binding:
    """How to draw values for a formula's symbols, and how to call chainrule with them.

    ``call(values, w)`` gets the drawn values by symbol name and ``w``, a tensor holding the
    values of the variable the formula differentiates by; it returns chainrule's output.
    Scalar parameters are drawn once; variables (and indexed vectors) as arrays.
    """

    call: Callable[[dict[str, Any], Any], Any]
    draw: dict[str, Callable] = field(default_factory=dict)
    params: tuple[str, ...] = ()  # symbols drawn as one scalar


def _loss(fn, **kw):
    return lambda v, p: fn(p, v["y"], reduction="sum", **kw)


BINDINGS: dict[str, Binding] = {
    "sigmoid": Binding(lambda v, x: F.sigmoid(x)),
    "tanh": Binding(lambda v, x: F.tanh(x)),
    "relu": Binding(lambda v, x: F.relu(x)),
    "leaky_relu": Binding(lambda v, x: F.leaky_relu(x, negative_slope=v["a"]),
                          {"a": _uniform(0.01, 0.5)}, ("a",)),
    "elu": Binding(lambda v, x: F.elu(x, alpha=v["alpha"]), {"alpha": _uniform(0.2, 2.0)}, ("alpha",)),
    "gelu": Binding(lambda v, x: F.gelu(x)),
    "softplus": Binding(lambda v, x: F.softplus(x, beta=v["beta"]), {"beta": _uniform(0.3, 2.0)},
                        ("beta",)),
    "softmax": Binding(lambda v, x: F.softmax(x)),
    "log_softmax": Binding(lambda v, x: F.log_softmax(x)),
    "l1_loss": Binding(_loss(F.l1_loss), {"y": _normal()}),
    "mse_loss": Binding(_loss(F.mse_loss), {"y": _normal()}),
    "l2_loss": Binding(_loss(F.l2_loss), {"y": _normal()}),
    "huber_loss": Binding(lambda v, p: F.huber_loss(p, v["y"], delta=v["delta"], reduction="sum"),
                          {"y": _normal(), "delta": _uniform(0.3, 2.0)}, ("delta",)),
    "hinge_loss": Binding(_loss(F.hinge_loss), {"y": _pm1}),
    "binary_cross_entropy": Binding(_loss(F.binary_cross_entropy),
                                    {"p": _uniform(0.02, 0.98), "y": _uniform(0.0, 1.0)}),
    "binary_cross_entropy_with_logits": Binding(_loss(F.binary_cross_entropy_with_logits),
                                                {"p": _normal(3.0), "y": _uniform(0.0, 1.0)}),
    # The stated (softmax - y) needs target rows that sum to 1, as the reference assumes.
    "cross_entropy": Binding(lambda v, z: F.cross_entropy(z, v["y"], reduction="sum"), {"y": _simplex}),
    "multi_margin_loss": Binding(
        lambda v, x: F.multi_margin_loss(x, np.array(v["t"] - 1), margin=v["margin"], reduction="sum"),
        {"t": lambda rng, size: int(rng.integers(1, N + 1)), "margin": _uniform(0.5, 1.5)},
        ("t", "margin")),
    "cosine_similarity": Binding(lambda v, b: F.cosine_similarity(v["a"], b)),
    "cosine_embedding_loss": Binding(
        lambda v, a: F.cosine_embedding_loss(a, v["b"], np.array(v["t"]), margin=v["margin"],
                                             reduction="sum"),
        {"t": lambda rng, size: float(rng.choice([-1.0, 1.0])), "margin": _uniform(-0.5, 0.5)},
        ("t", "margin")),
    # PyTorch's other activations and losses (issue 12)
    "logsigmoid": Binding(lambda v, x: F.logsigmoid(x)),
    "silu": Binding(lambda v, x: F.silu(x)),
    "selu": Binding(lambda v, x: F.selu(x)),
    "celu": Binding(lambda v, x: F.celu(x, alpha=v["alpha"]), {"alpha": _uniform(0.2, 2.0)}, ("alpha",)),
    "mish": Binding(lambda v, x: F.mish(x)),
    "hardswish": Binding(lambda v, x: F.hardswish(x), {"x": _normal(3.0)}),
    "hardsigmoid": Binding(lambda v, x: F.hardsigmoid(x), {"x": _normal(3.0)}),
    "hardtanh": Binding(lambda v, x: F.hardtanh(x, min_val=v["a"], max_val=v["b"]),
                        {"a": _uniform(-2.0, -0.5), "b": _uniform(0.5, 2.0)}, ("a", "b")),
    "relu6": Binding(lambda v, x: F.relu6(x), {"x": _normal(4.0)}),
    "softsign": Binding(lambda v, x: F.softsign(x)),
    "softmin": Binding(lambda v, x: F.softmin(x)),
    "smooth_l1_loss": Binding(lambda v, p: F.smooth_l1_loss(p, v["y"], beta=v["beta"], reduction="sum"),
                              {"y": _normal(), "beta": _uniform(0.3, 2.0)}, ("beta",)),
    "kl_div": Binding(_loss(F.kl_div), {"y": _uniform(0.05, 1.0)}),
    # the SymPy form writes the class index as a one-hot row y
    "nll_loss": Binding(lambda v, x: F.nll_loss(x, np.argmax(v["y"]), reduction="sum"),
                        {"y": lambda rng, size: np.eye(N)[rng.integers(N)]}),
}
NAMES = list(FORMULAS)
SCALAR = [n for n in NAMES if "[" not in FORMULAS[n].wrt]
VECTOR = [n for n in NAMES if "[" in FORMULAS[n].wrt]


def _draw(name: str, symbols: dict[str, Any], rng, size) -> dict[str, Any]:
    binding = BINDINGS[name]
    values = {}
    for sym in symbols:
        if sym in ("f", "i", "j", "k", "c", "n"):
            continue
        sampler = binding.draw.get(sym, _normal())
        values[sym] = sampler(rng, None if sym in binding.params else size)
    return values


def test_every_formula_has_a_binding_and_sympy_form():
    assert set(BINDINGS) == set(FORMULAS)
    assert all(f.sympy is not None for f in FORMULAS.values())


# --- scalar (elementwise) formulas ----------------------------------------------------------

@pytest.mark.parametrize("name", SCALAR)
def test_stated_derivative_simplifies_to_the_derivative_of_the_definition(name):
    formula = FORMULAS[name]
    definition, stated, symbols = formula.symbolic()
    assert sp.simplify(sp.diff(definition, symbols[formula.wrt]) - stated) == 0


@dataclass
class ScalarCase:
    """A scalar formula at POINTS random points: its SymPy forms evaluated there by ``numeric``,
    and chainrule's output and gradient with respect to the variable ``wrt``."""

    formula: Any
    definition: Any
    stated: Any
    symbols: dict[str, Any]
    values: dict[str, Any]
    numeric: Callable[[Any], np.ndarray]
    out: Any
    grad: np.ndarray


def _scalar_case(name: str, rng) -> ScalarCase:
    formula = FORMULAS[name]
    definition, stated, symbols = formula.symbolic()
    values = _draw(name, symbols, rng, POINTS)
    order = sorted(values)
    args = [values[s] for s in order]

    def numeric(expr):
        return np.broadcast_to(sp.lambdify([symbols[s] for s in order], expr,
                                           modules=["scipy", "numpy"])(*args), (POINTS,))

    w = cr.tensor(values[formula.wrt], requires_grad=True)
    out = BINDINGS[name].call(values, w)
    (grad,) = cr.grad(out.sum() if out.ndim else out, [w])
    return ScalarCase(formula, definition, stated, symbols, values, numeric, out, grad.data)


@pytest.mark.parametrize("name", SCALAR)
def test_engine_matches_definition_and_stated_derivative(name, rng):
    c = _scalar_case(name, rng)
    derived = sp.diff(c.definition, c.symbols[c.formula.wrt])
    # the stated derivative agrees with SymPy's at the points too (simplification aside)
    np.testing.assert_allclose(c.numeric(c.stated), c.numeric(derived), rtol=1e-12, atol=1e-14)
    expected = c.numeric(c.definition)
    np.testing.assert_allclose(c.out.data, expected if c.out.ndim else expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(c.grad, c.numeric(c.stated), rtol=1e-12, atol=1e-14)


# --- vector formulas (softmax, cross-entropy, margins, cosine) ------------------------------

def _substitute(expr, symbols: dict[str, Any], values: dict[str, Any]) -> float:
    """Evaluate ``expr`` at the drawn values: scalars (and n = N) first, so that x[t] becomes
    a concrete component, then the sums expanded, then each component x[1..N]."""
    scalars = {symbols["n"]: N}
    components = {}
    for sym, value in values.items():
        if isinstance(symbols[sym], sp.IndexedBase):
            components.update({symbols[sym][k + 1]: value[k] for k in range(N)})
        else:
            scalars[symbols[sym]] = value
    return float(expr.subs(scalars).doit().subs(components).evalf(30))


def _free_indices(expr, symbols) -> list:
    return [symbols[s] for s in ("i", "j") if s in symbols and symbols[s] in expr.free_symbols]


@pytest.mark.parametrize("name", VECTOR)
def test_vector_formula_derivative_and_engine(name, rng):
    formula = FORMULAS[name]
    definition, stated, symbols = formula.symbolic()
    wrt = sp.sympify(formula.wrt, locals=symbols)
    base, wrt_index = wrt.base, wrt.indices[0]
    out_indices = _free_indices(definition, symbols)  # e.g. i for softmax_i
    for _ in range(4):  # a few random points
        values = _draw(name, symbols, rng, N)
        w = cr.tensor(values[str(base.label)], requires_grad=True)
        out = BINDINGS[name].call(values, w)
        for index_values in itertools.product(range(1, N + 1), repeat=len(out_indices) + 1):
            assign = dict(zip([*out_indices, wrt_index], index_values, strict=True))
            component = definition.subs(assign).subs(symbols["n"], N).doit()
            derived = sp.diff(component, wrt.subs(assign))
            stated_value = _substitute(stated.subs(assign), symbols, values)
            derived_value = _substitute(derived, symbols, values)
            assert stated_value == pytest.approx(derived_value, rel=1e-12, abs=1e-14), assign

            # the engine: its value is the definition, its VJP the stated derivative
            i_out = tuple(v - 1 for v in index_values[:-1])
            seed = np.zeros(out.shape)
            seed[i_out] = 1.0
            (grad,) = cr.grad(out, [w], grad_output=seed, retain_graph=True)
            assert grad.data[index_values[-1] - 1] == pytest.approx(stated_value, rel=1e-9, abs=1e-12)
            value = _substitute(component, symbols, values)
            assert out.data[i_out] == pytest.approx(value, rel=1e-9, abs=1e-12)


# --- the records themselves --------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_formula_record_is_complete_and_balanced(name):
    f = cr.formula(name)
    for latex in (f.definition, f.derivative, f.chain_rule):
        assert latex.count("{") == latex.count("}"), latex
        assert len(re.findall(r"\\begin\{cases\}", latex)) == len(re.findall(r"\\end\{cases\}", latex))
    assert "w" in f.chain_rule and "∂/∂w" in f.chain_rule_text
    assert all(s.strip() for s in (f.title, f.definition_text, f.derivative_text))
    assert f.latex().splitlines() == [f.definition, f.derivative, f.chain_rule]


@pytest.mark.parametrize("name", NAMES)
def test_primitive_registered_under_the_same_name_with_a_template(name):
    from chainrule.ops import PRIMITIVES

    prim = PRIMITIVES[name]
    assert "{0}" in prim.latex
    prim.latex.format("x", "y", "z")  # a valid format template for the explainer


def test_formula_lookup_accepts_aliases_and_rejects_unknown_names():
    assert cr.formula("Sigmoid") is FORMULAS["sigmoid"]
    assert cr.formula("mse") is FORMULAS["mse_loss"]
    assert cr.formula("CrossEntropyLoss") is FORMULAS["cross_entropy"]
    assert cr.formula("NLLLoss") is FORMULAS["nll_loss"]
    assert cr.formula("KLDivLoss") is FORMULAS["kl_div"]
    with pytest.raises(ValueError, match="no formula named 'swish'; known: binary_cross_entropy"):
        cr.formula("swish")


def test_registries_cover_the_formulas():
    assert set(F.ACTIVATIONS) | set(F.LOSSES) | {"cosine_similarity"} == set(FORMULAS)


# --- the closed-form local derivatives the explainer writes (Formula.local) ----------------------

LOCAL = [n for n in SCALAR if FORMULAS[n].local is not None]
# keyword parameters of the primitives, by the SymPy symbol drawn for them (or a fixed value)
LOCAL_PARAMS = {"leaky_relu": {"negative_slope": "a"}, "elu": {"alpha": "alpha"},
                "softplus": {"beta": "beta", "threshold": 20.0}, "huber_loss": {"delta": "delta"}}


def _evaluate_local(template: str, point: dict[str, float]) -> float:
    from string import Template

    # numbers in parentheses, as the explainer writes negative ones: 1 - (-0.5)**2
    code = Template(template).substitute({k: f"({float(v)!r})" for k, v in point.items()})
    return float(eval(code, {"__builtins__": {}}, {"sign": np.sign, "abs": abs, "exp": np.exp}))


def test_the_explainers_activations_and_regression_losses_have_closed_forms():
    assert {"sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "l1_loss", "mse_loss",
            "l2_loss", "huber_loss", "hinge_loss", "binary_cross_entropy"} <= set(LOCAL)


@pytest.mark.parametrize("name", LOCAL)
def test_closed_form_local_derivative_is_the_stated_one_and_the_engines(name, rng):
    """Formula.local, evaluated at random points, equals the stated (SymPy-proved) derivative
    and the engine's VJP: what the explainer writes beside a value is how it was computed."""
    c = _scalar_case(name, rng)
    f_values = c.numeric(c.definition)
    closed = []
    for k in range(POINTS):
        point = {"x": c.values[c.formula.wrt][k], "f": f_values[k]}
        if "y" in c.values:
            point["y"] = np.broadcast_to(c.values["y"], (POINTS,))[k]
        for param, source in LOCAL_PARAMS.get(name, {}).items():
            point[param] = c.values[source] if isinstance(source, str) else source
        closed.append(_evaluate_local(c.formula.local, point))
    np.testing.assert_allclose(closed, c.numeric(c.stated), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(closed, c.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", LOCAL)
def test_closed_form_latex_names_the_same_operands(name):
    from string import Template

    formula = FORMULAS[name]
    assert formula.local_latex is not None
    pattern = Template.pattern

    def named(text):
        return {m.group("named") for m in pattern.finditer(text) if m.group("named")}

    assert named(formula.local) == named(formula.local_latex)
    assert formula.local_latex.count("{") == formula.local_latex.count("}")
    assert "x" in named(formula.local) or "f" in named(formula.local)
