"""NumPy's own functions called on Tensors, routed to chainrule's differentiable ones.

``np.sum(t)``, ``np.tanh(t)`` and ``np.where(c, t, 0)`` reach ``Tensor.__array_function__`` /
``Tensor.__array_ufunc__`` (NEP 13 and NEP 18), which look the NumPy callable up in the two
tables below. Whoever defines a differentiable function registers the NumPy callable it
stands for with ``@implements(np.xxx)`` beside its definition, so the table is never a second
list to keep in step. A NumPy function with no entry raises ``TypeError`` naming it rather
than silently returning an array with the gradient dropped.

The same tables let a VJP written in plain NumPy run on Tensors when the backward pass is
itself recorded (``create_graph=True``): one rule set for both.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# np function (np.sum, np.concatenate, ...) -> chainrule function with NumPy's signature
HANDLED_FUNCTIONS: dict[Callable[..., Any], Callable[..., Any]] = {}
# np ufunc (np.add, np.exp, ...) -> chainrule function taking the ufunc's inputs (method "__call__")
HANDLED_UFUNCS: dict[np.ufunc, Callable[..., Any]] = {}


def implements(*numpy_callables: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``func`` as what each of ``numpy_callables`` does on a Tensor.

    Ufuncs go to ``HANDLED_UFUNCS``, every other callable to ``HANDLED_FUNCTIONS``. Registering
    one NumPy callable twice is a ``ValueError`` (two definitions of one function).
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        for np_func in numpy_callables:
            table = HANDLED_UFUNCS if isinstance(np_func, np.ufunc) else HANDLED_FUNCTIONS
            if np_func in table:
                raise ValueError(f"{getattr(np_func, '__name__', np_func)} already routes to "
                                 f"{table[np_func].__qualname__}")
            table[np_func] = func
        return func

    return register
