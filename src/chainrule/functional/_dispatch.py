"""Call a primitive on NumPy arrays or on Tensors: what lets a VJP use another primitive.

A VJP written as ``call(conv_input_grad, g, w, ...)`` runs the primitive's NumPy function when
the backward pass works on arrays (the fast path) and records the primitive on the graph when
it works on Tensors (``create_graph=True``), so the one rule serves first and higher
derivatives alike. Used by the convolution, pooling, padding and embedding primitives.
"""
from __future__ import annotations

from typing import Any

from chainrule.ops import Primitive
from chainrule.tensor import Tensor, apply


def call(prim: Primitive, *args: Any, **kwargs: Any) -> Any:
    """``prim`` on ``args``: recorded with ``apply`` if any argument is a Tensor, else plain NumPy."""
    for a in args:
        if isinstance(a, Tensor):
            return apply(prim, *args, **kwargs)
    return prim.fn(*args, **kwargs)
