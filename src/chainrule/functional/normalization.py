"""Batch and layer normalisation (``torch.nn.functional.batch_norm`` / ``layer_norm``).

Both are *compositions* of the engine's differentiable operations (mean, subtract, multiply,
sqrt, divide), not fused primitives: their gradients, and gradients of gradients, come from the
engine's rules for those operations, so there is no second hand-written backward to get wrong.
The variance is the two-pass form mean((x - mean(x))^2): no cancellation, unlike
E[x^2] - E[x]^2, which loses every digit when the mean is large against the spread.

    y = (x - mean) / sqrt(var + eps) * weight + bias        (Ioffe & Szegedy, 2015; Ba et al., 2016)

``var`` is the biased (divide by n) variance, as in PyTorch; batch norm's running variance is
updated with the unbiased one (n / (n - 1) times it), also as PyTorch does.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.functional.activations import _as_input
from chainrule.tensor import Tensor


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._wrap(x)


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def _data(a: Any) -> np.ndarray:
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def _normalise(x: Tensor, axes: tuple[int, ...], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(x - mean) / sqrt(var + eps) over ``axes``, with the mean and biased variance (keepdims)."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / (var + eps).sqrt(), mean, var


def _affine(y: Tensor, weight: Any, bias: Any, shape: tuple[int, ...]) -> Tensor:
    if weight is not None:
        y = y * _tensor(_as_input(weight)).reshape(shape)
    if bias is not None:
        y = y + _tensor(_as_input(bias)).reshape(shape)
    return y


def _check_vector(fn: str, name: str, value: Any, c: int, input_shape: tuple[int, ...]) -> None:
    if value is not None and _shape(value) != (c,):
        raise ValueError(f"{fn}: {name} must have shape ({c},) for input shape {input_shape} "
                         f"({c} channels on axis 1), got shape {_shape(value)}")


def batch_norm(input: Any, running_mean: Any, running_var: Any, weight: Any = None,  # noqa: A002
               bias: Any = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over axis 1, ``torch.nn.functional.batch_norm``'s signature and result.

    input (N, C) or (N, C, *spatial); ``running_mean``/``running_var``, ``weight`` and ``bias``
    have shape (C,) (any may be None; the running statistics may only be None in training).
    In training the batch's per-channel mean and biased variance (over N and the spatial axes)
    normalise, and the running statistics, when given, are updated *in place* as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch``, with the unbiased variance
    (n / (n - 1)). Otherwise the running statistics normalise. The output has the input's
    shape and dtype. Raises ``ValueError`` for shapes that do not fit, and in training for a
    batch with one value per channel (its variance is undefined), as PyTorch does.
    """
    fn = "batch_norm"
    x = _tensor(_as_input(input, f"{fn}: input"))
    xs = _shape(x)
    if len(xs) < 2:
        raise ValueError(f"{fn}: input must be (N, C) or (N, C, *spatial), got shape {xs}")
    c = xs[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _check_vector(fn, name, value, c, xs)
    shape = (c,) + (1,) * (len(xs) - 2)
    axes = (0, *range(2, len(xs)))
    if training:
        n = xs[0] * math.prod(xs[2:])
        if n <= 1:
            raise ValueError(f"{fn}: expected more than 1 value per channel when training, got "
                             f"input shape {xs} ({n} value per channel), as PyTorch requires")
        y, mean, var = _normalise(x, axes, eps)
        for running, batch in ((running_mean, mean.data), (running_var, var.data * (n / (n - 1)))):
            if running is not None:
                buf = _data(running)
                buf *= 1 - momentum
                buf += momentum * batch.reshape(c).astype(buf.dtype, copy=False)
        return _affine(y, weight, bias, shape)
    if running_mean is None or running_var is None:
        raise ValueError(f"{fn}: running_mean and running_var are needed when training=False")
    mean = _data(running_mean).astype(x.dtype, copy=False).reshape(shape)
    inv_std = 1 / np.sqrt(_data(running_var).astype(x.dtype, copy=False).reshape(shape) + eps)
    return _affine((x - mean) * inv_std, weight, bias, shape)


def layer_norm(input: Any, normalized_shape: int | tuple[int, ...], weight: Any = None,  # noqa: A002
               bias: Any = None, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last axes, ``torch.nn.functional.layer_norm``.

    ``normalized_shape`` (an int or a tuple) must equal the input's trailing shape; each sample
    is normalised by the mean and biased variance over those axes, then multiplied by
    ``weight`` and shifted by ``bias`` (both of ``normalized_shape``, or None). Output: the
    input's shape and dtype. Raises ``ValueError`` when the shapes do not fit.
    """
    fn = "layer_norm"
    x = _tensor(_as_input(input, f"{fn}: input"))
    xs = _shape(x)
    ns = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not ns or len(ns) > len(xs) or xs[len(xs) - len(ns):] != ns:
        raise ValueError(f"{fn}: normalized_shape {ns} must be the input's trailing shape; input "
                         f"shape {xs}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and _shape(value) != ns:
            raise ValueError(f"{fn}: {name} must have shape {ns} (normalized_shape), got "
                             f"{_shape(value)}")
    y, _, _ = _normalise(x, tuple(range(len(xs) - len(ns), len(xs))), eps)
    return _affine(y, weight, bias, ns)
