"""Activation functions: each one's forward, closed-form VJP and formula, side by side.

Every activation is a single primitive of the engine: its backward pass is the derivative the
formula states (e.g. sigma(x)(1 - sigma(x)) from the saved output), not the graph of the pieces
it could be composed from. Forwards are written so that no intermediate overflows: x = +-1e4
gives finite values and gradients in float32 and float64, and the dtype is kept.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.functional.formulas import Formula, define
from chainrule.ops import primitive
from chainrule.ops_elementwise import _erf  # the one erf (SciPy's when installed)
from chainrule.tensor import Tensor, apply


def _quiet() -> np.errstate:
    """exp(-1e4) == 0 is the intended result, not an error: ignore underflow only.

    Forwards use this; VJPs need not, the backward pass runs with underflow ignored
    (``autodiff.backprop``)."""
    return np.errstate(under="ignore")


def _as_input(x: Any, what: str = "activation input") -> Any:
    """A Tensor as it is; anything else as a float array (integers become float64, as NumPy)."""
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {array.dtype}")
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _number(fn: str, param: str, value: Any) -> float:
    """A scalar parameter as a float, or a TypeError naming the function and the parameter."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {param} must be a number, got {value!r}") from None


# --- sigmoid ------------------------------------------------------------------------------

def _sigmoid(x):
    # exp(-|x|) is at most 1, so nothing can overflow: 1/(1+e) for x >= 0, e/(1+e) below 0
    # (taken as s*e in place: one array and no np.where, ~25% faster, same to 1 ulp).
    with _quiet():
        e = np.exp(-np.abs(x))
    s = np.asarray(1 / (1 + e))  # an array even for 0-d x, so it can be written into
    np.multiply(s, e, out=s, where=x < 0)
    return s


def _sigmoid_fwd(x):
    """sigma(x) and its slope sigma(x) sigma(-x), both from e = exp(-|x|).

    The slope is e r^2 with r = 1/(1 + e): no 1 - sigma(x), which cancels where sigma(x) is
    near 1 (at x = 10 in float32 it is 0.05% off, at x = 17 it is 0 instead of 4e-8; PyTorch's
    sigmoid backward, computed from the output, has that error). Kept as the residual, so the
    backward pass is one product."""
    with _quiet():
        e = np.exp(-np.abs(x))
        s = np.asarray(1 / (1 + e))  # sigma(|x|), an array even for 0-d x
        slope = e * s  # sigma(-|x|) ...
        slope *= s  # ... times sigma(|x|), before s becomes sigma(x) where x < 0
        np.multiply(s, e, out=s, where=x < 0)  # as _sigmoid
    return s, slope


def _sigmoid_slope(x):
    # The same slope from the input, in dispatching NumPy: a recorded backward differentiates it.
    with _quiet():
        e = np.exp(-np.abs(x))
        r = 1 / (1 + e)
        return e * r * r


def _sigmoid_vjp(g, ans, x, residual=None):
    return g * (_sigmoid_slope(x) if residual is None else residual)


_sigmoid_prim = define(
    Formula(
        name="sigmoid", title="Sigmoid",
        definition=r"\sigma(x) = \frac{1}{1 + e^{-x}}",
        derivative=r"\frac{\partial}{\partial x}\sigma(x) = \sigma(x)\,\bigl(1 - \sigma(x)\bigr)",
        chain_rule=r"\frac{\partial}{\partial w}\sigma(f(w)) = \sigma(f(w))\,\bigl(1 - \sigma(f(w))\bigr)"
                   r"\,\frac{\partial f(w)}{\partial w}",
        definition_text="σ(x) = 1 / (1 + e^(−x))",
        derivative_text="∂/∂x σ(x) = σ(x)·(1 − σ(x))",
        chain_rule_text="∂/∂w σ(f(w)) = σ(f(w))·(1 − σ(f(w)))·∂f(w)/∂w",
        sympy=("1/(1 + exp(-x))", "f*(1 - f)"),
        local="$f * (1 - $f)",
        local_latex=r"$f\,(1 - $f)",
    ),
    _sigmoid, _sigmoid_vjp, latex=r"\sigma({0})", fwd=_sigmoid_fwd)


def sigmoid(x: Any) -> Tensor:
    """The logistic sigmoid 1 / (1 + e^-x), computed without overflow for any x."""
    return apply(_sigmoid_prim, _as_input(x))


# --- tanh ---------------------------------------------------------------------------------

def _tanh_slope(x):
    """1 - tanh(x)^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): from the input, without the
    cancellation of 1 - tanh^2 near saturation (0.07% off at x = 5 in float32, 0 instead of
    2.5e-17 at x = 20 in float64, as PyTorch's output-based backward gives)."""
    with _quiet():
        e = np.exp(-2 * np.abs(x))
        r = 1 / (1 + e)
        return 4 * e * r * r


