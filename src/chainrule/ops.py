"""Primitive operations: each one's NumPy forward beside its vector-Jacobian products.

A primitive knows nothing about tensors or graphs. It is a NumPy function plus, for each
differentiable argument, a VJP ``vjp(g, ans, *args, **kwargs) -> gradient for that argument``
where ``g`` is the gradient flowing into the output and ``ans`` the forward result. The engine
(``autodiff.py``) calls a VJP only for arguments that need a gradient.

A primitive may also have ``fwd(*args, **kwargs) -> (ans, residual)``: the forward that keeps
an intermediate its VJPs would otherwise compute again (cross-entropy keeps e^(z - max z), as
JAX's ``custom_vjp`` keeps residuals). The engine uses it when it records a node and then calls
the VJPs with ``residual=``; everyone else calls ``fn`` and the VJPs without it, so a VJP taking
a residual must also work from ``args`` alone when it gets ``residual=None``.

One rule set for both orders. A VJP is written in plain NumPy (``g * b``, ``np.where``,
``unbroadcast``), and the same function runs in two ways: on arrays in an ordinary backward
pass, and on Tensors when the backward pass is itself recorded (``create_graph=True``), where
``Tensor.__array_ufunc__``/``__array_function__`` send each NumPy call to the differentiable
chainrule function (``numpy_dispatch.py``). So a VJP must only call what dispatches: NumPy
functions and ufuncs, array methods a Tensor also has, operators, and other primitives called
as functions (``untake(g, index, shape)``: a ``Primitive`` is callable, on arrays or Tensors).
No writes into arrays, no ``np.add.at``, no ``.astype(copy=False)`` on what may be a Tensor: a
helper that needs them for speed keeps the array-only code behind ``type(g) is np.ndarray``
and gives the same value the dispatchable way otherwise (``_spread``).

Contract for VJPs: they may return ``g`` itself or a view of it; the engine never writes into
those, nor into a forward input returned as is. A new array a VJP returns belongs to the engine,
which may sum other gradients into it in place: a VJP must not keep or reuse it. Every other
op in chainrule is composed from these, or is registered the same way (activations and losses
in ``chainrule.functional``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

VJP = Callable[..., Any]


class Primitive:
    """A differentiable NumPy function: forward ``fn`` and one VJP per argument."""

    __slots__ = ("name", "fn", "vjps", "vjp_argnum", "latex", "fwd")

    def __init__(self, name: str, fn: Callable[..., Any], vjps: tuple[VJP | None, ...] = (),
                 vjp_argnum: Callable[..., Any] | None = None, latex: str | None = None,
                 fwd: Callable[..., tuple[Any, Any]] | None = None):
        self.name = name
        self.fn = fn
        self.vjps = vjps
        self.vjp_argnum = vjp_argnum  # for variadic ops: vjp_argnum(i, g, ans, *args, **kw)
        self.latex = latex  # how the explainer writes the op, e.g. "{0} + {1}"
        self.fwd = fwd  # optional: fwd(*args, **kw) -> (fn's result, residual for the VJPs)

    def vjp(self, argnum: int, g: np.ndarray, ans: np.ndarray, args: tuple, kwargs: dict,
            residual: Any = None):
        if self.vjp_argnum is not None:
            return self.vjp_argnum(argnum, g, ans, *args, **kwargs)
        rule = self.vjps[argnum] if argnum < len(self.vjps) else None
        if rule is None:
            raise TypeError(f"{self.name}: argument {argnum} is not differentiable")
        if residual is None:
            return rule(g, ans, *args, **kwargs)
        return rule(g, ans, *args, residual=residual, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The forward on arrays, or, if an argument is a Tensor, the recorded op: a VJP calls
        another primitive this way and stays differentiable when it runs on Tensors."""
        if _ON_TENSORS is not None:
            for a in args:
                if isinstance(a, _ON_TENSORS[0]):
                    return _ON_TENSORS[1](self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


# (Tensor, apply), installed by tensor.py when it is imported: the engine's layers point one
# way (ops <- tensor), so ops cannot import them.
_ON_TENSORS: tuple[type, Callable[..., Any]] | None = None


PRIMITIVES: dict[str, Primitive] = {}
# The names of chainrule's own primitives, filled in at the end of ``import chainrule``.
BUILTIN_NAMES: set[str] = set()


def primitive(name: str, fn: Callable[..., Any], *vjps: VJP | None,
              vjp_argnum: Callable[..., Any] | None = None, latex: str | None = None,
              fwd: Callable[..., tuple[Any, Any]] | None = None) -> Primitive:
    """Register a primitive under ``name`` and return it.

    chainrule's own primitives (those registered while ``import chainrule`` runs) cannot be
    replaced: registering one of their names raises ``ValueError``. A name registered by your
    code may be registered again, and the new definition replaces the old one in
    ``PRIMITIVES``, so re-running a notebook cell or a script that defines a primitive works;
    tensors computed before keep the primitive they were made with (each graph node holds the
    ``Primitive`` object itself, not its name).
    """
    if name in BUILTIN_NAMES:
        raise ValueError(f"primitive {name!r} is one of chainrule's own and cannot be replaced; "
                         "register yours under another name")
    if fwd is not None and vjp_argnum is not None:
        raise ValueError(f"primitive {name!r}: a residual (fwd) needs per-argument VJPs")
    prim = Primitive(name, fn, tuple(vjps), vjp_argnum, latex, fwd)
    PRIMITIVES[name] = prim
    return prim


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo NumPy broadcasting: sum ``g`` down to ``shape`` (the one place this is done)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _shape(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, np.ndarray) else np.shape(x)


def _sum_to(g: np.ndarray, x: Any) -> np.ndarray:
    """``unbroadcast(g, shape of x)``, returning at once in the common case of equal shapes
    (one call per gradient instead of three: the elementwise ops' VJPs are the hot path)."""
    shape = x.shape if type(x) is np.ndarray else np.shape(x)
    if g.shape == shape:
        return g
    return unbroadcast(g, shape)



def _expand_reduced(g: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Reshape a reduction's output gradient so it broadcasts against the input's ``shape``."""
    if keepdims or not shape:  # a 0-d input: g already has its shape (axis 0 or -1 of a scalar)
        return g
    if axis is None:
        return g.reshape((1,) * len(shape))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


def _reduced_size(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None or not shape:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


# --- elementwise arithmetic -------------------------------------------------------------

add = primitive("add", np.add,
                lambda g, ans, a, b: _sum_to(g, a),
                lambda g, ans, a, b: _sum_to(g, b),
                latex="{0} + {1}")
sub = primitive("sub", np.subtract,
                lambda g, ans, a, b: _sum_to(g, a),
                lambda g, ans, a, b: _sum_to(-g, b),
                latex="{0} - {1}")
mul = primitive("mul", np.multiply,
                lambda g, ans, a, b: _sum_to(g * b, a),
                lambda g, ans, a, b: _sum_to(g * a, b),
                latex=r"{0} \cdot {1}")
div = primitive("div", np.true_divide,
                lambda g, ans, a, b: _sum_to(g / b, a),
                lambda g, ans, a, b: _sum_to(-g * ans / b, b),
                latex=r"\frac{{{0}}}{{{1}}}")
neg = primitive("neg", np.negative, lambda g, ans, a: -g, latex="-{0}")


def _pow_vjp_base(g, ans, a, b):
    # b a^(b-1), and 0 where b == 0 (PyTorch's pow_backward masks it: 0^-1 would give nan).
    # At a = 0 with b < 1 the value is +-inf, as PyTorch gives. The errstate keeps NumPy quiet
    # when the VJP is called outside a backward pass (the explainer): an inf here is the value.
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(b) == 0:
            if b == 0:
                return np.zeros(_shape(a), dtype=np.result_type(g))
            local = b * a ** (b - 1)
        else:
            local = np.where(b == 0, 0.0, b * a ** (b - 1))
        return unbroadcast(g * local, _shape(a))


def _pow_vjp_exponent(g, ans, a, b):
    # d(a^b)/db = a^b log a, taken as 0 where a == 0 and b >= 0 (PyTorch's pow_backward_exponent:
    # the limit for b > 0); where a == 0 and b < 0 it is inf * log 0 = -inf, and for a < 0 NaN,
    # as PyTorch gives. The local derivative takes the output's dtype: a Python-scalar base
    # would otherwise come back as a float64 0-d array and upcast a float32 gradient.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.log(a)
        if log_a.dtype != ans.dtype:
            log_a = log_a.astype(ans.dtype)
        local = np.where(np.logical_and(np.equal(a, 0), np.greater_equal(b, 0)), 0.0, ans * log_a)
        return unbroadcast(g * local, _shape(b))


power = primitive("pow", np.power, _pow_vjp_base, _pow_vjp_exponent, latex="{0}^{{{1}}}")

exp = primitive("exp", np.exp, lambda g, ans, a: g * ans, latex=r"e^{{{0}}}")
log = primitive("log", np.log, lambda g, ans, a: g / a, latex=r"\log {0}")
sqrt = primitive("sqrt", np.sqrt, lambda g, ans, a: g * 0.5 / ans, latex=r"\sqrt{{{0}}}")
absolute = primitive("abs", np.abs, lambda g, ans, a: g * np.sign(a), latex=r"\lvert {0} \rvert")


def _tie_split(g, a, b, shape):
    # Where a == b the gradient is shared equally, as PyTorch, JAX and autograd do. The
    # weights take g's dtype so a float32 gradient stays float32.
    weight = np.where(np.equal(a, b), 0.5, np.greater(a, b))
    if weight.dtype != g.dtype:
        weight = weight.astype(g.dtype)
    return unbroadcast(g * weight, shape)


maximum = primitive("maximum", np.maximum,
                    lambda g, ans, a, b: _tie_split(g, a, b, _shape(a)),
                    lambda g, ans, a, b: _tie_split(g, b, a, _shape(b)),
                    latex=r"\max({0}, {1})")
minimum = primitive("minimum", np.minimum,
                    lambda g, ans, a, b: _tie_split(g, b, a, _shape(a)),
                    lambda g, ans, a, b: _tie_split(g, a, b, _shape(b)),
                    latex=r"\min({0}, {1})")
where = primitive("where", np.where,
                  None,
                  lambda g, ans, c, a, b: unbroadcast(np.where(c, g, 0), _shape(a)),
                  lambda g, ans, c, a, b: unbroadcast(np.where(c, 0, g), _shape(b)),
                  latex=r"\mathrm{{where}}({0}, {1}, {2})")


def _clip(a, lo=None, hi=None):
    return np.clip(a, lo, hi)


def _clip_vjp(g, ans, a, lo=None, hi=None):
    # The gradient passes where lo <= a <= hi, bounds included (PyTorch's clamp). Array
    # bounds may broadcast the output beyond a's shape, hence the unbroadcast.
    inside = True
    if lo is not None:
        inside = np.logical_and(inside, np.greater_equal(a, lo))
    if hi is not None:
        inside = np.logical_and(inside, np.less_equal(a, hi))
    return unbroadcast(g * inside, _shape(a))


clip = primitive("clip", _clip, _clip_vjp, latex=r"\mathrm{{clip}}({0})")
astype = primitive("astype", lambda a, dtype: a.astype(dtype, copy=False),
                   lambda g, ans, a, dtype: g.astype(a.dtype), latex="{0}")

# --- matrix product (NumPy's 1-D and batched semantics) ---------------------------------


def _as_matrices(g, a, b):
    """View 1-D operands as row/column matrices, as np.matmul does, and ``g`` to match."""
    if b.ndim == 1:  # first: with two 1-D operands g is 0-d and gets its axes one at a time
        b = b[:, None]
        g = g[..., None]
    if a.ndim == 1:
        a = a[None, :]
        g = g[..., None, :]
    return g, a, b


def _matmul_vjp_a(g, ans, a, b):
    if a.ndim == 2 and b.ndim == 2:  # the common case, with no reshaping
        return g @ b.T
    g2, a2, b2 = _as_matrices(g, a, b)
    return unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)


def _matmul_vjp_b(g, ans, a, b):
    if a.ndim == 2 and b.ndim == 2:
        return a.T @ g
    g2, a2, b2 = _as_matrices(g, a, b)
    return unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)


def _matmul(a, b):
    try:
        return np.matmul(a, b)
    except ValueError:  # NumPy's gufunc message gives sizes, not the two shapes
        raise ValueError(f"matmul: shapes {np.shape(a)} and {np.shape(b)} are not aligned for a "
                         "matrix product (np.matmul's rules; 0-d operands are not allowed)") from None


matmul = primitive("matmul", _matmul, _matmul_vjp_a, _matmul_vjp_b, latex="{0} {1}")

# --- reductions ---------------------------------------------------------------------------


def _spread(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``g`` broadcast to ``shape``. On arrays as a new array: ``np.broadcast_to``'s read-only
    view costs ~10x more to make for small arrays (measured), and a new array is one the
    engine may sum into in place. On Tensors (a recorded backward) ``np.broadcast_to``, whose
    VJP sums back: the same value, differentiable."""
    if type(g) is not np.ndarray:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


def _sum_vjp(g, ans, a, axis=None, keepdims=False, dtype=None):
    if axis is None:  # g is 0-d (or all ones in shape): it broadcasts as it is
        return _spread(g, a.shape)
    return _spread(_expand_reduced(g, a.shape, axis, keepdims), a.shape)


def _mean_vjp(g, ans, a, axis=None, keepdims=False):
    g = _expand_reduced(g, a.shape, axis, keepdims) / _reduced_size(a.shape, axis)
    return _spread(g, a.shape)


def _extremum_vjp(g, ans, a, axis=None, keepdims=False):
    # Ties share the gradient equally (PyTorch's amax/amin, JAX, autograd).
    shape = _shape(a)
    ans = _expand_reduced(ans, shape, axis, keepdims)
    mask = np.equal(a, ans)
    if not shape:  # a 0-d input is its own extremum
        return g * mask
    count = mask.sum(axis=axis, keepdims=True, dtype=g.dtype)  # g's dtype: no float32 upcast
    return _expand_reduced(g, shape, axis, keepdims) * mask / count


def _sum(a, axis=None, keepdims=False, dtype=None):
    # ``dtype``: NumPy's accumulator type; only for counts in VJPs (``_extremum_vjp``).
    if type(a) is np.ndarray:  # the method skips np.sum's dispatch: ~2x faster on small arrays
        return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)
    return np.sum(a, axis=axis, keepdims=keepdims, dtype=dtype)


sum_ = primitive("sum", _sum,
                 _sum_vjp, latex=r"\sum {0}")
mean = primitive("mean", lambda a, axis=None, keepdims=False: np.mean(a, axis=axis, keepdims=keepdims),
                 _mean_vjp, latex=r"\operatorname{{mean}} {0}")
amax = primitive("max", lambda a, axis=None, keepdims=False: np.max(a, axis=axis, keepdims=keepdims),
                 _extremum_vjp, latex=r"\max {0}")
amin = primitive("min", lambda a, axis=None, keepdims=False: np.min(a, axis=axis, keepdims=keepdims),
                 _extremum_vjp, latex=r"\min {0}")

# --- shape and indexing -------------------------------------------------------------------

reshape = primitive("reshape", lambda a, shape: np.reshape(a, shape),
                    lambda g, ans, a, shape: np.reshape(g, a.shape), latex="{0}")


def _transpose_vjp(g, ans, a, axes=None):
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort([ax % a.ndim for ax in axes]))  # negative axes too


