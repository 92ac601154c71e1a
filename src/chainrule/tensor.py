"""Tensor: a NumPy array that remembers how it was made, and the functions that make tensors.

Every differentiable operation goes through ``apply(primitive, *args)``, which runs the
primitive's NumPy forward and, when a gradient is needed, records a ``Node``. The Tensor
class itself holds no derivative code: the math is in ``ops.py`` (and ``functional/``).

NumPy's own functions called on a Tensor (``np.exp(t)``, ``np.sum(t)``, ``ndarray + t``) come
back here through ``__array_ufunc__`` and ``__array_function__`` (NEP 13 and 18), which look
them up in ``numpy_dispatch``'s tables; a NumPy function with no chainrule version raises
``TypeError`` instead of returning an array with the gradient dropped. The same route lets the
VJPs, written in plain NumPy, run on Tensors when a backward pass is recorded.

In-place operators (``+=``, ``-=``, ``*=``, ``/=``, ``t[i] = v``) change ``data`` in place, as
PyTorch's do: they stamp the tensor's version (``autodiff.bump``), record the operation when a
gradient is needed, and raise on a leaf that requires grad while grad mode is on.
"""
from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule import ops
from chainrule.autodiff import (
    AnomalyRecord,
    Node,
    _Anomaly,
    _check_finite,
    _GradMode,
    backprop,
    bump,
    digest,
    recording_backward,
)
from chainrule.numpy_dispatch import HANDLED_FUNCTIONS, HANDLED_UFUNCS, implements

Scalar = int | float | bool | np.number
ArrayLike = Any  # anything np.asarray accepts, or a Tensor



def _unsupported(what: str, name: str | None) -> str:
    """The message for a NumPy function with no chainrule rule: name chainrule's own only if it exists."""
    import chainrule  # here, not at the top: chainrule imports this module

    if name and (hasattr(chainrule, name) or hasattr(Tensor, name)):
        other = f"cr.{name}" if hasattr(chainrule, name) else f"Tensor.{name}"
        advice = f"use {other} (with its own arguments), or"
    else:
        advice = "chainrule has no derivative rule for it;"
    return (f"{what} is not supported on chainrule Tensors (it would drop the gradient): {advice} "
            "call it on t.detach().numpy() for values without a gradient")