_tanh_prim = define(
    Formula(
        name="tanh", title="Hyperbolic tangent",
        definition=r"\tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}",
        derivative=r"\frac{\partial}{\partial x}\tanh(x) = 1 - \tanh^2(x)",
        chain_rule=r"\frac{\partial}{\partial w}\tanh(f(w)) = \bigl(1 - \tanh^2(f(w))\bigr)"
                   r"\,\frac{\partial f(w)}{\partial w}",
        definition_text="tanh(x) = (e^x − e^(−x)) / (e^x + e^(−x))",
        derivative_text="∂/∂x tanh(x) = 1 − tanh²(x)",
        chain_rule_text="∂/∂w tanh(f(w)) = (1 − tanh²(f(w)))·∂f(w)/∂w",
        sympy=("(exp(x) - exp(-x))/(exp(x) + exp(-x))", "1 - f**2"),
        local="1 - $f**2",
        local_latex=r"1 - $f^{2}",
    ),
    np.tanh, lambda g, ans, x, residual=None: g * (_tanh_slope(x) if residual is None else residual),
    latex=r"\tanh({0})", fwd=lambda x: (np.tanh(x), _tanh_slope(x)))


def tanh(x: Any) -> Tensor:
    """The hyperbolic tangent; its derivative 1 - tanh^2 is taken from the saved output."""
    return apply(_tanh_prim, _as_input(x))


# --- relu ---------------------------------------------------------------------------------

_relu_prim = define(
    Formula(
        name="relu", title="ReLU",
        definition=r"\mathrm{ReLU}(x) = \begin{cases} x & x > 0 \\ 0 & \text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{ReLU}(x) = "
                   r"\begin{cases} 1 & x > 0 \\ 0 & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{ReLU}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & f(w) > 0 \\ 0 & \text{else} \end{cases}",
        definition_text="ReLU(x) = x if x > 0, else 0",
        derivative_text="∂/∂x ReLU(x) = 1 if x > 0, else 0",
        chain_rule_text="∂/∂w ReLU(f(w)) = ∂f(w)/∂w if f(w) > 0, else 0",
        sympy=("Piecewise((x, x > 0), (0, True))", "Piecewise((1, x > 0), (0, True))"),
        note="The derivative at exactly 0 is 0, as the reference solution defines it (and PyTorch's "
             "relu, jax.nn.relu).",
        local="1 if $x > 0 else 0",
        local_latex=r"1 \text{ if } $x > 0 \text{ else } 0",
    ),
    lambda x: np.maximum(x, 0), lambda g, ans, x: g * (x > 0),
    latex=r"\mathrm{{ReLU}}({0})")


def relu(x: Any) -> Tensor:
    """max(x, 0); the derivative at exactly 0 is 0, as in PyTorch and JAX."""
    return apply(_relu_prim, _as_input(x))


# --- leaky relu ---------------------------------------------------------------------------

_leaky_relu_prim = define(
    Formula(
        name="leaky_relu", title="Leaky ReLU",
        definition=r"\mathrm{LeakyReLU}(x) = \begin{cases} x & x > 0 \\ a x & \text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{LeakyReLU}(x) = "
                   r"\begin{cases} 1 & x > 0 \\ a & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{LeakyReLU}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & f(w) > 0 \\ a\,\frac{\partial f(w)}{\partial w}"
                   r" & \text{else} \end{cases}",
        definition_text="LeakyReLU(x) = x if x > 0, else a·x   (a = negative_slope)",
        derivative_text="∂/∂x LeakyReLU(x) = 1 if x > 0, else a",
        chain_rule_text="∂/∂w LeakyReLU(f(w)) = ∂f(w)/∂w if f(w) > 0, else a·∂f(w)/∂w",
        sympy=("Piecewise((x, x > 0), (a*x, True))", "Piecewise((1, x > 0), (a, True))"),
        symbols={"a": "positive"},
        local="1 if $x > 0 else $negative_slope",
        local_latex=r"1 \text{ if } $x > 0 \text{ else } $negative_slope",
    ),
    lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
    lambda g, ans, x, negative_slope: np.where(x > 0, g, g * negative_slope),
    latex=r"\mathrm{{LeakyReLU}}({0})")


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x (derivative at 0: negative_slope, as PyTorch)."""
    slope = _number("leaky_relu", "negative_slope", negative_slope)
    return apply(_leaky_relu_prim, _as_input(x), negative_slope=slope)


# --- elu ----------------------------------------------------------------------------------

def _elu(x, alpha):
    # expm1 of min(x, 0): the branch np.where discards never sees a large exponent.
    with _quiet():
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_vjp(g, ans, x, alpha):
    # alpha e^x from the input. Not ELU(x) + alpha, which is the same number in exact arithmetic
    # but cancels: at x = -40 it gives 0 (float64), at x = -15 it is 2.6% off (float32).
    # e^min(x, 0): the discarded branch never overflows (an inf there would make the recorded
    # second derivative 0 * inf = NaN).
    return np.where(x > 0, g, g * (alpha * np.exp(np.minimum(x, 0))))


_elu_prim = define(
    Formula(
        name="elu", title="ELU",
        definition=r"\mathrm{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & "
                   r"\text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{ELU}(x) = "
                   r"\begin{cases} 1 & x > 0 \\ \alpha\,e^{x} & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{ELU}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & f(w) > 0 \\ \alpha\,e^{f(w)}\,"
                   r"\frac{\partial f(w)}{\partial w} & \text{else} \end{cases}",
        definition_text="ELU(x) = x if x > 0, else α·(e^x − 1)",
        derivative_text="∂/∂x ELU(x) = 1 if x > 0, else α·e^x",
        chain_rule_text="∂/∂w ELU(f(w)) = ∂f(w)/∂w if f(w) > 0, else α·e^f(w)·∂f(w)/∂w",
        sympy=("Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))",
               "Piecewise((1, x > 0), (alpha*exp(x), True))"),
        symbols={"alpha": "positive"},
        local="1 if $x > 0 else $alpha * exp($x)",
        local_latex=r"1 \text{ if } $x > 0 \text{ else } $alpha\,e^{$x}",
    ),
    _elu, _elu_vjp, latex=r"\mathrm{{ELU}}({0})")


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (e^x - 1) (derivative at 0: alpha, as PyTorch)."""
    return apply(_elu_prim, _as_input(x), alpha=_number("elu", "alpha", alpha))


