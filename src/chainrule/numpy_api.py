"""NumPy's everyday array functions on Tensors, differentiable, under NumPy's names.

``cr.sin(x)``, ``cr.var(x, axis=0, ddof=1)``, ``cr.einsum("ij,jk->ik", a, b)``, ... take and
return what NumPy's do (axis, keepdims, ddof, broadcasting, 0-d inputs, negative axes), with
Tensors in and out. Each function is one primitive (``ops_elementwise``, ``ops_reduce``,
``ops_linalg``) or a composition of existing ones, as tinygrad builds everything from few
primitives: ``var`` is a mean and a sum, ``tensordot`` an einsum, ``sort`` a gather,
``tile`` a broadcast. Compositions are chosen to be numerically stable (``var`` subtracts the
mean before squaring; it never uses E[x^2] - E[x]^2).

Each function is also what NumPy's own function does on a Tensor (``np.sin(t)``): it is
registered with ``@implements(np.sin)`` in ``chainrule.numpy_dispatch``.

Non-differentiable functions (argmax, argmin, any, all, isfinite, isnan, isinf, the logical
ufuncs) return Tensors that carry no gradient; piecewise-constant ones (sign, floor, ceil,
round, trunc) are recorded and pass a zero gradient, as in PyTorch.
"""
from __future__ import annotations

import builtins
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule import ops
from chainrule import ops_elementwise as ew
from chainrule import ops_linalg as la
from chainrule import ops_reduce as rd
from chainrule.numpy_dispatch import implements
from chainrule.tensor import Tensor, apply
from chainrule.tensor import concatenate as _concatenate
from chainrule.tensor import mean as _mean
from chainrule.tensor import stack as _stack
from chainrule.tensor import sum as _sum
from chainrule.tensor import where as _where

# --- arguments ----------------------------------------------------------------------------------


def _arg(x: Any) -> Any:
    """An operand for ``apply``: Tensors and arrays as they are, scalars kept weak (they never
    change a float32 tensor's dtype); a list or tuple holding Tensors is stacked differentiably
    (HIPS autograd's behaviour), so its gradient is never dropped."""
    if isinstance(x, (list, tuple)):
        if _holds_tensor(x):
            return _stack([_arg(v) for v in x])
        return np.asarray(x)
    return x


def _holds_tensor(x: Any) -> bool:
    if isinstance(x, Tensor):
        return True
    return isinstance(x, (list, tuple)) and builtins.any(_holds_tensor(v) for v in x)


def _tensor(x: Any) -> Tensor:
    """``x`` as a Tensor (a constant one unless it already is a Tensor)."""
    x = _arg(x)
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))


def _data(x: Any) -> np.ndarray:
    return _tensor(x).data


def _axis(axis: Any) -> Any:
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else axis


def _norm_axis(axis: Any, ndim: int, fn: str) -> int:
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{fn}: axis must be an int, got {type(axis).__name__}") from None
    if not -ndim <= a < builtins.max(ndim, 1):
        raise ValueError(f"{fn}: axis {a} is out of bounds for an input with {ndim} dimension(s)")
    return a % ndim if ndim else 0


def _no_out(fn: str, out: Any = None, dtype: Any = None) -> None:
    if out is not None:
        raise TypeError(f"{fn}: out= is not supported (a Tensor's result is always a new tensor)")
    if dtype is not None:
        raise TypeError(f"{fn}: dtype= is not supported; cast the input with .astype(dtype) first")


def _unary(prim: ops.Primitive):
    def fn(x: Any) -> Tensor:
        return apply(prim, _arg(x))
    return fn


def _binary(prim: ops.Primitive):
    def fn(x1: Any, x2: Any) -> Tensor:
        return apply(prim, _arg(x1), _arg(x2))
    return fn


def _define(name: str, prim: ops.Primitive, np_func: Any, make: Any, doc: str):
    fn = make(prim)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + f"\n\nNumPy's ``np.{np_func.__name__}``; a Tensor in, a Tensor out."
    implements(np_func)(fn)
    return fn


# --- elementwise: one primitive each -------------------------------------------------------------

sin = _define("sin", ew.sin, np.sin, _unary, "Sine, elementwise (radians). d/dx = cos x.")
cos = _define("cos", ew.cos, np.cos, _unary, "Cosine, elementwise. d/dx = -sin x.")
tan = _define("tan", ew.tan, np.tan, _unary, "Tangent, elementwise. d/dx = 1 + tan^2 x.")
arcsin = _define("arcsin", ew.arcsin, np.arcsin, _unary,
                 "Inverse sine on [-1, 1]. d/dx = 1 / sqrt((1 - x)(1 + x)).")
