"""Elementwise primitives beyond arithmetic: trigonometry, logarithms, rounding, two-argument maps.

Each is one NumPy ufunc (or NumPy-equivalent function) and its VJPs, registered in the same
table as ``ops.py`` (see its docstring for the VJP contract). The VJPs are written in plain
NumPy on their arguments — ufuncs, operators and functions that chainrule also implements for
Tensors — and never write into an array, so that the same rules run on Tensors when the
backward pass is itself recorded (``create_graph=True``).

Each derivative is computed from the *input* wherever the output would lose precision: the
derivative of expm1 is e^x, not expm1(x) + 1 (which is 0 for x < -37 in float64), and the
derivatives with a square root of 1 - x^2 factor it as (1 - x)(1 + x). Rounding functions
(sign, floor, ceil, round, trunc) have derivative 0 wherever it exists, and their VJP is 0
everywhere, as in PyTorch.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from chainrule.ops import _shape, primitive, unbroadcast

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _zero(g, ans, a, *args, **kwargs):
    """The VJP of a piecewise-constant function: 0, in the gradient's dtype and shape."""
    return np.zeros_like(g)


# --- trigonometric and hyperbolic -----------------------------------------------------------

sin = primitive("sin", np.sin, lambda g, ans, a: g * np.cos(a), latex=r"\sin {0}")
cos = primitive("cos", np.cos, lambda g, ans, a: -g * np.sin(a), latex=r"\cos {0}")
# 1 + tan^2 from the output: a sum of positives, no cancellation.
tan = primitive("tan", np.tan, lambda g, ans, a: g * (1 + ans * ans), latex=r"\tan {0}")
# 1 - x^2 as (1 - x)(1 + x): exact near |x| = 1, where 1 - x*x loses the last digits.
arcsin = primitive("arcsin", np.arcsin, lambda g, ans, a: g / np.sqrt((1 - a) * (1 + a)),
                   latex=r"\arcsin {0}")
arccos = primitive("arccos", np.arccos, lambda g, ans, a: -g / np.sqrt((1 - a) * (1 + a)),
                   latex=r"\arccos {0}")
arctan = primitive("arctan", np.arctan, lambda g, ans, a: g / (1 + a * a), latex=r"\arctan {0}")
sinh = primitive("sinh", np.sinh, lambda g, ans, a: g * np.cosh(a), latex=r"\sinh {0}")
cosh = primitive("cosh", np.cosh, lambda g, ans, a: g * np.sinh(a), latex=r"\cosh {0}")
# sqrt(x^2 + 1) as hypot(x, 1): x*x overflows past 1e154, hypot does not.
arcsinh = primitive("arcsinh", np.arcsinh, lambda g, ans, a: g / np.hypot(a, 1),
                    latex=r"\operatorname{{arsinh}} {0}")
# sqrt(x^2 - 1) as sqrt(x - 1) sqrt(x + 1): neither overflow nor cancellation.
arccosh = primitive("arccosh", np.arccosh,
                    lambda g, ans, a: g / (np.sqrt(a - 1) * np.sqrt(a + 1)),
                    latex=r"\operatorname{{arcosh}} {0}")
arctanh = primitive("arctanh", np.arctanh, lambda g, ans, a: g / ((1 - a) * (1 + a)),
                    latex=r"\operatorname{{artanh}} {0}")

# --- exponentials and logarithms --------------------------------------------------------------

exp2 = primitive("exp2", np.exp2, lambda g, ans, a: g * ans * _LN2, latex=r"2^{{{0}}}")
log2 = primitive("log2", np.log2, lambda g, ans, a: g / (a * _LN2), latex=r"\log_2 {0}")
log10 = primitive("log10", np.log10, lambda g, ans, a: g / (a * _LN10), latex=r"\log_{{10}} {0}")
# e^x from the input: expm1(x) + 1 cancels to 0 for x < -37 (float64) or x < -17 (float32).
expm1 = primitive("expm1", np.expm1, lambda g, ans, a: g * np.exp(a), latex=r"(e^{{{0}}} - 1)")
log1p = primitive("log1p", np.log1p, lambda g, ans, a: g / (1 + a), latex=r"\log(1 + {0})")
square = primitive("square", np.square, lambda g, ans, a: g * (2 * a), latex="{0}^2")
reciprocal = primitive("reciprocal", np.reciprocal, lambda g, ans, a: -g * (ans * ans),
                       latex=r"\frac{{1}}{{{0}}}")