# --- gelu ---------------------------------------------------------------------------------

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _normal_pdf(x):
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


# The standard normal CDF Phi(x) = (1 + erf(x/sqrt 2))/2 (SciPy's ndtr), a primitive of its own
# so that GELU's VJP, which needs Phi, can be differentiated again: Phi' is the normal density.
_ndtr = primitive("ndtr", lambda x: 0.5 * (1 + _erf(x / _SQRT_2)),
                  lambda g, ans, x: g * _normal_pdf(x), latex=r"\Phi({0})")


def _gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)))
    return x * _ndtr.fn(x)


def _gelu_vjp(g, ans, x, approximate):
    if approximate == "tanh":  # _tanh_prim(...) rather than np.tanh: it records on Tensors
        t = _tanh_prim(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
        dt = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x) * (1 - t * t)
        return g * (0.5 * (1 + t) + 0.5 * x * dt)
    # Phi(x) + x phi(x): the normal CDF plus x times the normal density.
    return g * (_ndtr(x) + x * _normal_pdf(x))


_gelu_prim = define(
    Formula(
        name="gelu", title="GELU",
        definition=r"\mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\Bigl(1 + \operatorname{erf}"
                   r"\bigl(\tfrac{x}{\sqrt{2}}\bigr)\Bigr)",
        derivative=r"\frac{\partial}{\partial x}\mathrm{GELU}(x) = \Phi(x) + x\,\varphi(x), \quad "
                   r"\varphi(x) = \frac{e^{-x^2/2}}{\sqrt{2\pi}}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{GELU}(f(w)) = \bigl(\Phi(f(w)) + f(w)\,"
                   r"\varphi(f(w))\bigr)\,\frac{\partial f(w)}{\partial w}",
        definition_text="GELU(x) = x·Φ(x) = x/2·(1 + erf(x/√2))",
        derivative_text="∂/∂x GELU(x) = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)",
        chain_rule_text="∂/∂w GELU(f(w)) = (Φ(f(w)) + f(w)·φ(f(w)))·∂f(w)/∂w",
        sympy=("x/2*(1 + erf(x/sqrt(2)))",
               "(1 + erf(x/sqrt(2)))/2 + x*exp(-x**2/2)/sqrt(2*pi)"),
        note="approximate='tanh' uses x/2·(1 + tanh(√(2/π)(x + 0.044715x³))), as PyTorch.",
    ),
    _gelu, _gelu_vjp, latex=r"\mathrm{{GELU}}({0})")


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x * Phi(x) (``approximate='none'``) or PyTorch's tanh approximation (``'tanh'``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply(_gelu_prim, _as_input(x), approximate=approximate)


# --- softplus -----------------------------------------------------------------------------

def _softplus(x, beta, threshold):
    bx = x * beta
    with _quiet():  # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|): no overflow for any x
        soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / beta
    return np.where(bx > threshold, x, soft)  # PyTorch returns x itself above the threshold


def _softplus_vjp(g, ans, x, beta, threshold):
    bx = x * beta
    return np.where(bx > threshold, g, g * _sigmoid_prim(bx))  # underflows to 0 far below 0


