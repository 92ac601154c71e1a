"""Gather and scatter-add by flat index: the pair of primitives behind max pooling, the
reflect/replicate/circular modes of ``pad`` and ``embedding``.

``gather(x, index)`` is ``x.ravel()[index]`` (any shape of integer ``index``, repeats allowed);
``scatter_add(g, index, shape)`` sums each entry of ``g`` into position ``index`` of a zero
array of ``shape`` (``np.bincount`` with weights: repeated positions accumulate, as
``np.add.at`` does, in one vectorised pass). Each is the other's adjoint
(<y_bar, gather(x)> = <scatter_add(y_bar), x>), so each one's VJP is the other, and both work
on Tensors as well, for gradients of gradients.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.functional._dispatch import call
from chainrule.ops import primitive
from chainrule.tensor import Tensor, apply


def _gather(x, index):
    return x.reshape(-1)[index]


def _scatter_add(g, index, shape):
    size = math.prod(shape)
    # bincount sums in float64 whatever g's dtype; the result is cast back (float32 stays float32).
    total = np.bincount(index.reshape(-1), weights=g.reshape(-1), minlength=size)
    return total.astype(g.dtype, copy=False).reshape(shape)


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


gather_prim = primitive(
    "gather", _gather,
    lambda g, ans, x, index: call(scatter_add_prim, g, index, shape=_shape(x)),
    latex=r"{0}[\cdot]")
scatter_add_prim = primitive(
    "scatter_add", _scatter_add,
    lambda g, ans, y, index, shape: call(gather_prim, g, index),
    latex=r"\operatorname{{scatter}}({0})")


def gather(x: Any, index: np.ndarray) -> Tensor:
    """``x.ravel()[index]`` for an integer array ``index`` of any shape; differentiable in ``x``."""
    return apply(gather_prim, x, np.asarray(index, dtype=np.intp))


def scatter_add(g: Any, index: np.ndarray, shape: tuple[int, ...]) -> Tensor:
    """A zero array of ``shape`` with each ``g[i]`` added at flat position ``index[i]``."""
    return apply(scatter_add_prim, g, np.asarray(index, dtype=np.intp), shape=tuple(shape))
