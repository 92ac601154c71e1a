"""Reductions and scans beyond sum/mean/max/min: prod, cumsum, cumprod, logsumexp.

Primitives registered in the same table as ``ops.py`` (see its docstring for the VJP
contract), with NumPy's ``axis``/``keepdims`` semantics. The VJPs are plain NumPy on their
arguments and write into no array, so they also run on Tensors when the backward pass is
recorded. var and std are compositions (``chainrule.numpy_api``), not primitives.
"""
from __future__ import annotations

import numpy as np

from chainrule.ops import _expand_reduced, primitive


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % ndim if ndim else int(a) for a in axes)


def _rev_cumsum(g, axis: int):
    """sum_{j >= i} g_j along ``axis``: the VJP of a cumulative sum."""
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


# --- prod ------------------------------------------------------------------------------------


def _prod_of_others(a, axis):
    """For each element, the product of the other elements of its reduction group, without
    dividing (so exact where a group holds zeros): exclusive products from the left and from
    the right, multiplied."""
    nd = a.ndim
    axes = _axes(axis, nd)
    rest = [i for i in range(nd) if i not in axes]
    perm = rest + list(axes)
    moved = np.transpose(a, perm)
    lead = tuple(moved.shape[:len(rest)])
    flat = np.reshape(moved, lead + (-1,))
    ones = np.ones(lead + (1,), dtype=a.dtype)
    left = np.concatenate([ones, np.cumprod(flat[..., :-1], axis=-1)], axis=-1)
    right = np.flip(np.concatenate([ones, np.cumprod(np.flip(flat, -1)[..., :-1], axis=-1)],
                                   axis=-1), -1)
    others = np.reshape(left * right, moved.shape)
    return np.transpose(others, tuple(int(i) for i in np.argsort(perm)))


def _prod_vjp(g, ans, a, axis=None, keepdims=False):
    if a.ndim == 0:  # NumPy allows axis 0 or -1 here; the product of no others is 1
        return g * np.ones_like(a)
    g = _expand_reduced(g, a.shape, axis, keepdims)
    if not np.any(a == 0):  # the common case: prod / a_i is the product of the others
        return g * _expand_reduced(ans, a.shape, axis, keepdims) / a
    return g * _prod_of_others(a, axis)


prod = primitive("prod", lambda a, axis=None, keepdims=False: np.prod(a, axis=axis, keepdims=keepdims),
                 _prod_vjp, latex=r"\prod {0}")

# --- cumulative sum and product ----------------------------------------------------------------


def _cumsum_vjp(g, ans, a, axis=None):
    if axis is None or a.ndim == 0:  # NumPy flattened the input: g is 1-D
        return np.reshape(_rev_cumsum(g, 0), a.shape)
    return _rev_cumsum(g, axis)


cumsum = primitive("cumsum", lambda a, axis=None: np.cumsum(a, axis=axis), _cumsum_vjp,
                   latex=r"\operatorname{{cumsum}} {0}")


def _cumprod_vjp(g, ans, a, axis=None):
    if axis is None or a.ndim == 0:
        return np.reshape(_cumprod_vjp(g, ans, np.ravel(a), 0), a.shape)
    if not np.any(a == 0):
        # d ans_j / d a_i = ans_j / a_i for j >= i: a reversed cumulative sum of g * ans
        return _rev_cumsum(g * ans, axis) / a
    # With zeros, exactly: d ans_j / d a_i = prod_{k <= j, k != i} a_k. One cumulative product
    # per position i, with a_i replaced by 1 (O(n^2), taken only when a holds a zero).
    gm, am = np.moveaxis(g, axis, -1), np.moveaxis(a, axis, -1)
    n = am.shape[-1]
    positions = np.arange(n)
    parts = []
    for i in range(n):
        without_i = np.where(positions == i, 1, am)
        parts.append(np.sum((gm * np.cumprod(without_i, axis=-1))[..., i:], axis=-1))
    return np.moveaxis(np.stack(parts, axis=-1), -1, axis)


cumprod = primitive("cumprod", lambda a, axis=None: np.cumprod(a, axis=axis), _cumprod_vjp,
                    latex=r"\operatorname{{cumprod}} {0}")

# --- logsumexp -----------------------------------------------------------------------------------


def _logsumexp(a, axis=None, keepdims=False):
    a = np.asarray(a)
    if a.size == 0:
        m = np.zeros(np.sum(a, axis=axis, keepdims=True).shape, dtype=a.dtype)
    else:
        m = np.max(a, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0).astype(a.dtype, copy=False)  # all -inf: shift by 0
    with np.errstate(under="ignore", divide="ignore"):  # log(0) = -inf is the answer there
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None or a.ndim == 0 else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g, ans, a, axis=None, keepdims=False):
    # softmax(a) = e^(a - logsumexp(a)): each weight is at most 1, nothing overflows
    if a.ndim == 0:
        return g * np.exp(a - ans)
    return (_expand_reduced(g, a.shape, axis, keepdims)
            * np.exp(a - _expand_reduced(ans, a.shape, axis, keepdims)))


logsumexp = primitive("logsumexp", _logsumexp, _logsumexp_vjp,
                      latex=r"\log \sum e^{{{0}}}")