arccos = _define("arccos", ew.arccos, np.arccos, _unary,
                 "Inverse cosine on [-1, 1]. d/dx = -1 / sqrt((1 - x)(1 + x)).")
arctan = _define("arctan", ew.arctan, np.arctan, _unary, "Inverse tangent. d/dx = 1 / (1 + x^2).")
sinh = _define("sinh", ew.sinh, np.sinh, _unary, "Hyperbolic sine. d/dx = cosh x.")
cosh = _define("cosh", ew.cosh, np.cosh, _unary, "Hyperbolic cosine. d/dx = sinh x.")
arcsinh = _define("arcsinh", ew.arcsinh, np.arcsinh, _unary,
                  "Inverse hyperbolic sine. d/dx = 1 / hypot(x, 1).")
arccosh = _define("arccosh", ew.arccosh, np.arccosh, _unary,
                  "Inverse hyperbolic cosine on [1, inf). d/dx = 1 / (sqrt(x - 1) sqrt(x + 1)).")
arctanh = _define("arctanh", ew.arctanh, np.arctanh, _unary,
                  "Inverse hyperbolic tangent on (-1, 1). d/dx = 1 / ((1 - x)(1 + x)).")
exp2 = _define("exp2", ew.exp2, np.exp2, _unary, "2**x, elementwise. d/dx = 2**x log 2.")
log2 = _define("log2", ew.log2, np.log2, _unary, "Base-2 logarithm. d/dx = 1 / (x log 2).")
log10 = _define("log10", ew.log10, np.log10, _unary, "Base-10 logarithm. d/dx = 1 / (x log 10).")
expm1 = _define("expm1", ew.expm1, np.expm1, _unary,
                "e**x - 1, accurate near 0. d/dx = e**x, computed from x (no cancellation).")
log1p = _define("log1p", ew.log1p, np.log1p, _unary,
                "log(1 + x), accurate near 0. d/dx = 1 / (1 + x).")
square = _define("square", ew.square, np.square, _unary, "x**2, elementwise. d/dx = 2x.")
reciprocal = _define("reciprocal", ew.reciprocal, np.reciprocal, _unary,
                     "1/x, elementwise (for floats). d/dx = -1/x**2.")
sign = _define("sign", ew.sign, np.sign, _unary,
               "-1, 0 or 1 by the sign of x. Its gradient is 0 everywhere (PyTorch's sign).")
floor = _define("floor", ew.floor, np.floor, _unary,
                "The largest integer <= x, as a float. Gradient 0 everywhere (PyTorch's floor).")
ceil = _define("ceil", ew.ceil, np.ceil, _unary,
               "The smallest integer >= x, as a float. Gradient 0 everywhere (PyTorch's ceil).")
trunc = _define("trunc", ew.trunc, np.trunc, _unary,
                "x rounded towards 0. Gradient 0 everywhere (PyTorch's trunc).")
arctan2 = _define("arctan2", ew.arctan2, np.arctan2, _binary,
                  "The angle of the point (x2, x1) in radians, with broadcasting. "
                  "d/dx1 = x2 / (x1^2 + x2^2), d/dx2 = -x1 / (x1^2 + x2^2).")
hypot = _define("hypot", ew.hypot, np.hypot, _binary,
                "sqrt(x1^2 + x2^2) without overflow. d/dx1 = x1 / hypot.")
mod = _define("mod", ew.mod, np.mod, _binary,
              "x1 - x2 * floor(x1 / x2) (the sign of x2, Python's %). d/dx1 = 1, "
              "d/dx2 = -floor(x1 / x2) (PyTorch's remainder).")
remainder = mod
fmod = _define("fmod", ew.fmod, np.fmod, _binary,
               "x1 - x2 * trunc(x1 / x2) (the sign of x1, C's fmod). d/dx1 = 1, "
               "d/dx2 = -trunc(x1 / x2).")
fmax = _define("fmax", ew.fmax, np.fmax, _binary,
               "The larger of x1 and x2, ignoring NaNs. The gradient goes to x1 where "
               "x1 >= x2 (ties included) or x2 is NaN, else to x2, as torch.fmax "
               "(maximum splits ties equally).")
fmin = _define("fmin", ew.fmin, np.fmin, _binary,
               "The smaller of x1 and x2, ignoring NaNs; ties give the gradient to x1 "
               "(torch.fmin).")
logaddexp = _define("logaddexp", ew.logaddexp, np.logaddexp, _binary,
                    "log(e**x1 + e**x2) without overflow. d/dx1 = e**(x1 - result).")