class Tensor:
    """An ``np.ndarray`` (``.data``) with an optional gradient (``.grad``) and graph node."""

    # ``_version`` and ``_stamp`` stay unset until the first in-place change (``autodiff.bump``):
    # a tensor that is never changed in place pays nothing for them.
    __slots__ = ("data", "grad", "requires_grad", "name", "_node", "_retains_grad", "_version",
                 "_stamp", "__weakref__")

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        elif isinstance(data, (list, tuple)) and _contains_grad(data):
            raise TypeError("tensor(): the list holds a Tensor that requires grad, and a new tensor "
                            "is a leaf that would drop its gradient; use cr.stack(...) to keep "
                            "it, or detach() the elements")
        try:
            array = np.array(data, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"tensor data must be numeric array-like, got "
                            f"{type(data).__name__}: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"tensor data must be numeric (bool, int or float), got dtype {array.dtype}")
        self.data = array
        self.grad: np.ndarray | None = None
        self.requires_grad = False
        self.name = name
        self._node: Node | None = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array: np.ndarray, node: Node | None = None) -> Tensor:
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t.requires_grad = node is not None
        t.name = None
        t._node = node
        t._retains_grad = False
        return t

    # --- attributes -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def op(self) -> str | None:
        """Name of the primitive that made this tensor (None for a leaf)."""
        return None if self._node is None else self._node.prim.name

    def item(self) -> Any:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.requires_grad and recording_backward():
            raise TypeError("a VJP turned a Tensor that carries a graph into a NumPy array, which "
                            "would drop its gradient in a recorded backward (create_graph=True): "
                            "write the VJP with dispatching NumPy calls (see chainrule.ops)")
        if dtype is None and not copy:
            return self.data
        return self.data.astype(self.data.dtype if dtype is None else dtype, copy=bool(copy))

    # --- NumPy's functions on Tensors (NEP 13 and NEP 18) -----------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """``np.exp(t)``, ``ndarray + t``: the chainrule op registered for the ufunc."""
        handler = HANDLED_UFUNCS.get(ufunc)
        if method != "__call__" or handler is None:
            what = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise TypeError(_unsupported(what, ufunc.__name__ if method == "__call__" else None))
        out = kwargs.pop("out", None)
        if kwargs:
            raise TypeError(f"numpy.{ufunc.__name__} on chainrule Tensors takes no keyword "
                            f"arguments, got {sorted(kwargs)}")
        if out is None:
            return handler(*inputs)
        # ``array += t`` (out= an ndarray): the values go into the array, which holds no graph.
        if any(isinstance(a, Tensor) and a.requires_grad for a in inputs) and _GradMode.enabled:
            raise TypeError(f"numpy.{ufunc.__name__} with out= a NumPy array would drop the "
                            "gradient of a Tensor that requires grad; detach() it first, or "
                            "compute under cr.no_grad()")
        result = handler(*inputs)
        (target,) = out
        np.copyto(target.data if isinstance(target, Tensor) else target, _value(result),
                  casting="same_kind")
        if isinstance(target, Tensor):
            bump(target)
        return target

    def __array_function__(self, func: Any, types: tuple, args: tuple, kwargs: dict) -> Any:
        """``np.sum(t)``, ``np.concatenate([t, u])``: the chainrule function registered for it."""
        handler = HANDLED_FUNCTIONS.get(func)
        if handler is None:
            name = getattr(func, "__name__", str(func))
            module = getattr(func, "__module__", None) or "numpy"
            raise TypeError(_unsupported(f"{module}.{name}", name if module == "numpy" else None))
        if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
            return NotImplemented
        return handler(*args, **kwargs)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != np.float64 and self.data.dtype.kind == "f":
            extra += f", dtype={self.data.dtype}"
        if self._node is not None:
            extra += f", op={self._node.prim.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__  # identity, though == is elementwise (as in PyTorch)

    # --- autograd -------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        if not requires_grad and self._node is not None:
            raise ValueError("requires_grad can only be turned off on a leaf tensor; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this non-leaf tensor after ``backward()``, as PyTorch does."""
        self._retains_grad = True
        return self

    def detach(self) -> Tensor:
        """The same data, cut off from the graph (shares memory, as in PyTorch)."""
        return Tensor._wrap(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    @property
    def version(self) -> int:
        """How many times ``data`` was changed in place by chainrule (PyTorch's ``_version``)."""
        return getattr(self, "_version", 0)

    def backward(self, gradient: ArrayLike | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``gradient`` seeds non-scalars).

        ``create_graph=True`` records the backward pass itself, so the gradients can be
        differentiated again; ``.grad`` then holds a Tensor carrying that graph (an ndarray
        otherwise). As in PyTorch, ``retain_graph`` defaults to ``create_graph``; without it the
        graph's saved values are freed and a second backward raises ``RuntimeError``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input of its "
                               "graph had requires_grad=True (or it was made under no_grad)")
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(f"backward() without a gradient needs a scalar output, got shape "
                                 f"{self.data.shape}; pass gradient= with that shape")
            seed = np.empty(self.data.shape, dtype=self.data.dtype)
            seed.fill(1)  # np.ones is ~3x slower for a scalar
        else:
            seed = np.array(gradient.data if isinstance(gradient, Tensor) else gradient,
                            dtype=self.data.dtype)
            if seed.shape != self.data.shape:
                raise ValueError(f"gradient has shape {seed.shape}, expected the output's shape "
                                 f"{self.data.shape}")
        if create_graph:
            seed = _seed_tensor(gradient, seed)
        backprop((self,), (seed,),
                 retain_graph=create_graph if retain_graph is None else retain_graph,
                 create_graph=create_graph)

    # --- arithmetic -----------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _binary(ops.add, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _binary(ops.add, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _binary(ops.sub, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(ops.sub, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _binary(ops.mul, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(ops.mul, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _binary(ops.div, self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _binary(ops.div, other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _binary(ops.power, self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _binary(ops.power, other, self)

    def __neg__(self) -> Tensor:
        return apply(ops.neg, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return apply(ops.absolute, self)

    def __matmul__(self, other: Any) -> Tensor:
        return apply(ops.matmul, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return apply(ops.matmul, other, self)

    # --- in-place operators (PyTorch's semantics: a real in-place change, versioned) --------
    def __iadd__(self, other: Any) -> Tensor:
        return _inplace(self, ops.add, other, "+=")

    def __isub__(self, other: Any) -> Tensor:
        return _inplace(self, ops.sub, other, "-=")

    def __imul__(self, other: Any) -> Tensor:
        return _inplace(self, ops.mul, other, "*=")

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace(self, ops.div, other, "/=")

    def __ipow__(self, other: Any) -> Tensor:
        return _inplace(self, ops.power, other, "**=")

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value`` in place; differentiable in ``t`` (elsewhere) and ``value``."""
        index = _index(index)
        if isinstance(value, (list, tuple)):
            value = _stack_if_tensors(value)
        if not _records(self, value, "t[index] = value"):
            self.data[index] = _value(value)
            bump(self)
            return
        old = _stand_in(self)
        bump(self)
        result = apply(ops.setitem, old, value, index=index)
        self.data[...] = result.data
        self._node, self.requires_grad = result._node, True

    # Comparisons give boolean tensors that carry no gradient.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(self.data < _value(other)))

    def __le__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(self.data <= _value(other)))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(self.data > _value(other)))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._wrap(np.asarray(self.data >= _value(other)))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(np.asarray(self.data == _value(other)))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._wrap(np.asarray(self.data != _value(other)))

    # --- elementwise functions, reductions and shapes, as methods ---------------------------
    def exp(self) -> Tensor:
        return apply(ops.exp, self)

    def log(self) -> Tensor:
        return apply(ops.log, self)

    def sqrt(self) -> Tensor:
        return apply(ops.sqrt, self)

    def abs(self) -> Tensor:
        return apply(ops.absolute, self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (NumPy's names)
        return clip(self, min, max)

    def maximum(self, other: Any) -> Tensor:
        return apply(ops.maximum, self, other)

    def minimum(self, other: Any) -> Tensor:
        return apply(ops.minimum, self, other)

    def matmul(self, other: Any) -> Tensor:
        return apply(ops.matmul, self, other)

    def sum(self, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tensor:
        if dtype is None:
            return apply(ops.sum_, self, axis=_axis(axis), keepdims=keepdims)
        return apply(ops.sum_, self, axis=_axis(axis), keepdims=keepdims, dtype=np.dtype(dtype))

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(ops.mean, self, axis=_axis(axis), keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(ops.amax, self, axis=_axis(axis), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(ops.amin, self, axis=_axis(axis), keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return apply(ops.reshape, self, shape=shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return apply(ops.transpose, self, axes=axes or None)

    @property
    def T(self) -> Tensor:
        return apply(ops.transpose, self, axes=None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return apply(ops.swapaxes, self, axis1=axis1, axis2=axis2)

    def expand_dims(self, axis: Any) -> Tensor:
        return apply(ops.expand_dims, self, axis=_axis(axis))

    def squeeze(self, axis: Any = None) -> Tensor:
        return apply(ops.squeeze, self, axis=_axis(axis))

    def astype(self, dtype: Any, copy: bool = False) -> Tensor:
        """The tensor in ``dtype`` (itself when it has it already: tensors are values; ``copy``
        is accepted for NumPy's signature). Differentiable between floating-point types."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if self.requires_grad and dtype.kind != "f":
            return Tensor._wrap(self.data.astype(dtype))  # an integer copy carries no gradient
        return apply(ops.astype, self, dtype=dtype)

    def __getitem__(self, index: Any) -> Tensor:
        return apply(ops.getitem, self, index=_index(index))

    # --- NumPy/PyTorch-style methods (issue 12) ----------------------------------------------
    # x.sin(), x.relu(), x.var(axis=0), ... as in PyTorch and NumPy, each a thin call to the one
    # definition in chainrule.numpy_api or chainrule.functional. Those modules import this one,
    # so each method imports its module when called (a cached lookup after the first call):
    # tensor.py stays at the bottom of the dependency order, with no import cycle. Arguments
    # follow NumPy (axis, keepdims, ddof=0), as the methods above do; PyTorch's var/std
    # default to ddof=1 (correction=1).

    def sin(self) -> Tensor:
        """``chainrule.sin(self)``."""
        from chainrule import numpy_api

        return numpy_api.sin(self)

    def cos(self) -> Tensor:
        """``chainrule.cos(self)``."""
        from chainrule import numpy_api

        return numpy_api.cos(self)

    def tan(self) -> Tensor:
        """``chainrule.tan(self)``."""
        from chainrule import numpy_api

        return numpy_api.tan(self)

    def arcsin(self) -> Tensor:
        """``chainrule.arcsin(self)``."""
        from chainrule import numpy_api

        return numpy_api.arcsin(self)

    def arccos(self) -> Tensor:
        """``chainrule.arccos(self)``."""
        from chainrule import numpy_api

        return numpy_api.arccos(self)

    def arctan(self) -> Tensor:
        """``chainrule.arctan(self)``."""
        from chainrule import numpy_api

        return numpy_api.arctan(self)

    def sinh(self) -> Tensor:
        """``chainrule.sinh(self)``."""
        from chainrule import numpy_api

        return numpy_api.sinh(self)

    def cosh(self) -> Tensor:
        """``chainrule.cosh(self)``."""
        from chainrule import numpy_api

        return numpy_api.cosh(self)

    def arcsinh(self) -> Tensor:
        """``chainrule.arcsinh(self)``."""
        from chainrule import numpy_api

        return numpy_api.arcsinh(self)

    def arccosh(self) -> Tensor:
        """``chainrule.arccosh(self)``."""
        from chainrule import numpy_api

        return numpy_api.arccosh(self)

    def arctanh(self) -> Tensor:
        """``chainrule.arctanh(self)``."""
        from chainrule import numpy_api

        return numpy_api.arctanh(self)

    def exp2(self) -> Tensor:
        """``chainrule.exp2(self)``."""
        from chainrule import numpy_api

        return numpy_api.exp2(self)

    def log2(self) -> Tensor:
        """``chainrule.log2(self)``."""
        from chainrule import numpy_api

        return numpy_api.log2(self)

    def log10(self) -> Tensor:
        """``chainrule.log10(self)``."""
        from chainrule import numpy_api

        return numpy_api.log10(self)

    def expm1(self) -> Tensor:
        """``chainrule.expm1(self)``."""
        from chainrule import numpy_api

        return numpy_api.expm1(self)

    def log1p(self) -> Tensor:
        """``chainrule.log1p(self)``."""
        from chainrule import numpy_api

        return numpy_api.log1p(self)

    def square(self) -> Tensor:
        """``chainrule.square(self)``."""
        from chainrule import numpy_api

        return numpy_api.square(self)

    def reciprocal(self) -> Tensor:
        """``chainrule.reciprocal(self)``."""
        from chainrule import numpy_api

        return numpy_api.reciprocal(self)

    def sign(self) -> Tensor:
        """``chainrule.sign(self)``."""
        from chainrule import numpy_api

        return numpy_api.sign(self)

    def floor(self) -> Tensor:
        """``chainrule.floor(self)``."""
        from chainrule import numpy_api

        return numpy_api.floor(self)

    def ceil(self) -> Tensor:
        """``chainrule.ceil(self)``."""
        from chainrule import numpy_api

        return numpy_api.ceil(self)

    def trunc(self) -> Tensor:
        """``chainrule.trunc(self)``."""
        from chainrule import numpy_api

        return numpy_api.trunc(self)

    def erf(self) -> Tensor:
        """``chainrule.erf(self)``."""
        from chainrule import numpy_api

        return numpy_api.erf(self)

    def relu(self) -> Tensor:
        """``chainrule.functional.relu(self)``."""
        from chainrule import functional

        return functional.relu(self)

    def sigmoid(self) -> Tensor:
        """``chainrule.functional.sigmoid(self)``."""
        from chainrule import functional

        return functional.sigmoid(self)

    def tanh(self) -> Tensor:
        """``chainrule.functional.tanh(self)``."""
        from chainrule import functional

        return functional.tanh(self)

    def logsigmoid(self) -> Tensor:
        """``chainrule.functional.logsigmoid(self)``."""
        from chainrule import functional

        return functional.logsigmoid(self)

    def silu(self) -> Tensor:
        """``chainrule.functional.silu(self)``."""
        from chainrule import functional

        return functional.silu(self)

    def selu(self) -> Tensor:
        """``chainrule.functional.selu(self)``."""
        from chainrule import functional

        return functional.selu(self)

    def mish(self) -> Tensor:
        """``chainrule.functional.mish(self)``."""
        from chainrule import functional

        return functional.mish(self)

    def hardswish(self) -> Tensor:
        """``chainrule.functional.hardswish(self)``."""
        from chainrule import functional

        return functional.hardswish(self)

    def hardsigmoid(self) -> Tensor:
        """``chainrule.functional.hardsigmoid(self)``."""
        from chainrule import functional

        return functional.hardsigmoid(self)

    def relu6(self) -> Tensor:
        """``chainrule.functional.relu6(self)``."""
        from chainrule import functional

        return functional.relu6(self)

    def softsign(self) -> Tensor:
        """``chainrule.functional.softsign(self)``."""
        from chainrule import functional

        return functional.softsign(self)

    def softmax(self, axis: int = -1) -> Tensor:
        """``chainrule.functional.softmax(self, axis)`` (PyTorch's ``dim``)."""
        from chainrule import functional

        return functional.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """``chainrule.functional.log_softmax(self, axis)`` (PyTorch's ``dim``)."""
        from chainrule import functional

        return functional.log_softmax(self, axis)

    def round(self, decimals: int = 0) -> Tensor:
        """``chainrule.round(self, decimals)``: gradient 0, as PyTorch."""
        from chainrule import numpy_api

        return numpy_api.round(self, decimals)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """``chainrule.prod(self, axis, keepdims=keepdims)``."""
        from chainrule import numpy_api

        return numpy_api.prod(self, axis, keepdims=keepdims)

    def var(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Tensor:
        """``chainrule.var``: NumPy's ddof=0 by default (PyTorch's ``var`` uses 1)."""
        from chainrule import numpy_api

        return numpy_api.var(self, axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis: Any = None, ddof: float = 0, keepdims: bool = False) -> Tensor:
        """``chainrule.std``: NumPy's ddof=0 by default (PyTorch's ``std`` uses 1)."""
        from chainrule import numpy_api

        return numpy_api.std(self, axis, ddof=ddof, keepdims=keepdims)

    def cumsum(self, axis: int | None = None) -> Tensor:
        """``chainrule.cumsum(self, axis)`` (flattened when axis is None, as NumPy)."""
        from chainrule import numpy_api

        return numpy_api.cumsum(self, axis)

    def cumprod(self, axis: int | None = None) -> Tensor:
        """``chainrule.cumprod(self, axis)`` (flattened when axis is None, as NumPy)."""
        from chainrule import numpy_api

        return numpy_api.cumprod(self, axis)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """``chainrule.logsumexp(self, axis, keepdims)``."""
        from chainrule import numpy_api

        return numpy_api.logsumexp(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """``chainrule.argmax``: an integer tensor with no gradient."""
        from chainrule import numpy_api

        return numpy_api.argmax(self, axis, keepdims=keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """``chainrule.argmin``: an integer tensor with no gradient."""
        from chainrule import numpy_api

        return numpy_api.argmin(self, axis, keepdims=keepdims)

    def any(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """``chainrule.any``: a bool tensor with no gradient."""
        from chainrule import numpy_api

        return numpy_api.any(self, axis, keepdims=keepdims)

    def all(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """``chainrule.all``: a bool tensor with no gradient."""
        from chainrule import numpy_api

        return numpy_api.all(self, axis, keepdims=keepdims)

    def ravel(self) -> Tensor:
        """``chainrule.ravel(self)``: the elements as a 1-D tensor."""
        from chainrule import numpy_api

        return numpy_api.ravel(self)

    def flatten(self) -> Tensor:
        """The elements as a 1-D tensor (NumPy's ``ndarray.flatten``; PyTorch's ``flatten()``)."""
        return self.reshape(-1)

    def flip(self, axis: Any = None) -> Tensor:
        """``chainrule.flip(self, axis)``."""
        from chainrule import numpy_api

        return numpy_api.flip(self, axis)

    def roll(self, shift: Any, axis: Any = None) -> Tensor:
        """``chainrule.roll(self, shift, axis)``."""
        from chainrule import numpy_api

        return numpy_api.roll(self, shift, axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """``chainrule.diagonal(self, offset, axis1, axis2)``."""
        from chainrule import numpy_api

        return numpy_api.diagonal(self, offset, axis1, axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """``chainrule.trace(self, offset, axis1, axis2)``."""
        from chainrule import numpy_api

        return numpy_api.trace(self, offset, axis1, axis2)

    def dot(self, other: Any) -> Tensor:
        """``chainrule.dot(self, other)`` (NumPy's ``dot``)."""
        from chainrule import numpy_api

        return numpy_api.dot(self, other)

    def nan_to_num(self, nan: float = 0.0, posinf: float | None = None,
                   neginf: float | None = None) -> Tensor:
        """``chainrule.nan_to_num(self, nan=..., posinf=..., neginf=...)``."""
        from chainrule import numpy_api

        return numpy_api.nan_to_num(self, nan=nan, posinf=posinf, neginf=neginf)


def _value(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _contains_tensor(seq: Any) -> bool:
    return any(isinstance(v, Tensor) or (isinstance(v, (list, tuple)) and _contains_tensor(v))
               for v in seq)


def _stack_if_tensors(seq: list | tuple) -> Any:
    """A list or tuple holding Tensors, stacked differentiably (``cr.mean([x, 2 * x])``, as HIPS
    autograd's ``np.array``); any other sequence as it is. NumPy would turn each Tensor into an
    array and drop its gradient."""
    if not _contains_tensor(seq):
        return seq
    return stack([_stack_if_tensors(v) if isinstance(v, (list, tuple)) else v for v in seq])


def _records(t: Tensor, other: Any, op: str) -> bool:
    """Whether an in-place op on ``t`` must be recorded; RuntimeError on a leaf needing grad."""
    if not _GradMode.enabled:
        return False
    if t.requires_grad and t._node is None:
        raise RuntimeError(f"a leaf tensor that requires grad is used in an in-place operation "
                           f"({op}); do it under cr.no_grad() (as an optimizer step does) or on a "
                           "copy")
    return t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)


def _stand_in(t: Tensor) -> Tensor:
    """A tensor taking over ``t``'s history and a copy of its present values: the input of the
    in-place op about to be recorded on ``t`` (PyTorch rebases the history the same way)."""
    old = Tensor._wrap(t.data.copy(), t._node)
    old.requires_grad = t.requires_grad
    return old


def _inplace(t: Tensor, prim: ops.Primitive, other: Any, op: str) -> Tensor:
    if isinstance(other, (list, tuple)):
        other = _stack_if_tensors(other)
    if _records(t, other, op):
        old = _stand_in(t)
        bump(t)
        result = apply(prim, old, other)
    else:
        result = apply(prim, t, other)
        bump(t)
    if result.data.shape != t.data.shape:
        raise ValueError(f"in-place {op}: the result has shape {result.data.shape}, the tensor "
                         f"{t.data.shape}; an in-place result cannot broadcast the tensor (NumPy's rule)")
    np.copyto(t.data, result.data, casting="same_kind")  # int += float: NumPy's casting error
    if result._node is not None:
        t._node, t.requires_grad = result._node, True
    return t


def _seed_tensor(given: Any, seed: np.ndarray) -> Tensor:
    """The seed of a recorded backward: the given Tensor with its graph, else a constant."""
    if isinstance(given, Tensor) and given.dtype == seed.dtype:
        return given
    return Tensor._wrap(seed)


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _index(index: Any, top: bool = True) -> Any:
    """Tensors inside an index become arrays; lists, and tuples nested in the index tuple,
    become integer/boolean arrays (NumPy reads a nested tuple as a sequence of positions)."""
    if isinstance(index, tuple) and top:
        return tuple(_index(i, False) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, (list, tuple)):
        if not index:
            return np.zeros(0, dtype=np.intp)  # [] selects nothing
        return np.asarray([_value(i) for i in index] if isinstance(index, tuple) else index)
    return index


def _weak(x: Any) -> Any:
    """A NumPy scalar as the Python scalar it holds: scalars never change a tensor's dtype.

    NumPy 2 lets ``np.float64(2) * float32_array`` upcast to float64; like PyTorch, chainrule
    treats NumPy scalars as it treats Python scalars, so float32 stays float32.
    """
    return x.item() if isinstance(x, np.generic) else x


def apply(prim: ops.Primitive, *args: Any, **kwargs: Any) -> Tensor:
    """Run ``prim`` forward on the arguments' data and record a node if a gradient is needed."""
    # One pass over the arguments collects the arrays, the parents and whether any parent
    # needs a gradient (measured: ~0.2 us less per op than three comprehensions).
    arrays, parents, needed = [], [], False
    for a in args:
        if type(a) is not Tensor and not isinstance(a, Tensor):
            if type(a) is list or type(a) is tuple:  # a list holding Tensors: stack it
                a = _stack_if_tensors(a)
            if not isinstance(a, Tensor):  # a constant; a NumPy scalar as a Python one (_weak)
                arrays.append(a.item() if isinstance(a, np.generic) else a)
                parents.append(None)
                continue
        arrays.append(a.data)
        parents.append(a)
        if a.requires_grad:
            needed = True
    if not (needed and _GradMode.enabled):  # nothing to record
        out = prim.fn(*arrays, **kwargs)
        return Tensor._wrap(out if type(out) is np.ndarray else np.asarray(out))
    residual = None
    if prim.fwd is None:
        out = prim.fn(*arrays, **kwargs)
    else:
        out, residual = prim.fwd(*arrays, **kwargs)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    result = Tensor._wrap(out, Node(prim, parents, arrays, kwargs or _NO_KWARGS, residual))
    if _Anomaly.enabled:
        result._node.trace = AnomalyRecord(_user_frame(), (digest(out), *(
            digest(a.data) if isinstance(a, Tensor) else None for a in parents)))
        _check_finite(out, result, "forward result")
    return result


def _binary(prim: ops.Primitive, a: Any, b: Any) -> Tensor:
    """``apply(prim, a, b)`` for the arithmetic operators: the same result, without the general
    argument loop, in the commonest cases (a Tensor with a Tensor or a Python number). This is
    the per-op cost that long graphs of small elementwise operations pay (``y * c + d``)."""
    if type(a) is Tensor:
        if type(b) is Tensor:
            parents, arrays = [a, b], [a.data, b.data]
            needed = a.requires_grad or b.requires_grad
        elif type(b) is float or type(b) is int:
            parents, arrays, needed = [a, None], [a.data, b], a.requires_grad
        else:
            return apply(prim, a, b)
    elif type(b) is Tensor and (type(a) is float or type(a) is int):
        parents, arrays, needed = [None, b], [a, b.data], b.requires_grad
    else:
        return apply(prim, a, b)
    if not (needed and _GradMode.enabled):
        out = prim.fn(*arrays)
        return Tensor._wrap(out if type(out) is np.ndarray else np.asarray(out))
    if prim.fwd is not None or _Anomaly.enabled:  # what apply does beyond the lines below
        return apply(prim, a, b)
    out = prim.fn(*arrays)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    result = _new_tensor(Tensor)  # Tensor._wrap(out, node), inlined: one call less per op
    result.data = out
    result.grad = None
    result.requires_grad = True
    result.name = None
    result._node = Node(prim, parents, arrays, _NO_KWARGS)
    result._retains_grad = False
    return result


# The keyword arguments of every node recorded without any: one shared dict, never written
# (a node's ``kwargs`` is only read), rather than a new one per op.
_NO_KWARGS: dict = {}
_new_tensor = object.__new__


# The package's own directory: a user's file may well sit under another path named chainrule.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame() -> str:
    """The innermost stack frame outside chainrule: where the user's code made the op."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def grad(outputs: Tensor | Sequence[Tensor], inputs: Sequence[Tensor] | Tensor,
         grad_output: Any = None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False, *, grad_outputs: Any = None) -> list[Tensor | None]:
    """d(outputs)/d(input) for each input, without touching any ``.grad`` (``torch.autograd.grad``).

    ``outputs`` is one Tensor or a sequence of Tensors; with several, each input's gradient is
    the sum over the outputs of v_k^T J_k (PyTorch's semantics). ``grad_outputs`` (PyTorch's
    name; ``grad_output``, the third positional argument, is the same) seeds them: for one
    output, v of the output's shape (PyTorch's one-element list ``[v]`` too); for a sequence
    of outputs, a sequence of the same length. A seed may be omitted (None, or no
    ``grad_outputs`` at all) only for an output with one element, where it is 1.
    Inputs may be intermediate tensors of the graph, not only leaves. ``create_graph=True``
    records the backward pass, so the returned gradients carry a graph and can be
    differentiated again (a gradient that depends on no input needing grad comes back with
    ``requires_grad=False``, as in PyTorch); ``retain_graph`` defaults to ``create_graph``.
    Returns a list with one Tensor (or None, with ``allow_unused``) per input, of its shape and
    dtype. Raises ``ValueError`` for an output that does not require grad, a missing seed for
    an output with more than one element, a seed of the wrong shape or a count of seeds that
    does not match the outputs, an input that does not require grad, or an unused input
    without ``allow_unused``; ``TypeError`` for an output that is not a Tensor; ``RuntimeError``
    for a freed graph or an input changed in place after it was used.
    """
    if grad_outputs is not None:
        if grad_output is not None:
            raise TypeError("grad(): pass grad_output or grad_outputs, not both")
        grad_output = grad_outputs
    roots, seeds = _roots_and_seeds(outputs, grad_output, create_graph, "grad()", "grad_outputs")
    if retain_graph is None:
        retain_graph = create_graph
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"grad() inputs must be tensors that require grad, got "
                             f"{t!r:.60}")
    found = backprop(roots, seeds, retain_graph=retain_graph, capture=inputs,
                     create_graph=create_graph)
    result: list[Tensor | None] = []
    for t in inputs:
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise ValueError(f"an input ({t.name or tuple(t.shape)}) is not used to compute the "
                             "output; pass allow_unused=True to get None for it")
        result.append(g if g is None or isinstance(g, Tensor) else Tensor._wrap(g))
    return result


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None,
             retain_graph: bool | None = None, create_graph: bool = False) -> None:
    """Accumulate the gradients of several outputs into the leaves' ``.grad`` in one backward
    pass (``torch.autograd.backward``): each leaf gets the sum over ``tensors`` of
    v_k^T d tensors_k / d leaf, as if each ``tensors[k].backward(grad_tensors[k])`` ran, but
    walking the shared graph once. ``grad_tensors`` follows ``grad``'s ``grad_outputs`` (None
    only for one-element outputs). Raises as ``grad`` does."""
    roots, seeds = _roots_and_seeds(tensors, grad_tensors, create_graph, "backward()",
                                    "grad_tensors")
    backprop(roots, seeds, retain_graph=create_graph if retain_graph is None else retain_graph,
             create_graph=create_graph)


def _roots_and_seeds(outputs: Any, given: Any, create_graph: bool, fn: str,
                     name: str) -> tuple[tuple, tuple]:
    """The outputs as a tuple of Tensors and a seed for each (an array, or with
    ``create_graph`` a Tensor), checked as ``grad``'s docstring says."""
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
        if (isinstance(given, (list, tuple)) and len(given) == 1
                and (given[0] is None or (isinstance(given[0], (Tensor, np.ndarray))
                                          and given[0].shape == outputs[0].shape))):
            given = given[0]  # PyTorch's spelling for one output: grad_outputs=[v]
        given = (given,)
    elif isinstance(outputs, (list, tuple)):
        outputs = tuple(outputs)
        if not outputs:
            raise ValueError(f"{fn} needs at least one output tensor, got an empty sequence")
        if given is None:
            given = (None,) * len(outputs)
        elif isinstance(given, (list, tuple)):
            if len(given) != len(outputs):
                raise ValueError(f"{fn}: {len(outputs)} outputs but {len(given)} {name}; pass "
                                 "one per output (None for a one-element output)")
        else:
            raise TypeError(f"{fn}: with a sequence of outputs, {name} must be a sequence of the "
                            f"same length, got {type(given).__name__}")
    else:
        raise TypeError(f"{fn} needs a Tensor or a sequence of Tensors as outputs, got "
                        f"{type(outputs).__name__}")
    seeds = []
    for k, (out, v) in enumerate(zip(outputs, given, strict=True)):
        which = "" if len(outputs) == 1 else f" {k}"
        if not isinstance(out, Tensor):
            raise TypeError(f"{fn}: output{which} must be a Tensor, got {type(out).__name__}")
        if not out.requires_grad:
            raise ValueError(f"{fn} needs output tensors that require grad; output{which} "
                             "never requires grad (no input of its graph had requires_grad=True, "
                             "or it was made under no_grad)")
        if v is None:
            if out.size != 1:
                raise ValueError(f"{fn}: output{which} has shape {out.shape}; a seed may be "
                                 f"omitted only for a scalar (one-element) output: pass {name}")
            seed = np.ones(out.shape, dtype=out.dtype)
        else:
            seed = np.array(_value(v), dtype=out.dtype)
            if seed.shape != out.shape:
                raise ValueError(f"{fn}: the seed for output{which} has shape {seed.shape}, "
                                 f"expected the output's shape {out.shape}")
        seeds.append(_seed_tensor(v, seed) if create_graph else seed)
    return outputs, tuple(seeds)


# --- creation ------------------------------------------------------------------------------

def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None,
           name: str | None = None) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (float64 for Python floats, as NumPy).

    A list or tuple holding a Tensor that requires grad is a ``TypeError``: the copy would be a
    leaf with the gradient path cut (``cr.stack`` keeps it).
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def _contains_grad(seq: Any) -> bool:
    return any((isinstance(v, Tensor) and v.requires_grad)
               or (isinstance(v, (list, tuple)) and _contains_grad(v)) for v in seq)


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A tensor sharing memory with ``array`` (no copy), as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects an np.ndarray, got {type(array).__name__}")
    t = Tensor._wrap(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _shape_arg(shape: Sequence[Any]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"shape must be non-negative integers, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def zeros(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape: Any, fill_value: Scalar, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    shape = _shape_arg((shape,) if isinstance(shape, (int, np.integer)) else (shape,))
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor | np.ndarray, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(_value(t)), requires_grad=requires_grad)


def ones_like(t: Tensor | np.ndarray, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(_value(t)), requires_grad=requires_grad)


def arange(start: Scalar, stop: Scalar | None = None, step: Scalar = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    values = np.arange(start, stop, step, dtype=dtype) if stop is not None else np.arange(start, dtype=dtype)
    return Tensor(values, requires_grad=requires_grad)


RNG = np.random.Generator | int | None


def _generator(rng: RNG) -> np.random.Generator:
    """``rng`` as a Generator: itself, or ``np.random.default_rng(seed)`` for an int or None.
    The one place randomness is resolved (randn/rand, nn initialisation, dropout)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def randn(*shape: Any, rng: np.random.Generator | int | None = None, dtype: Any = np.float64,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples, drawn from ``rng`` (a Generator or a seed)."""
    values = _generator(rng).standard_normal(_shape_arg(shape)).astype(dtype, copy=False)
    return Tensor._wrap(values).requires_grad_(requires_grad)


def rand(*shape: Any, rng: np.random.Generator | int | None = None, dtype: Any = np.float64,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1), drawn from ``rng`` (a Generator or a seed)."""
    values = _generator(rng).random(_shape_arg(shape)).astype(dtype, copy=False)
    return Tensor._wrap(values).requires_grad_(requires_grad)


# --- functions (the same ops as the methods, in NumPy's spelling) -----------------------------

def exp(x: Any) -> Tensor:
    return apply(ops.exp, x)


def log(x: Any) -> Tensor:
    return apply(ops.log, x)


def sqrt(x: Any) -> Tensor:
    return apply(ops.sqrt, x)


def abs(x: Any) -> Tensor:  # noqa: A001 (NumPy's name)
    return apply(ops.absolute, x)


def maximum(a: Any, b: Any) -> Tensor:
    return apply(ops.maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return apply(ops.minimum, a, b)


def where(condition: Any, a: Any = None, b: Any = None) -> Any:
    """``a`` where ``condition`` holds, else ``b`` (``np.where``). With only ``condition``:
    the indices where it holds, as arrays (``np.nonzero``; no gradient)."""
    if a is None and b is None:
        return np.nonzero(np.asarray(_value(condition)))
    return apply(ops.where, np.asarray(_value(condition), dtype=bool), a, b)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    if min is None and max is None:
        raise ValueError("clip needs min, max or both; got neither")
    return apply(ops.clip, x, lo=_weak(_value(min)), hi=_weak(_value(max)))


def matmul(a: Any, b: Any) -> Tensor:
    return apply(ops.matmul, a, b)


def sum(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    if dtype is None:
        return apply(ops.sum_, x, axis=_axis(axis), keepdims=keepdims)
    return apply(ops.sum_, x, axis=_axis(axis), keepdims=keepdims, dtype=np.dtype(dtype))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return apply(ops.mean, x, axis=_axis(axis), keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply(ops.amax, x, axis=_axis(axis), keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply(ops.amin, x, axis=_axis(axis), keepdims=keepdims)


def reshape(x: Any, shape: Any) -> Tensor:
    return apply(ops.reshape, x, shape=tuple(shape) if isinstance(shape, list) else shape)


def transpose(x: Any, axes: Any = None) -> Tensor:
    return apply(ops.transpose, x, axes=None if axes is None else tuple(axes))


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    return apply(ops.swapaxes, x, axis1=axis1, axis2=axis2)


def expand_dims(x: Any, axis: Any) -> Tensor:
    return apply(ops.expand_dims, x, axis=_axis(axis))


def squeeze(x: Any, axis: Any = None) -> Tensor:
    return apply(ops.squeeze, x, axis=_axis(axis))


def broadcast_to(x: Any, shape: Any) -> Tensor:
    return apply(ops.broadcast_to, x, shape=tuple(shape))


def concatenate(tensors: Iterable[Any], axis: int = 0) -> Tensor:
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("concatenate needs at least one tensor, got none")
    return apply(ops.concatenate, *tensors, axis=axis)


def stack(tensors: Iterable[Any], axis: int = 0) -> Tensor:
    tensors = tuple(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor, got none")
    return apply(ops.stack, *tensors, axis=axis)


# --- NumPy's functions on Tensors: the dispatch tables (numpy_dispatch.py) --------------------
# Differentiable ufuncs route to the ops above; comparisons give
# Tensors that carry no gradient (their derivative is 0 wherever it exists); shape queries give
# what NumPy gives. Each is what a VJP written in NumPy needs to run on Tensors.

def add(a: Any, b: Any) -> Tensor:
    return apply(ops.add, a, b)


def subtract(a: Any, b: Any) -> Tensor:
    return apply(ops.sub, a, b)


def multiply(a: Any, b: Any) -> Tensor:
    return apply(ops.mul, a, b)


def divide(a: Any, b: Any) -> Tensor:
    return apply(ops.div, a, b)


def negative(a: Any) -> Tensor:
    return apply(ops.neg, a)


def power(a: Any, b: Any) -> Tensor:
    return apply(ops.power, a, b)


for _np_func, _ours in ((np.add, add), (np.subtract, subtract), (np.multiply, multiply),
                        (np.true_divide, divide), (np.negative, negative), (np.power, power),
                        (np.exp, exp), (np.log, log), (np.sqrt, sqrt), (np.absolute, abs),
                        (np.maximum, maximum), (np.minimum, minimum), (np.matmul, matmul),
                        (np.positive, lambda a: a)):
    implements(_np_func)(_ours)


def _no_gradient(ufunc: np.ufunc) -> Any:
    def call(*inputs: Any) -> Tensor:
        return Tensor._wrap(np.asarray(ufunc(*(_weak(_value(a)) for a in inputs))))
    call.__qualname__ = call.__name__ = f"no_gradient_{ufunc.__name__}"
    return call


# (np.sign and the logical ufuncs are chainrule.numpy_api's: sign is a primitive there.)
for _ufunc in (np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal):
    implements(_ufunc)(_no_gradient(_ufunc))


def _np_reduction(ours: Any) -> Any:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
             keepdims: bool = False, **rest: Any) -> Tensor:
        if out is not None or rest or (dtype is not None and ours is not sum):
            raise TypeError(f"numpy.{ours.__name__} on a Tensor takes axis and keepdims only "
                            f"(got out={out!r}, dtype={dtype!r}, {sorted(rest)})")
        return ours(a, axis, keepdims) if dtype is None else ours(a, axis, keepdims, dtype)
    call.__qualname__ = call.__name__ = f"numpy_{ours.__name__}"
    return call


def _np_extremum(ours: Any) -> Any:
    def call(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, **rest: Any) -> Tensor:
        if out is not None or rest:
            raise TypeError(f"numpy.{ours.__name__} on a Tensor takes axis and keepdims only")
        return ours(a, axis, keepdims)
    call.__qualname__ = call.__name__ = f"numpy_{ours.__name__}"
    return call


implements(np.sum)(_np_reduction(sum))
implements(np.mean)(_np_reduction(mean))
implements(np.max, np.amax)(_np_extremum(max))
implements(np.min, np.amin)(_np_extremum(min))
implements(np.reshape)(lambda a, shape=None, **kw: reshape(a, kw.get("newshape", shape)))
implements(np.transpose)(transpose)
implements(np.swapaxes)(swapaxes)
implements(np.expand_dims)(expand_dims)
implements(np.squeeze)(squeeze)
implements(np.broadcast_to)(lambda array, shape, subok=False: broadcast_to(array, shape))
implements(np.concatenate)(lambda arrays, axis=0: concatenate(arrays, axis))
implements(np.stack)(lambda arrays, axis=0: stack(arrays, axis))
implements(np.where)(where)
implements(np.clip)(lambda a, a_min=None, a_max=None, **kw: clip(a, kw.get("min", a_min),
                                                                  kw.get("max", a_max)))


@implements(np.broadcast_arrays)
def broadcast_arrays(*args: Any) -> tuple[Tensor, ...]:
    """The arguments broadcast to one shape (``np.broadcast_arrays``), differentiably."""
    shape = np.broadcast_shapes(*(np.shape(_value(a)) for a in args))
    return tuple(broadcast_to(a, shape) for a in args)


# Queries: what NumPy answers for the data (no gradient flows through a shape or a dtype).
implements(np.shape)(lambda a: np.shape(_value(a)))
implements(np.ndim)(lambda a: np.ndim(_value(a)))
implements(np.size)(lambda a, axis=None: np.size(_value(a), axis))
implements(np.result_type)(lambda *args: np.result_type(*(_weak(_value(a)) for a in args)))
implements(np.zeros_like)(lambda a, dtype=None, **kw: Tensor._wrap(np.zeros_like(_value(a), dtype)))
implements(np.ones_like)(lambda a, dtype=None, **kw: Tensor._wrap(np.ones_like(_value(a), dtype)))

ops._ON_TENSORS = (Tensor, apply)  # primitives called on Tensors record (ops.Primitive.__call__)
