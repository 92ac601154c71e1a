"""Tensor: a NumPy array that remembers how it was made, and the functions that make tensors.

Every differentiable operation goes through ``apply(primitive, *args)``, which runs the
primitive's NumPy forward and, when a gradient is needed, records a ``Node``. The Tensor
class itself holds no derivative code: the math is in ``ops.py`` (and ``functional/``).
"""
from __future__ import annotations

import os
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule import ops
from chainrule.autodiff import Node, _Anomaly, _check_finite, _GradMode, backprop

Scalar = int | float | bool | np.number
ArrayLike = Any  # anything np.asarray accepts, or a Tensor


class Tensor:
    """An ``np.ndarray`` (``.data``) with an optional gradient (``.grad``) and graph node."""

    __slots__ = ("data", "grad", "requires_grad", "name", "_node", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer ``ndarray op Tensor`` to the Tensor's methods

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
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
        if dtype is None and not copy:
            return self.data
        return self.data.astype(self.data.dtype if dtype is None else dtype, copy=bool(copy))

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

    def backward(self, gradient: ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``gradient`` seeds non-scalars)."""
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
        backprop(self, seed, retain_graph=retain_graph)

    # --- arithmetic -----------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return apply(ops.add, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return apply(ops.add, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return apply(ops.sub, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return apply(ops.sub, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return apply(ops.mul, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return apply(ops.mul, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return apply(ops.div, self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return apply(ops.div, other, self)

    def __pow__(self, other: Any) -> Tensor:
        return apply(ops.power, self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return apply(ops.power, other, self)

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

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply(ops.sum_, self, axis=_axis(axis), keepdims=keepdims)

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

    def astype(self, dtype: Any) -> Tensor:
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


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _index(index: Any) -> Any:
    """Tensors inside an index become arrays; lists become integer/boolean arrays."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index) if index else np.zeros(0, dtype=np.intp)  # [] selects nothing
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
        if isinstance(a, Tensor):
            arrays.append(a.data)
            parents.append(a)
            needed = needed or a.requires_grad
        else:
            arrays.append(_weak(a))
            parents.append(None)
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
    node = Node(prim, tuple(parents), tuple(arrays), kwargs, residual)
    result = Tensor._wrap(out, node)
    if _Anomaly.enabled:
        node.trace = _user_frame()
        _check_finite(out, result, "forward result")
    return result


# The package's own directory: a user's file may well sit under another path named chainrule.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame() -> str:
    """The innermost stack frame outside chainrule: where the user's code made the op."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def grad(output: Tensor, inputs: Sequence[Tensor], grad_output: ArrayLike | None = None,
         retain_graph: bool = False, allow_unused: bool = False) -> list[Tensor | None]:
    """d(output)/d(input) for each input, without touching any ``.grad`` (``torch.autograd.grad``).

    Inputs may be intermediate tensors of the graph, not only leaves.
    """
    if not isinstance(output, Tensor) or not output.requires_grad:
        raise ValueError("grad() needs an output tensor that requires grad")
    if grad_output is None:
        if output.size != 1:
            raise ValueError(f"grad() without grad_output needs a scalar output, got shape {output.shape}")
        seed = np.ones(output.shape, dtype=output.dtype)
    else:
        seed = np.array(_value(grad_output), dtype=output.dtype)
        if seed.shape != output.shape:
            raise ValueError(f"grad_output has shape {seed.shape}, expected {output.shape}")
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"grad() inputs must be tensors that require grad, got "
                             f"{t!r:.60}")
    found = backprop(output, seed, retain_graph=retain_graph, capture=inputs)
    result: list[Tensor | None] = []
    for t in inputs:
        g = found.get(id(t))
        if g is None and not allow_unused:
            raise ValueError(f"an input ({t.name or tuple(t.shape)}) is not used to compute the "
                             "output; pass allow_unused=True to get None for it")
        result.append(None if g is None else Tensor._wrap(g))
    return result


# --- creation ------------------------------------------------------------------------------

def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None,
           name: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (float64 for Python floats, as NumPy)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


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


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
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


def where(condition: Any, a: Any, b: Any) -> Tensor:
    return apply(ops.where, np.asarray(_value(condition), dtype=bool), a, b)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    if min is None and max is None:
        raise ValueError("clip needs min, max or both; got neither")
    return apply(ops.clip, x, lo=_weak(_value(min)), hi=_weak(_value(max)))


def matmul(a: Any, b: Any) -> Tensor:
    return apply(ops.matmul, a, b)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply(ops.sum_, x, axis=_axis(axis), keepdims=keepdims)


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