def erf(x: Any) -> Tensor:
    """The error function 2/sqrt(pi) * integral_0^x e^(-t^2) dt (SciPy's erf when installed,
    else ``math.erf`` per element; NumPy has none). d/dx = 2/sqrt(pi) e^(-x^2).
    Matches ``scipy.special.erf`` and ``torch.erf``."""
    return apply(ew.erf, _arg(x))


@implements(np.round)
def round(a: Any, decimals: int = 0, out: Any = None) -> Tensor:  # noqa: A001 (NumPy's name)
    """``a`` rounded to ``decimals`` places, halves to even (NumPy's ``np.round``). Gradient 0
    everywhere, as ``torch.round``."""
    _no_out("round", out)
    return apply(ew.round_, _arg(a), decimals=operator.index(decimals))


@implements(np.tanh)
def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent (NumPy's ``np.tanh``): the same primitive as
    ``chainrule.functional.tanh``, whose formula and derivative 1 - tanh^2 it shares."""
    from chainrule.functional.activations import tanh as _tanh

    return _tanh(_arg(x))


@implements(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN -> ``nan``, +inf -> ``posinf`` (default: the dtype's largest), -inf -> ``neginf``
    (NumPy's semantics). The gradient is 1 where x is finite and 0 where it was replaced
    (``torch.nan_to_num``)."""
    t = _tensor(x)
    if t.dtype.kind != "f":
        return t
    values = t.data
    replaced = np.nan_to_num(values, copy=True, nan=nan, posinf=posinf, neginf=neginf)
    return _where(np.isfinite(values), t, replaced)


# --- not differentiable: results carry no gradient -------------------------------------------------


def _constant(values: Any) -> Tensor:
    return Tensor._wrap(np.asarray(values))


@implements(np.argmax)
def argmax(a: Any, axis: int | None = None, out: Any = None, *, keepdims: bool = False) -> Tensor:
    """Index of the first maximum (NumPy's ``np.argmax``); an integer tensor, no gradient."""
    _no_out("argmax", out)
    return _constant(np.argmax(_data(a), axis=axis, keepdims=keepdims))


@implements(np.argmin)
def argmin(a: Any, axis: int | None = None, out: Any = None, *, keepdims: bool = False) -> Tensor:
    """Index of the first minimum (NumPy's ``np.argmin``); an integer tensor, no gradient."""
    _no_out("argmin", out)
    return _constant(np.argmin(_data(a), axis=axis, keepdims=keepdims))


@implements(np.any)
def any(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether any element along ``axis`` is nonzero (``np.any``); a bool tensor, no gradient."""
    _no_out("any", out)
    return _constant(np.any(_data(a), axis=_axis(axis), keepdims=keepdims))


@implements(np.all)
def all(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether every element along ``axis`` is nonzero (``np.all``); a bool tensor, no gradient."""
    _no_out("all", out)
    return _constant(np.all(_data(a), axis=_axis(axis), keepdims=keepdims))


def _predicate(np_func: Any, text: str):
    def fn(*xs: Any) -> Tensor:
        return _constant(np_func(*(_data(x) for x in xs)))
    fn.__name__ = fn.__qualname__ = np_func.__name__
    fn.__doc__ = f"{text} (NumPy's ``np.{np_func.__name__}``); a bool tensor, no gradient."
    implements(np_func)(fn)
    return fn


isfinite = _predicate(np.isfinite, "True where x is neither infinite nor NaN")
isnan = _predicate(np.isnan, "True where x is NaN")
isinf = _predicate(np.isinf, "True where x is +inf or -inf")
logical_and = _predicate(np.logical_and, "x1 AND x2, elementwise")
logical_or = _predicate(np.logical_or, "x1 OR x2, elementwise")
logical_xor = _predicate(np.logical_xor, "x1 XOR x2, elementwise")
logical_not = _predicate(np.logical_not, "NOT x, elementwise")

# --- reductions and scans ---------------------------------------------------------------------------


@implements(np.prod)
def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
         keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (NumPy's ``np.prod``). The gradient of each element is the product
    of the others, computed without dividing where a group holds zeros (exact there)."""
    _no_out("prod", out, dtype)
    return apply(rd.prod, _arg(a), axis=_axis(axis), keepdims=keepdims)


@implements(np.cumsum)
def cumsum(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Tensor:
    """Cumulative sum along ``axis`` (flattened when None), NumPy's ``np.cumsum``."""
    _no_out("cumsum", out, dtype)
    return apply(rd.cumsum, _arg(a), axis=axis)


@implements(np.cumprod)
def cumprod(a: Any, axis: int | None = None, dtype: Any = None, out: Any = None) -> Tensor:
    """Cumulative product along ``axis`` (flattened when None), NumPy's ``np.cumprod``; exact
    gradients also where the input holds zeros (as ``torch.cumprod``)."""
    _no_out("cumprod", out, dtype)
    return apply(rd.cumprod, _arg(a), axis=axis)


def logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(a))) over ``axis``, shifted by the maximum so nothing overflows
    (``scipy.special.logsumexp``, ``torch.logsumexp``). Its gradient is softmax(a)."""
    return apply(rd.logsumexp, _arg(a), axis=_axis(axis), keepdims=keepdims)


def _reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    return math.prod(shape[a] for a in axes) if shape else 1


@implements(np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: bool = False) -> Tensor:
    """Variance sum((a - mean)^2) / (N - ddof) over ``axis`` (NumPy's ``np.var``; PyTorch's
    ``var`` defaults to ddof=1, NumPy's and chainrule's to 0). Two passes: the mean is
    subtracted before squaring, so there is no cancellation. N - ddof <= 0 gives inf or NaN,
    as NumPy."""
    _no_out("var", out, dtype)
    t = _tensor(a)
    axis = _axis(axis)
    d = t - _mean(t, axis=axis, keepdims=True)
    total = _sum(d * d, axis=axis, keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / builtins.max(_reduced_count(t.shape, axis) - ddof, 0)


@implements(np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
        keepdims: bool = False) -> Tensor:
    """Standard deviation sqrt(var) (NumPy's ``np.std``, ddof as in ``var``). Its gradient is
    NaN where the deviation is 0, as in PyTorch."""
    _no_out("std", out, dtype)
    return apply(ops.sqrt, var(a, axis=axis, ddof=ddof, keepdims=keepdims))


# --- contractions -------------------------------------------------------------------------------------


@implements(np.einsum)
def einsum(subscripts: str, *operands: Any, out: Any = None, optimize: Any = False) -> Tensor:
    """Einstein summation (NumPy's ``np.einsum``: implicit and explicit output, ``...``
    broadcasting, repeated subscripts for diagonals). ``optimize`` is accepted for NumPy's
    signature; chainrule picks the contraction order itself. Raises ``ValueError`` naming the
    subscripts and the operand shapes when they do not fit."""
    _no_out("einsum", out)
    args = [_arg(x) for x in operands]
    la.parse_subscripts(subscripts, [np.shape(_data(x)) for x in args])  # the error, up front
    return apply(la.einsum, subscripts, *args)


def _letters(n: int, start: int = 0) -> str:
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[start:start + n]


@implements(np.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Tensor:
    """Sum of products over ``axes`` (NumPy's ``np.tensordot``: an int N for a's last N and b's
    first N axes, or a pair of axis lists); composed as one einsum."""
    x, y = _arg(a), _arg(b)
    sa, sb = np.shape(_data(x)), np.shape(_data(y))
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > builtins.min(len(sa), len(sb)):
            raise ValueError(f"tensordot: axes={n} does not fit shapes {sa} and {sb}")
        ax_a, ax_b = list(range(len(sa) - n, len(sa))), list(range(n))
    else:
        try:
            ax_a, ax_b = axes
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: axes must be an int or a pair of axis lists, got "
                            f"{axes!r}") from None
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
        ax_a = [_norm_axis(i, len(sa), "tensordot") for i in ax_a]
        ax_b = [_norm_axis(i, len(sb), "tensordot") for i in ax_b]
    if len(ax_a) != len(ax_b) or builtins.any(sa[i] != sb[j] for i, j in zip(ax_a, ax_b, strict=True)):
        raise ValueError(f"tensordot: shapes {sa} and {sb} do not match over axes {ax_a} and "
                         f"{ax_b}")
    la_ = list(_letters(len(sa)))
    lb = list(_letters(len(sb), len(sa)))
    for i, j in zip(ax_a, ax_b, strict=True):
        lb[j] = la_[i]
    out = [c for k, c in enumerate(la_) if k not in ax_a] + [c for k, c in enumerate(lb)
                                                             if k not in ax_b]
    return apply(la.einsum, f"{''.join(la_)},{''.join(lb)}->{''.join(out)}", x, y)


@implements(np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Tensor:
    """NumPy's ``np.dot``: a product for 0-d operands, the matrix product for 1-D and 2-D ones,
    else a sum over a's last axis and b's second-to-last."""
    _no_out("dot", out)
    x, y = _arg(a), _arg(b)
    sa, sb = np.shape(_data(x)), np.shape(_data(y))
    if not sa or not sb:
        return apply(ops.mul, x, y)
    if sa[-1] != sb[-1 if len(sb) == 1 else -2]:
        raise ValueError(f"dot: shapes {sa} and {sb} are not aligned: {sa[-1]} (dim {len(sa) - 1})"
                         f" != {sb[-1 if len(sb) == 1 else -2]}")
    if len(sa) <= 2 and len(sb) <= 2:
        return apply(ops.matmul, x, y)
    return tensordot(x, y, axes=([-1], [-1 if len(sb) == 1 else -2]))


@implements(np.inner)
def inner(a: Any, b: Any) -> Tensor:
    """Sum of products over the last axes (NumPy's ``np.inner``; a product for 0-d operands)."""
    x, y = _arg(a), _arg(b)
    if not np.ndim(_data(x)) or not np.ndim(_data(y)):
        return apply(ops.mul, x, y)
    return tensordot(x, y, axes=([-1], [-1]))


@implements(np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Tensor:
    """Outer product of the flattened inputs, shape (a.size, b.size) (NumPy's ``np.outer``)."""
    _no_out("outer", out)
    return ravel(a).reshape(-1, 1) * ravel(b).reshape(1, -1)


@implements(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal ``offset`` of the matrices over ``axis1``, ``axis2``, as the last axis
    (NumPy's ``np.diagonal``, which returns a read-only view; chainrule returns a new tensor)."""
    x = _arg(a)
    nd = np.ndim(_data(x))
    if nd < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got an input of shape "
                         f"{np.shape(_data(x))}")
    a1, a2 = _norm_axis(axis1, nd, "diagonal"), _norm_axis(axis2, nd, "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    return apply(la.diagonal, x, offset=operator.index(offset), axis1=a1, axis2=a2)


@implements(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Tensor:
    """Sum of the diagonal ``offset`` (NumPy's ``np.trace``)."""
    _no_out("trace", out, dtype)
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1)


@implements(np.diag)
def diag(v: Any, k: int = 0) -> Tensor:
    """A 1-D input placed on diagonal ``k`` of a square matrix, or a 2-D input's diagonal ``k``
    (NumPy's ``np.diag``)."""
    t = _tensor(v)
    k = operator.index(k)
    if t.ndim == 2:
        return diagonal(t, k)
    if t.ndim != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {t.shape}")
    length = t.shape[0]
    n = length + builtins.abs(k)
    before = builtins.max(-k, 0)
    rows = _concatenate([np.zeros(before, t.dtype), t, np.zeros(n - before - length, t.dtype)])
    return rows.reshape(n, 1) * np.eye(n, n, k, dtype=t.dtype if t.dtype.kind == "f" else None)


def _tri_mask(shape: tuple[int, ...], k: int, lower: bool, fn: str) -> np.ndarray:
    if len(shape) < 1:
        raise ValueError(f"{fn}: needs at least 1 dimension, got a 0-d input")
    n, m = (shape[-2], shape[-1]) if len(shape) >= 2 else (shape[-1], shape[-1])
    k = operator.index(k)
    return np.tri(n, m, k, dtype=bool) if lower else ~np.tri(n, m, k - 1, dtype=bool)


@implements(np.tril)
def tril(m: Any, k: int = 0) -> Tensor:
    """The lower triangle: elements above diagonal ``k`` set to 0 (NumPy's ``np.tril``)."""
    t = _tensor(m)
    return _where(_tri_mask(t.shape, k, True, "tril"), t, 0)


@implements(np.triu)
def triu(m: Any, k: int = 0) -> Tensor:
    """The upper triangle: elements below diagonal ``k`` set to 0 (NumPy's ``np.triu``)."""
    t = _tensor(m)
    return _where(_tri_mask(t.shape, k, False, "triu"), t, 0)


# --- shapes --------------------------------------------------------------------------------------------


@implements(np.ravel)
def ravel(a: Any, order: str = "C") -> Tensor:
    """The elements as a 1-D tensor, in C (row-major) or F (column-major) order."""
    t = _tensor(a)
    if order == "F":
        t = t.transpose()
    elif order not in ("C", "A", "K"):
        raise ValueError(f"ravel: order must be 'C' or 'F', got {order!r}")
    return t.reshape(-1)


@implements(np.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Tensor:
    """Axes ``source`` moved to ``destination``, the others in order (``np.moveaxis``)."""
    t = _tensor(a)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} must have "
                         "the same number of elements")
    src = [_norm_axis(s, t.ndim, "moveaxis") for s in src]
    dst = [_norm_axis(d, t.ndim, "moveaxis") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in {source!r} or {destination!r}")
    order = [n for n in range(t.ndim) if n not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return t.transpose(tuple(order)) if order != list(range(t.ndim)) else t.reshape(t.shape)


def _along(ndim: int, axis: int, index: Any) -> tuple:
    return (slice(None),) * axis + (index,)


@implements(np.flip)
def flip(m: Any, axis: Any = None) -> Tensor:
    """The elements reversed along ``axis`` (all axes when None), NumPy's ``np.flip``."""
    t = _tensor(m)
    axes = range(t.ndim) if axis is None else [
        _norm_axis(a, t.ndim, "flip") for a in ((axis,) if isinstance(axis, (int, np.integer))
                                                else axis)]
    index = [slice(None)] * t.ndim
    for a in axes:
        index[a] = slice(None, None, -1)
    return t[tuple(index)]


@implements(np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Tensor:
    """Elements shifted by ``shift`` along ``axis``, wrapping around (``np.roll``; the input is
    flattened and reshaped back when axis is None)."""
    t = _tensor(a)
    if axis is None:
        return roll(t.reshape(-1), shift, 0).reshape(t.shape)
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    result = t
    for s, ax in zip(shifts.ravel().tolist(), axes.ravel().tolist(), strict=True):
        ax = _norm_axis(ax, t.ndim, "roll")
        n = t.shape[ax]
        s = s % n if n else 0
        if s:
            result = _concatenate([result[_along(t.ndim, ax, slice(n - s, None))],
                                   result[_along(t.ndim, ax, slice(None, n - s))]], axis=ax)
    return result


def _atleast(arys: tuple, nd: int) -> Any:
    out = []
    for a in arys:
        t = _tensor(a)
        if t.ndim >= nd:
            out.append(t)
        elif nd == 3 and t.ndim == 2:
            out.append(t.reshape(t.shape + (1,)))
        elif nd == 3 and t.ndim == 1:
            out.append(t.reshape((1,) + t.shape + (1,)))
        else:
            out.append(t.reshape((1,) * (nd - t.ndim) + t.shape))
    return out[0] if len(out) == 1 else tuple(out)


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """Each input with at least one dimension (``np.atleast_1d``); a tuple for several."""
    return _atleast(arys, 1)


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """Each input with at least two dimensions, new axes in front (``np.atleast_2d``)."""
    return _atleast(arys, 2)


@implements(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """Each input with at least three dimensions: (N,) -> (1, N, 1), (M, N) -> (M, N, 1)."""
    return _atleast(arys, 3)


@implements(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """Split into ``indices_or_sections`` parts (an int: the first n % parts one longer) or at
    the given indices, along ``axis`` (``np.array_split``). Each part is a slice."""
    t = _tensor(ary)
    ax = _norm_axis(axis, t.ndim, "array_split")
    n = t.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        parts = int(indices_or_sections)
        if parts <= 0:
            raise ValueError(f"array_split: the number of sections must be larger than 0, got "
                             f"{parts}")
        each, extra = divmod(n, parts)
        sizes = [each + 1] * extra + [each] * (parts - extra)
        points = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    else:
        points = [0, *[int(i) for i in indices_or_sections], n]
    return [t[_along(t.ndim, ax, slice(start, stop))]
            for start, stop in zip(points[:-1], points[1:], strict=True)]


@implements(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """``array_split`` that requires an int number of sections to divide the axis equally
    (``np.split``; ValueError otherwise)."""
    t = _tensor(ary)
    if isinstance(indices_or_sections, (int, np.integer)):
        n = t.shape[_norm_axis(axis, t.ndim, "split")]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: {indices_or_sections} sections do not divide an axis of "
                             f"length {n} equally; use array_split")
    return array_split(t, indices_or_sections, axis)


def _sequence(tup: Any, fn: str) -> list:
    if isinstance(tup, Tensor) or not isinstance(tup, Sequence):
        raise TypeError(f"{fn}: expects a sequence (list or tuple) of arrays, got "
                        f"{type(tup).__name__}")
    if not tup:
        raise ValueError(f"{fn}: needs at least one array, got none")
    return list(tup)


@implements(np.vstack)
def vstack(tup: Sequence[Any]) -> Tensor:
    """Stack along the first axis after ``atleast_2d`` (``np.vstack``)."""
    return _concatenate([atleast_2d(a) for a in _sequence(tup, "vstack")], axis=0)


@implements(np.hstack)
def hstack(tup: Sequence[Any]) -> Tensor:
    """Stack along the second axis (the first for 1-D inputs) after ``atleast_1d``."""
    arrays = [atleast_1d(a) for a in _sequence(tup, "hstack")]
    return _concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


@implements(np.column_stack)
def column_stack(tup: Sequence[Any]) -> Tensor:
    """1-D inputs as columns, 2-D ones as they are, joined along axis 1 (``np.column_stack``)."""
    arrays = []
    for a in _sequence(tup, "column_stack"):
        t = _tensor(a)
        arrays.append(t.reshape(-1, 1) if t.ndim < 2 else t)
    return _concatenate(arrays, axis=1)


@implements(np.repeat)
def repeat(a: Any, repeats: Any, axis: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times along ``axis`` (the flattened input when None),
    NumPy's ``np.repeat``; ``repeats`` may be one count or one per element."""
    t = _tensor(a)
    if axis is None:
        t, axis = t.reshape(-1), 0
    ax = _norm_axis(axis, t.ndim, "repeat")
    counts = np.asarray(_data(repeats))
    if counts.dtype.kind not in "iu" or np.any(counts < 0):
        raise ValueError(f"repeat: repeats must be non-negative integers, got {repeats!r}")
    if counts.size == 1:  # one count: a broadcast along a new axis, then merged
        r = int(counts.reshape(()))
        shape = t.shape
        wide = apply(ops.broadcast_to, t.reshape(shape[:ax + 1] + (1,) + shape[ax + 1:]),
                     shape=shape[:ax + 1] + (r,) + shape[ax + 1:])
        return wide.reshape(shape[:ax] + (shape[ax] * r,) + shape[ax + 1:])
    if counts.shape != (t.shape[ax],):
        raise ValueError(f"repeat: {counts.size} repeat counts for an axis of length "
                         f"{t.shape[ax]}")
    return t[_along(t.ndim, ax, np.repeat(np.arange(t.shape[ax]), counts))]


@implements(np.tile)
def tile(A: Any, reps: Any) -> Tensor:  # noqa: N803 (NumPy's name)
    """The input repeated ``reps`` times along each axis (NumPy's ``np.tile``: a shorter
    ``reps`` is padded with 1s in front, a shorter input gets new leading axes)."""
    t = _tensor(A)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {reps}")
    d = builtins.max(len(reps), t.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - t.ndim) + t.shape
    inter = tuple(v for n in shape for v in (1, n))
    wide = tuple(v for r, n in zip(reps, shape, strict=True) for v in (r, n))
    return apply(ops.broadcast_to, t.reshape(inter), shape=wide).reshape(
        tuple(r * n for r, n in zip(reps, shape, strict=True)))


def _pairs(value: Any, ndim: int, what: str) -> list[tuple[Any, Any]]:
    try:
        pairs = np.broadcast_to(np.asarray(value), (ndim, 2))
    except ValueError:
        raise ValueError(f"pad: {what} {value!r} cannot be read as (before, after) for each of "
                         f"{ndim} axes") from None
    return [tuple(p) for p in pairs.tolist()]


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


@implements(np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Tensor:
    """Padding as NumPy's ``np.pad``, differentiable in the array: ``mode`` 'constant' (with
    ``constant_values``), 'edge', 'reflect', 'symmetric' or 'wrap'. Differs from NumPy: the
    mirroring and wrapping modes pad at most one period (n - 1 for 'reflect', n otherwise);
    NumPy repeats them. Raises ``ValueError`` for other modes, negative or too-wide pads."""
    t = _tensor(array)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}}.get(mode, set())
    unknown = set(kwargs) - allowed
    if unknown or kwargs.get("reflect_type", "even") != "even":
        raise ValueError(f"pad: mode {mode!r} takes {sorted(allowed) or 'no options'} "
                         f"(reflect_type 'even' only), got {kwargs}")
    widths = _pairs(pad_width, t.ndim, "pad_width")
    if builtins.any(int(w) != w or w < 0 for p in widths for w in p):
        raise ValueError(f"pad: pad_width must be non-negative integers, got {pad_width!r}")
    values = _pairs(kwargs.get("constant_values", 0), t.ndim, "constant_values")
    result = t
    for ax, (before, after) in enumerate(widths):
        before, after = int(before), int(after)
        if not before and not after:
            continue
        n = result.shape[ax]
        limit = {"constant": None, "edge": None, "reflect": n - 1}.get(mode, n)
        if mode != "constant" and n == 0:
            raise ValueError(f"pad: mode {mode!r} cannot extend the empty axis {ax}")
        if limit is not None and builtins.max(before, after) > limit:
            raise ValueError(f"pad: mode {mode!r} pads axis {ax} (length {n}) by at most {limit} "
                             f"on each side in chainrule, got ({before}, {after})")
        nd = result.ndim

        def part(index: Any, result: Tensor = result, ax: int = ax, nd: int = nd) -> Tensor:
            return result[_along(nd, ax, index)]

        def block(width: int, fill: Any, result: Tensor = result, ax: int = ax) -> np.ndarray:
            shape = list(result.shape)
            shape[ax] = width
            return np.full(shape, fill, dtype=result.dtype)

        if mode == "constant":
            lo, hi = block(before, values[ax][0]), block(after, values[ax][1])
        elif mode == "edge":
            lo = _repeat_edge(part(slice(0, 1)), before, ax)
            hi = _repeat_edge(part(slice(n - 1, n)), after, ax)
        elif mode == "reflect":
            lo = flip(part(slice(1, before + 1)), ax)
            hi = flip(part(slice(n - 1 - after, n - 1)), ax)
        elif mode == "symmetric":
            lo = flip(part(slice(0, before)), ax)
            hi = flip(part(slice(n - after, n)), ax)
        else:  # wrap
            lo, hi = part(slice(n - before, n)), part(slice(0, after))
        result = _concatenate([lo, result, hi], axis=ax)
    return result if result is not t else t.reshape(t.shape)


def _repeat_edge(edge: Tensor, width: int, ax: int) -> Tensor:
    shape = list(edge.shape)
    shape[ax] = width
    return apply(ops.broadcast_to, edge, shape=tuple(shape))


@implements(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int | None) -> Tensor:
    """Elements picked by ``indices`` along ``axis`` (NumPy's ``np.take_along_axis``: indices
    has the input's number of dimensions; with axis None the input is flattened). Repeated
    indices accumulate in the gradient."""
    t = _tensor(arr)
    idx = np.asarray(_data(indices))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {idx.dtype}")
    if axis is None:
        if idx.ndim != 1:
            raise ValueError(f"take_along_axis: with axis=None, indices must be 1-D, got shape "
                             f"{idx.shape}")
        t, axis = t.reshape(-1), 0
    if idx.ndim != t.ndim:
        raise ValueError(f"take_along_axis: indices (shape {idx.shape}) and arr (shape "
                         f"{t.shape}) must have the same number of dimensions")
    ax = _norm_axis(axis, t.ndim, "take_along_axis")
    index = []
    for i, n in enumerate(t.shape):
        if i == ax:
            index.append(idx)
        else:
            grid = [1] * t.ndim
            grid[i] = n
            index.append(np.arange(n).reshape(grid))
    return t[tuple(index)]


@implements(np.sort)
def sort(a: Any, axis: int | None = -1, kind: str | None = None, order: Any = None) -> Tensor:
    """The elements sorted along ``axis`` (flattened when None), NumPy's ``np.sort``; equal
    elements keep their order (a stable sort, whatever ``kind``), and each output element's
    gradient goes to the input element it came from."""
    if order is not None:
        raise TypeError("sort: order= (structured arrays) is not supported")
    t = _tensor(a)
    if axis is None:
        t, axis = t.reshape(-1), -1
    if t.ndim == 0:
        raise ValueError("sort: a 0-d input has no axis to sort along (NumPy raises too)")
    ax = _norm_axis(axis, t.ndim, "sort")
    return take_along_axis(t, np.argsort(t.data, axis=ax, kind="stable"), ax)


# --- creation -------------------------------------------------------------------------------------------


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = np.float64,  # noqa: N803
        *, requires_grad: bool = False) -> Tensor:
    """An N x M tensor with ones on diagonal ``k`` (NumPy's ``np.eye``)."""
    return Tensor(np.eye(N, M, k, dtype=dtype), requires_grad=requires_grad)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0, *, requires_grad: bool = False) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (NumPy's ``np.linspace``). A new
    leaf: the result is not differentiable with respect to start and stop (as
    ``torch.linspace``)."""
    values = np.linspace(_data(start), _data(stop), num, endpoint=endpoint, retstep=retstep,
                         dtype=dtype, axis=axis)
    if retstep:
        return Tensor(values[0], requires_grad=requires_grad), values[1]
    return Tensor(values, requires_grad=requires_grad)


__all__ = [
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh",
    "arcsinh", "arccosh", "arctanh", "exp2", "log2", "log10", "expm1", "log1p", "square",
    "reciprocal", "sign", "floor", "ceil", "round", "trunc", "mod", "remainder", "fmod", "hypot",
    "fmax", "fmin", "erf", "logaddexp", "nan_to_num", "var", "std", "prod", "cumsum", "cumprod",
    "logsumexp", "einsum", "dot", "inner", "outer", "tensordot", "trace", "diag", "diagonal",
    "tril", "triu", "split", "array_split", "vstack", "hstack", "column_stack", "repeat", "tile",
    "pad", "flip", "roll", "moveaxis", "ravel", "sort", "take_along_axis", "argmax", "argmin",
    "any", "all", "isfinite", "isnan", "isinf", "logical_and", "logical_or", "logical_xor",
    "logical_not", "atleast_1d", "atleast_2d", "atleast_3d", "eye", "linspace",
]