@functools.cache
def _erf_impl() -> Any:
    """SciPy's vectorised erf when installed (imported on first use: it is slow to import);
    else math.erf element by element, which is as accurate. NumPy has no erf."""
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - SciPy is optional
        return np.vectorize(math.erf, otypes=[np.float64])
    return erf


def _erf(a):
    a = np.asarray(a)
    out = np.asarray(_erf_impl()(a))
    return out.astype(a.dtype, copy=False) if a.dtype.kind == "f" else out


# d/dx erf(x) = 2/sqrt(pi) e^(-x^2) (Abramowitz & Stegun 7.1.19).
erf = primitive("erf", _erf, lambda g, ans, a: g * (_TWO_OVER_SQRT_PI * np.exp(-(a * a))),
                latex=r"\operatorname{{erf}} {0}")

# --- piecewise constant: zero gradient, as PyTorch ---------------------------------------------

sign = primitive("sign", np.sign, _zero, latex=r"\operatorname{{sign}} {0}")
floor = primitive("floor", np.floor, _zero, latex=r"\lfloor {0} \rfloor")
ceil = primitive("ceil", np.ceil, _zero, latex=r"\lceil {0} \rceil")
trunc = primitive("trunc", np.trunc, _zero, latex=r"\operatorname{{trunc}} {0}")
round_ = primitive("round", lambda a, decimals=0: np.round(a, decimals), _zero,
                   latex=r"\operatorname{{round}} {0}")

# --- two arguments, broadcasting ------------------------------------------------------------------


def _arctan2_vjp_y(g, ans, y, x):
    r = np.hypot(y, x)  # x^2 + y^2 as hypot^2: no overflow of the squares
    return unbroadcast(g * ((x / r) / r), _shape(y))


def _arctan2_vjp_x(g, ans, y, x):
    r = np.hypot(y, x)
    return unbroadcast(-g * ((y / r) / r), _shape(x))


arctan2 = primitive("arctan2", np.arctan2, _arctan2_vjp_y, _arctan2_vjp_x,
                    latex=r"\operatorname{{atan2}}({0}, {1})")
hypot = primitive("hypot", np.hypot,
                  lambda g, ans, a, b: unbroadcast(g * (a / ans), _shape(a)),
                  lambda g, ans, a, b: unbroadcast(g * (b / ans), _shape(b)),
                  latex=r"\sqrt{{{0}^2 + {1}^2}}")
# a mod b = a - b floor(a / b): d/da = 1, d/db = -floor(a / b) (PyTorch's remainder).
mod = primitive("mod", np.mod,
                lambda g, ans, a, b: unbroadcast(g, _shape(a)),
                lambda g, ans, a, b: unbroadcast(-g * np.floor(a / b), _shape(b)),
                latex=r"{0} \bmod {1}")
# fmod(a, b) = a - b trunc(a / b): d/db = -trunc(a / b) (PyTorch's fmod).
fmod = primitive("fmod", np.fmod,
                 lambda g, ans, a, b: unbroadcast(g, _shape(a)),
                 lambda g, ans, a, b: unbroadcast(-g * np.trunc(a / b), _shape(b)),
                 latex=r"\operatorname{{fmod}}({0}, {1})")


def _fmax_mask(a, b):
    # PyTorch's fmax: the gradient goes to a where a >= b or b is NaN (ties: all to a), else to b.
    return np.logical_or(np.greater_equal(a, b), np.isnan(b))


def _fmin_mask(a, b):
    return np.logical_or(np.less_equal(a, b), np.isnan(b))


fmax = primitive("fmax", np.fmax,
                 lambda g, ans, a, b: unbroadcast(np.where(_fmax_mask(a, b), g, 0), _shape(a)),
                 lambda g, ans, a, b: unbroadcast(np.where(_fmax_mask(a, b), 0, g), _shape(b)),
                 latex=r"\operatorname{{fmax}}({0}, {1})")
fmin = primitive("fmin", np.fmin,
                 lambda g, ans, a, b: unbroadcast(np.where(_fmin_mask(a, b), g, 0), _shape(a)),
                 lambda g, ans, a, b: unbroadcast(np.where(_fmin_mask(a, b), 0, g), _shape(b)),
                 latex=r"\operatorname{{fmin}}({0}, {1})")
# log(e^a + e^b): the weights e^(a - ans), e^(b - ans) are at most 1, never overflow.
logaddexp = primitive("logaddexp", np.logaddexp,
                      lambda g, ans, a, b: unbroadcast(g * np.exp(a - ans), _shape(a)),
                      lambda g, ans, a, b: unbroadcast(g * np.exp(b - ans), _shape(b)),
                      latex=r"\log(e^{{{0}}} + e^{{{1}}})")