_softplus_prim = define(
    Formula(
        name="softplus", title="Softplus",
        definition=r"\mathrm{softplus}(x) = \frac{1}{\beta}\log\bigl(1 + e^{\beta x}\bigr)",
        derivative=r"\frac{\partial}{\partial x}\mathrm{softplus}(x) = \sigma(\beta x) = "
                   r"\frac{1}{1 + e^{-\beta x}}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{softplus}(f(w)) = \sigma(\beta f(w))\,"
                   r"\frac{\partial f(w)}{\partial w}",
        definition_text="softplus(x) = log(1 + e^(βx)) / β",
        derivative_text="∂/∂x softplus(x) = σ(βx) = 1 / (1 + e^(−βx))",
        chain_rule_text="∂/∂w softplus(f(w)) = σ(β·f(w))·∂f(w)/∂w",
        sympy=("log(1 + exp(beta*x))/beta", "1/(1 + exp(-beta*x))"),
        symbols={"beta": "positive"},
        note="As PyTorch: where βx > threshold (default 20) the value is x and the slope 1.",
        local="1 if $beta * $x > $threshold else 1 / (1 + exp(-$beta * $x))",
        local_latex=(r"1 \text{ if } $beta \cdot $x > $threshold \text{ else } "
                     r"\frac{1}{1 + e^{-$beta \cdot $x}}"),
    ),
    _softplus, _softplus_vjp, latex=r"\mathrm{{softplus}}({0})")


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, reverting to x where beta*x > threshold (PyTorch's semantics)."""
    if beta <= 0:
        raise ValueError(f"softplus: beta must be > 0, got {beta}")
    return apply(_softplus_prim, _as_input(x), beta=_number("softplus", "beta", beta),
                 threshold=_number("softplus", "threshold", threshold))


# --- softmax and log-softmax --------------------------------------------------------------

# x is always an ndarray here; its methods skip np.max/np.sum's dispatch (~1 us each, small x).
# An empty x gives an empty result, as in PyTorch (NumPy's maximum of nothing is an error).

def _softmax(x, axis):
    if x.size == 0:
        return np.empty_like(x)
    if x.ndim == 0:  # one class: probability 1 (PyTorch's softmax of a 0-d tensor)
        return np.ones_like(x)
    with _quiet():  # e^(x - max) of a hopeless class, and its share of the sum, may be 0
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis):
    if x.size == 0:
        return np.empty_like(x)
    if x.ndim == 0:
        return np.zeros_like(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    with _quiet():
        shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def _softmax_vjp(g, ans, axis):
    if np.ndim(ans) == 0:
        return g * 0  # softmax of one class is constant
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


def _log_softmax_vjp(g, ans, x, axis):
    if np.ndim(ans) == 0:
        return g * 0
    return g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)


_softmax_prim = define(
    Formula(
        name="softmax", title="Softmax",
        definition=r"s_i = \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_{k=1}^{n} e^{x_k}}",
        derivative=r"\frac{\partial s_i}{\partial x_j} = s_i\,(\delta_{ij} - s_j)",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{softmax}(f(w))_i = s_i \Bigl("
                   r"\frac{\partial f_i(w)}{\partial w} - \sum_{j} s_j\,"
                   r"\frac{\partial f_j(w)}{\partial w}\Bigr)",
        definition_text="s_i = softmax(x)_i = e^(x_i) / Σ_k e^(x_k)",
        derivative_text="∂s_i/∂x_j = s_i·(δ_ij − s_j)",
        chain_rule_text="∂/∂w softmax(f(w))_i = s_i·(∂f_i(w)/∂w − Σ_j s_j·∂f_j(w)/∂w)",
        sympy=("exp(x[i])/Sum(exp(x[k]), (k, 1, n))",
               "f*(KroneckerDelta(i, j) - exp(x[j])/Sum(exp(x[k]), (k, 1, n)))"),
        wrt="x[j]",
    ),
    _softmax, lambda g, ans, x, axis: _softmax_vjp(g, ans, axis),
    latex=r"\mathrm{{softmax}}({0})")

_log_softmax_prim = define(
    Formula(
        name="log_softmax", title="Log-softmax",
        definition=r"\ell_i = \log \mathrm{softmax}(x)_i = x_i - \log\sum_{k=1}^{n} e^{x_k}",
        derivative=r"\frac{\partial \ell_i}{\partial x_j} = \delta_{ij} - \mathrm{softmax}(x)_j",
        chain_rule=r"\frac{\partial}{\partial w}\log\mathrm{softmax}(f(w))_i = "
                   r"\frac{\partial f_i(w)}{\partial w} - \sum_j \mathrm{softmax}(f(w))_j\,"
                   r"\frac{\partial f_j(w)}{\partial w}",
        definition_text="ℓ_i = log softmax(x)_i = x_i − log Σ_k e^(x_k)",
        derivative_text="∂ℓ_i/∂x_j = δ_ij − softmax(x)_j",
        chain_rule_text="∂/∂w log softmax(f(w))_i = ∂f_i(w)/∂w − Σ_j softmax(f(w))_j·∂f_j(w)/∂w",
        sympy=("x[i] - log(Sum(exp(x[k]), (k, 1, n)))",
               "KroneckerDelta(i, j) - exp(x[j])/Sum(exp(x[k]), (k, 1, n))"),
        wrt="x[j]",
    ),
    _log_softmax, _log_softmax_vjp,
    latex=r"\log\mathrm{{softmax}}({0})")


def _check_axis(x: Any, axis: int, name: str) -> int:
    ndim = np.ndim(x.data if isinstance(x, Tensor) else x)
    if ndim == 0:  # a scalar is one class: axis 0 or -1, as PyTorch allows for a 0-d tensor
        if not isinstance(axis, (int, np.integer)) or axis not in (0, -1):
            raise ValueError(f"{name}: axis must be 0 or -1 for a 0-d input, got {axis!r}")
        return int(axis)
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis must be an int in [{-ndim}, {ndim}) for an input with "
                         f"{ndim} dimensions, got {axis!r}")
    return int(axis)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """e^x / sum(e^x) along ``axis``, shifted by the maximum so large inputs cannot overflow."""
    x = _as_input(x)
    return apply(_softmax_prim, x, axis=_check_axis(x, axis, "softmax"))


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``: finite for any finite input (no log of 0)."""
    x = _as_input(x)
    return apply(_log_softmax_prim, x, axis=_check_axis(x, axis, "log_softmax"))


# --- PyTorch's other activations (issue 12) -------------------------------------------------
# Each VJP is computed from the input, in plain NumPy calls that chainrule also implements for
# Tensors (no in-place writes), so the same rule runs when the backward pass is recorded.
# sigma(x) is written exp(-log(1 + e^-x)) there: one stable expression, no masked writes.

def _sig(x):
    """sigma(x) = e^(-softplus(-x)): finite for any x, in x's dtype, without writes."""
    return np.exp(-np.logaddexp(0, -x))