transpose = primitive("transpose", lambda a, axes=None: np.transpose(a, axes), _transpose_vjp,
                      latex="{0}^T")
swapaxes = primitive("swapaxes", lambda a, axis1, axis2: np.swapaxes(a, axis1, axis2),
                     lambda g, ans, a, axis1, axis2: np.swapaxes(g, axis1, axis2), latex="{0}^T")
expand_dims = primitive("expand_dims", lambda a, axis: np.expand_dims(a, axis),
                        lambda g, ans, a, axis: np.reshape(g, a.shape), latex="{0}")
squeeze = primitive("squeeze", lambda a, axis=None: np.squeeze(a, axis),
                    lambda g, ans, a, axis=None: np.reshape(g, a.shape), latex="{0}")
broadcast_to = primitive("broadcast_to", lambda a, shape: np.broadcast_to(a, shape),
                         lambda g, ans, a, shape: unbroadcast(g, a.shape), latex="{0}")


_BASIC = (int, np.integer, slice, type(Ellipsis), type(None))


def _is_basic(index: Any) -> bool:
    """True for NumPy's basic indexing (ints, slices, ..., None): it selects each position at
    most once. Every other form (lists, arrays, booleans, nested sequences) may repeat one."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, _BASIC) and not isinstance(p, bool) for p in parts)


def _untake(g, index, shape):
    """The adjoint of ``a[index]``: zeros of ``shape`` with ``g`` summed in at ``index``;
    repeated positions accumulate, as ``np.add.at`` (HIPS autograd's ``untake``)."""
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


# Its VJP is getitem again: ``untake`` is linear in g, and indexing is its adjoint.
untake = primitive("untake", _untake, lambda g, ans, x, index, shape: g[index],
                   latex="\\mathrm{{untake}}({0})")
getitem = primitive("getitem", lambda a, index: a[index],
                    lambda g, ans, a, index: untake(g, index=index, shape=_shape(a)),
                    latex="{0}[\\cdot]")


def _setitem(a, v, index):
    out = a.copy()
    out[index] = v
    return out


def _setitem_vjp_a(g, ans, a, v, index):
    keep = np.ones(_shape(a), dtype=bool)  # a constant mask: the positions not overwritten
    keep[index] = False
    return g * keep


# ``t[index] = v`` as a value: a copy of a with v written in. Where index repeats a position,
# NumPy keeps the last write but v's gradient counts every copy (PyTorch leaves it undefined).
setitem = primitive("setitem", _setitem, _setitem_vjp_a,
                    lambda g, ans, a, v, index: unbroadcast(g[index], _shape(v)),
                    latex="{0}[\\cdot] \\leftarrow {1}")


def _concatenate_vjp(i, g, ans, *xs, axis=0):
    if axis is None:  # NumPy flattens every input first
        start = sum(np.size(x) for x in xs[:i])
        return np.reshape(g[start:start + np.size(xs[i])], _shape(xs[i]))
    axis = axis % g.ndim
    start = sum(_shape(x)[axis] for x in xs[:i])
    index = [slice(None)] * g.ndim
    index[axis] = slice(start, start + _shape(xs[i])[axis])
    return g[tuple(index)]


concatenate = primitive("concatenate", lambda *xs, axis=0: np.concatenate(xs, axis=axis),
                        vjp_argnum=_concatenate_vjp, latex="[{0}]")
def _stack_vjp(i, g, ans, *xs, axis=0):
    return g[(slice(None),) * (axis % np.ndim(g)) + (i,)]  # np.take(g, i, axis), by indexing


stack = primitive("stack", lambda *xs, axis=0: np.stack(xs, axis=axis), vjp_argnum=_stack_vjp,
                  latex="[{0}]")