def _logsigmoid(x):
    with _quiet():  # log sigma(x) = min(x, 0) - log(1 + e^-|x|)
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


_logsigmoid_prim = define(
    Formula(
        name="logsigmoid", title="Log-sigmoid",
        definition=r"\log\sigma(x) = -\log\bigl(1 + e^{-x}\bigr)",
        derivative=r"\frac{\partial}{\partial x}\log\sigma(x) = 1 - \sigma(x) = \sigma(-x)",
        chain_rule=r"\frac{\partial}{\partial w}\log\sigma(f(w)) = \sigma(-f(w))\,"
                   r"\frac{\partial f(w)}{\partial w}",
        definition_text="log σ(x) = −log(1 + e^(−x))",
        derivative_text="∂/∂x log σ(x) = 1 − σ(x) = σ(−x)",
        chain_rule_text="∂/∂w log σ(f(w)) = σ(−f(w))·∂f(w)/∂w",
        sympy=("-log(1 + exp(-x))", "1/(1 + exp(x))"),
        note="PyTorch's logsigmoid. Computed as min(x, 0) − log(1 + e^(−|x|)); the derivative "
             "as σ(−x), never 1 − σ(x) (which cancels to 0 for large x).",
    ),
    _logsigmoid, lambda g, ans, x: g * _sig(-x), latex=r"\log\sigma({0})")


def logsigmoid(x: Any) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x (PyTorch's ``F.logsigmoid``).

    Any shape and float dtype (integers become float64); the result has x's shape and dtype.
    """
    return apply(_logsigmoid_prim, _as_input(x))


def _silu_vjp(g, ans, x):
    # d/dx x sigma(x) = sigma(x) (1 + x sigma(-x)); sigma(-x) in place of 1 - sigma(x)
    return g * (_sig(x) * (1 + x * _sig(-x)))


_silu_prim = define(
    Formula(
        name="silu", title="SiLU (swish)",
        definition=r"\mathrm{SiLU}(x) = x\,\sigma(x) = \frac{x}{1 + e^{-x}}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{SiLU}(x) = \sigma(x)\bigl(1 + x\,"
                   r"(1 - \sigma(x))\bigr)",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{SiLU}(f(w)) = \sigma(f(w))\bigl(1 + f(w)"
                   r"\,(1 - \sigma(f(w)))\bigr)\,\frac{\partial f(w)}{\partial w}",
        definition_text="SiLU(x) = x·σ(x) = x / (1 + e^(−x))",
        derivative_text="∂/∂x SiLU(x) = σ(x)·(1 + x·(1 − σ(x)))",
        chain_rule_text="∂/∂w SiLU(f(w)) = σ(f(w))·(1 + f(w)·(1 − σ(f(w))))·∂f(w)/∂w",
        sympy=("x/(1 + exp(-x))", "(1 + x/(1 + exp(x)))/(1 + exp(-x))"),
        note="PyTorch's silu (Elfwing et al. 2018; Ramachandran et al.'s swish with β = 1).",
    ),
    lambda x: x * _sigmoid(x), _silu_vjp, latex=r"\mathrm{{SiLU}}({0})")


def silu(x: Any) -> Tensor:
    """x * sigmoid(x) (PyTorch's ``F.silu``); any shape, x's dtype."""
    return apply(_silu_prim, _as_input(x))


# SELU's constants (Klambauer et al. 2017, and PyTorch's): alpha and the scale lambda.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    with _quiet():
        return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))


_selu_prim = define(
    Formula(
        name="selu", title="SELU",
        definition=r"\mathrm{SELU}(x) = \lambda \begin{cases} x & x > 0 \\ \alpha\,(e^{x} - 1) & "
                   r"\text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{SELU}(x) = \lambda \begin{cases} 1 & "
                   r"x > 0 \\ \alpha\,e^{x} & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{SELU}(f(w)) = \lambda \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & f(w) > 0 \\ \alpha\,e^{f(w)}\,"
                   r"\frac{\partial f(w)}{\partial w} & \text{else} \end{cases}",
        definition_text="SELU(x) = λ·x if x > 0, else λ·α·(e^x − 1)",
        derivative_text="∂/∂x SELU(x) = λ if x > 0, else λ·α·e^x",
        chain_rule_text="∂/∂w SELU(f(w)) = λ·∂f(w)/∂w if f(w) > 0, else λ·α·e^f(w)·∂f(w)/∂w",
        sympy=("Piecewise((1.0507009873554805*x, x > 0), "
               "(1.0507009873554805*1.6732632423543772*(exp(x) - 1), True))",
               "Piecewise((1.0507009873554805, x > 0), "
               "(1.0507009873554805*1.6732632423543772*exp(x), True))"),
        note="α ≈ 1.6733 and λ ≈ 1.0507 (Klambauer et al. 2017, PyTorch's constants). The "
             "derivative is taken from x, not from SELU(x) + λα (which cancels); at 0 it is λα, "
             "as PyTorch.",
    ),
    _selu, lambda g, ans, x: g * np.where(x > 0, _SELU_SCALE,
                                           (_SELU_SCALE * _SELU_ALPHA) * np.exp(np.minimum(x, 0))),
    latex=r"\mathrm{{SELU}}({0})")


def selu(x: Any) -> Tensor:
    """Scaled ELU with PyTorch's fixed alpha and scale (``F.selu``); any shape, x's dtype."""
    return apply(_selu_prim, _as_input(x))


def _celu(x, alpha):
    with _quiet():
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha))


_celu_prim = define(
    Formula(
        name="celu", title="CELU",
        definition=r"\mathrm{CELU}(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{x/\alpha} - 1) & "
                   r"\text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{CELU}(x) = \begin{cases} 1 & x > 0 \\ "
                   r"e^{x/\alpha} & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{CELU}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & f(w) > 0 \\ e^{f(w)/\alpha}\,"
                   r"\frac{\partial f(w)}{\partial w} & \text{else} \end{cases}",
        definition_text="CELU(x) = x if x > 0, else α·(e^(x/α) − 1)",
        derivative_text="∂/∂x CELU(x) = 1 if x > 0, else e^(x/α)",
        chain_rule_text="∂/∂w CELU(f(w)) = ∂f(w)/∂w if f(w) > 0, else e^(f(w)/α)·∂f(w)/∂w",
        sympy=("Piecewise((x, x > 0), (alpha*(exp(x/alpha) - 1), True))",
               "Piecewise((1, x > 0), (exp(x/alpha), True))"),
        symbols={"alpha": "positive"},
        note="Barron 2017, PyTorch's celu. The derivative e^(x/α) is taken from x (no "
             "cancellation); at 0 both branches give 1.",
    ),
    _celu, lambda g, ans, x, alpha: g * np.where(x > 0, 1, np.exp(np.minimum(x, 0) / alpha)),
    latex=r"\mathrm{{CELU}}({0})")


def celu(x: Any, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha * (e^(x/alpha) - 1) (PyTorch's ``F.celu``). ValueError if
    alpha is 0."""
    alpha = _number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must be nonzero, got 0")
    return apply(_celu_prim, _as_input(x), alpha=alpha)


def _mish(x):
    with _quiet():  # softplus(-1e4) = 0 is the intended value
        return x * np.tanh(np.logaddexp(0, x))


def _mish_vjp(g, ans, x):
    t = np.tanh(np.logaddexp(0, x))  # tanh(softplus(x))
    return g * (t + x * _sig(x) * (1 - t * t))


_mish_prim = define(
    Formula(
        name="mish", title="Mish",
        definition=r"\mathrm{Mish}(x) = x\,\tanh\bigl(\mathrm{softplus}(x)\bigr)",
        derivative=r"\frac{\partial}{\partial x}\mathrm{Mish}(x) = \tanh(s) + x\,\sigma(x)\,"
                   r"\bigl(1 - \tanh^2(s)\bigr), \quad s = \log(1 + e^{x})",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{Mish}(f(w)) = \Bigl(\tanh(s) + f(w)\,"
                   r"\sigma(f(w))\bigl(1 - \tanh^2(s)\bigr)\Bigr)\frac{\partial f(w)}{\partial w}, "
                   r"\quad s = \log(1 + e^{f(w)})",
        definition_text="Mish(x) = x·tanh(softplus(x))",
        derivative_text="∂/∂x Mish(x) = tanh(s) + x·σ(x)·(1 − tanh²(s)),  s = log(1 + e^x)",
        chain_rule_text="∂/∂w Mish(f(w)) = (tanh(s) + f(w)·σ(f(w))·(1 − tanh²(s)))·∂f(w)/∂w",
        sympy=("x*tanh(log(1 + exp(x)))",
               "tanh(log(1 + exp(x))) + x*(1 - tanh(log(1 + exp(x)))**2)/(1 + exp(-x))"),
        note="Misra 2019, PyTorch's mish; softplus computed as logaddexp(0, x) (no overflow).",
    ),
    _mish, _mish_vjp, latex=r"\mathrm{{Mish}}({0})")


def mish(x: Any) -> Tensor:
    """x * tanh(softplus(x)) (PyTorch's ``F.mish``); any shape, x's dtype."""
    return apply(_mish_prim, _as_input(x))


_hardswish_prim = define(
    Formula(
        name="hardswish", title="Hard swish",
        definition=r"\mathrm{Hardswish}(x) = \begin{cases} 0 & x \le -3 \\ x & x \ge 3 \\ "
                   r"\frac{x\,(x + 3)}{6} & \text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{Hardswish}(x) = \begin{cases} 0 & "
                   r"x \le -3 \\ 1 & x \ge 3 \\ \frac{x}{3} + \frac{1}{2} & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{Hardswish}(f(w)) = "
                   r"\mathrm{Hardswish}'(f(w))\,\frac{\partial f(w)}{\partial w}",
        definition_text="Hardswish(x) = 0 if x ≤ −3, x if x ≥ 3, else x·(x + 3)/6",
        derivative_text="∂/∂x Hardswish(x) = 0 if x ≤ −3, 1 if x ≥ 3, else x/3 + 1/2",
        chain_rule_text="∂/∂w Hardswish(f(w)) = Hardswish′(f(w))·∂f(w)/∂w",
        sympy=("Piecewise((0, x <= -3), (x, x >= 3), (x*(x + 3)/6, True))",
               "Piecewise((0, x <= -3), (1, x >= 3), (x/3 + 1/2, True))"),
        note="Howard et al. 2019 (MobileNetV3), PyTorch's hardswish; at the kinks ±3 the "
             "gradient is PyTorch's (0 at −3, 1 at 3).",
    ),
    lambda x: x * np.clip(x + 3, 0, 6) / 6,
    lambda g, ans, x: g * np.where(x <= -3, 0, np.where(x >= 3, 1, x / 3 + 0.5)),
    latex=r"\mathrm{{Hardswish}}({0})")


def hardswish(x: Any) -> Tensor:
    """x * relu6(x + 3) / 6 (PyTorch's ``F.hardswish``); any shape, x's dtype."""
    return apply(_hardswish_prim, _as_input(x))


_hardsigmoid_prim = define(
    Formula(
        name="hardsigmoid", title="Hard sigmoid",
        definition=r"\mathrm{Hardsigmoid}(x) = \begin{cases} 0 & x \le -3 \\ 1 & x \ge 3 \\ "
                   r"\frac{x}{6} + \frac{1}{2} & \text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{Hardsigmoid}(x) = \begin{cases} "
                   r"\frac{1}{6} & -3 < x < 3 \\ 0 & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{Hardsigmoid}(f(w)) = \begin{cases} "
                   r"\frac{1}{6}\frac{\partial f(w)}{\partial w} & -3 < f(w) < 3 \\ 0 & "
                   r"\text{else} \end{cases}",
        definition_text="Hardsigmoid(x) = 0 if x ≤ −3, 1 if x ≥ 3, else x/6 + 1/2",
        derivative_text="∂/∂x Hardsigmoid(x) = 1/6 if −3 < x < 3, else 0",
        chain_rule_text="∂/∂w Hardsigmoid(f(w)) = ∂f(w)/∂w / 6 if −3 < f(w) < 3, else 0",
        sympy=("Piecewise((0, x <= -3), (1, x >= 3), (x/6 + 1/2, True))",
               "Piecewise((0, x <= -3), (0, x >= 3), (1/6, True))"),
        note="PyTorch's hardsigmoid (relu6(x + 3)/6); the gradient at ±3 is 0, as PyTorch.",
    ),
    lambda x: np.clip(x + 3, 0, 6) / 6,
    lambda g, ans, x: np.where(np.logical_and(x > -3, x < 3), g / 6, 0),
    latex=r"\mathrm{{Hardsigmoid}}({0})")


def hardsigmoid(x: Any) -> Tensor:
    """relu6(x + 3) / 6 (PyTorch's ``F.hardsigmoid``); any shape, x's dtype."""
    return apply(_hardsigmoid_prim, _as_input(x))


def _clamp_vjp(g, ans, x, min_val, max_val):
    # PyTorch's hardtanh: no gradient on the bounds themselves (clip passes it there)
    return np.where(np.logical_and(x > min_val, x < max_val), g, 0)


_hardtanh_prim = define(
    Formula(
        name="hardtanh", title="Hard tanh",
        definition=r"\mathrm{Hardtanh}(x) = \begin{cases} a & x \le a \\ b & x \ge b \\ x & "
                   r"\text{else} \end{cases}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{Hardtanh}(x) = \begin{cases} 1 & "
                   r"a < x < b \\ 0 & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{Hardtanh}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & a < f(w) < b \\ 0 & \text{else} \end{cases}",
        definition_text="Hardtanh(x) = a if x ≤ a, b if x ≥ b, else x   (a = min_val, b = max_val)",
        derivative_text="∂/∂x Hardtanh(x) = 1 if a < x < b, else 0",
        chain_rule_text="∂/∂w Hardtanh(f(w)) = ∂f(w)/∂w if a < f(w) < b, else 0",
        sympy=("Piecewise((a, x <= a), (b, x >= b), (x, True))",
               "Piecewise((0, x <= a), (0, x >= b), (1, True))"),
        note="PyTorch's hardtanh (min_val a = −1, max_val b = 1 by default); the gradient on the "
             "bounds is 0, as PyTorch (chainrule.clip, like torch.clamp, passes it there).",
    ),
    lambda x, min_val, max_val: np.clip(x, min_val, max_val), _clamp_vjp,
    latex=r"\mathrm{{Hardtanh}}({0})")


def hardtanh(x: Any, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val], no gradient on the bounds (PyTorch's ``F.hardtanh``).
    ValueError if min_val > max_val."""
    lo, hi = _number("hardtanh", "min_val", min_val), _number("hardtanh", "max_val", max_val)
    if lo > hi:
        raise ValueError(f"hardtanh: min_val ({lo}) must not exceed max_val ({hi})")
    return apply(_hardtanh_prim, _as_input(x), min_val=lo, max_val=hi)


_relu6_prim = define(
    Formula(
        name="relu6", title="ReLU6",
        definition=r"\mathrm{ReLU6}(x) = \min(\max(x, 0), 6)",
        derivative=r"\frac{\partial}{\partial x}\mathrm{ReLU6}(x) = \begin{cases} 1 & 0 < x < 6 "
                   r"\\ 0 & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{ReLU6}(f(w)) = \begin{cases} "
                   r"\frac{\partial f(w)}{\partial w} & 0 < f(w) < 6 \\ 0 & \text{else} \end{cases}",
        definition_text="ReLU6(x) = min(max(x, 0), 6)",
        derivative_text="∂/∂x ReLU6(x) = 1 if 0 < x < 6, else 0",
        chain_rule_text="∂/∂w ReLU6(f(w)) = ∂f(w)/∂w if 0 < f(w) < 6, else 0",
        sympy=("Piecewise((0, x <= 0), (6, x >= 6), (x, True))",
               "Piecewise((0, x <= 0), (0, x >= 6), (1, True))"),
        note="PyTorch's relu6 (hardtanh on [0, 6]): the gradient at 0 and 6 is 0.",
    ),
    lambda x: np.clip(x, 0, 6), lambda g, ans, x: _clamp_vjp(g, ans, x, 0, 6),
    latex=r"\mathrm{{ReLU6}}({0})")


def relu6(x: Any) -> Tensor:
    """min(max(x, 0), 6) (PyTorch's ``F.relu6``); any shape, x's dtype."""
    return apply(_relu6_prim, _as_input(x))


def _softsign_vjp(g, ans, x):
    d = 1 + np.abs(x)
    return g / (d * d)


_softsign_prim = define(
    Formula(
        name="softsign", title="Softsign",
        definition=r"\mathrm{softsign}(x) = \frac{x}{1 + \lvert x \rvert}",
        derivative=r"\frac{\partial}{\partial x}\mathrm{softsign}(x) = "
                   r"\frac{1}{(1 + \lvert x \rvert)^2}",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{softsign}(f(w)) = "
                   r"\frac{1}{(1 + \lvert f(w) \rvert)^2}\,\frac{\partial f(w)}{\partial w}",
        definition_text="softsign(x) = x / (1 + |x|)",
        derivative_text="∂/∂x softsign(x) = 1 / (1 + |x|)²",
        chain_rule_text="∂/∂w softsign(f(w)) = ∂f(w)/∂w / (1 + |f(w)|)²",
        sympy=("Piecewise((x/(1 + x), x >= 0), (x/(1 - x), True))",
               "Piecewise((1/(1 + x)**2, x >= 0), (1/(1 - x)**2, True))"),
        note="PyTorch's softsign.",
    ),
    lambda x: x / (1 + np.abs(x)), _softsign_vjp, latex=r"\mathrm{{softsign}}({0})")


def softsign(x: Any) -> Tensor:
    """x / (1 + |x|) (PyTorch's ``F.softsign``); any shape, x's dtype."""
    return apply(_softsign_prim, _as_input(x))


_softmin_prim = define(
    Formula(
        name="softmin", title="Softmin",
        definition=r"s_i = \mathrm{softmin}(x)_i = \frac{e^{-x_i}}{\sum_{k=1}^{n} e^{-x_k}}",
        derivative=r"\frac{\partial s_i}{\partial x_j} = -s_i\,(\delta_{ij} - s_j)",
        chain_rule=r"\frac{\partial}{\partial w}\mathrm{softmin}(f(w))_i = -s_i \Bigl("
                   r"\frac{\partial f_i(w)}{\partial w} - \sum_{j} s_j\,"
                   r"\frac{\partial f_j(w)}{\partial w}\Bigr)",
        definition_text="s_i = softmin(x)_i = e^(−x_i) / Σ_k e^(−x_k)",
        derivative_text="∂s_i/∂x_j = −s_i·(δ_ij − s_j)",
        chain_rule_text="∂/∂w softmin(f(w))_i = −s_i·(∂f_i(w)/∂w − Σ_j s_j·∂f_j(w)/∂w)",
        sympy=("exp(-x[i])/Sum(exp(-x[k]), (k, 1, n))",
               "-f*(KroneckerDelta(i, j) - exp(-x[j])/Sum(exp(-x[k]), (k, 1, n)))"),
        wrt="x[j]",
        note="softmax(−x): PyTorch's softmin. Shifted by the minimum, so no input overflows.",
    ),
    lambda x, axis: _softmax(-x, axis), lambda g, ans, x, axis: -_softmax_vjp(g, ans, axis),
    latex=r"\mathrm{{softmin}}({0})")


def softmin(x: Any, axis: int = -1) -> Tensor:
    """softmax(-x) along ``axis`` (PyTorch's ``F.softmin`` with dim=axis); ValueError for a 0-d
    input or an axis out of range."""
    x = _as_input(x)
    return apply(_softmin_prim, x, axis=_check_axis(x, axis, "softmin"))
