"""Max and average pooling (PyTorch's ``max_pool1d/2d``, ``avg_pool1d/2d``), no Python loops.

- Max pooling finds each window's arg-max over a ``sliding_window_view`` of the input padded
  with -inf (the first maximum in row-major window order wins a tie, as in PyTorch, whose
  backward sends the whole gradient to that one element) and then *gathers* those elements:
  ``gather(x, index)``, a primitive whose VJP is a scatter-add (``np.bincount``), itself a
  primitive whose VJP is the gather (``functional/gather.py``). Overlapping windows that pick
  the same element add their gradients there.
- Average pooling is a depthwise convolution with a kernel of ones (``conv.py``'s primitive,
  groups = channels) divided by each window's count, so its derivatives of every order are
  the convolution's.

Output size per spatial axis (PyTorch's): ``(L + 2p - dilation*(k-1) - 1) / stride + 1``,
rounded down, or up with ``ceil_mode=True``, in which case a last window that would start in
the right padding is dropped.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.functional.activations import _as_input
from chainrule.functional.conv import _as_batch, _ints, _pad, _shape, _unbatch, conv_prim, windows
from chainrule.functional.gather import gather
from chainrule.tensor import Tensor, apply

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)"}


def _geometry(fn: str, shape: tuple[int, ...], d: int, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, half_of: str) -> tuple:
    """Kernel, stride, dilation, (before, after) padding and output size per spatial axis.

    ``after`` includes the extra right padding a ``ceil_mode`` window reaches into.
    """
    kernel = _ints(fn, "kernel_size", kernel_size, d, 1)
    stride_ = kernel if stride is None or stride == () or stride == [] else _ints(fn, "stride", stride, d, 1)
    pad = _ints(fn, "padding", padding, d, 0)
    dil = _ints(fn, "dilation", dilation, d, 1)
    pads, out = [], []
    for i in range(d):
        span = dil[i] * (kernel[i] - 1) + 1
        size = span if half_of == "span" else kernel[i]
        if pad[i] > size / 2:
            raise ValueError(f"{fn}: padding {pad[i]} must be at most half the kernel "
                             f"({'dilated ' if half_of == 'span' else ''}size {size}), as in "
                             f"PyTorch; got padding={padding!r}, kernel_size={kernel_size!r}")
        length = shape[2 + i]
        room = length + 2 * pad[i] - span
        n = (-(-room // stride_[i]) if ceil_mode else room // stride_[i]) + 1
        if ceil_mode and (n - 1) * stride_[i] >= length + pad[i]:
            n -= 1  # the last window would start in the right padding: PyTorch drops it
        if room < 0 or n < 1:
            raise ValueError(f"{fn}: kernel_size {kernel} (dilated span {span}) does not fit the "
                             f"input of shape {shape} with padding {pad} (output size would be {n})")
        pads.append((pad[i], max(pad[i], (n - 1) * stride_[i] + span - length - pad[i])))
        out.append(n)
    return kernel, stride_, dil, tuple(pads), tuple(out)


def _max_index(x: np.ndarray, kernel, stride, dil, pads, out) -> np.ndarray:
    """For each window, the flat index (over H*W of its channel) of its first maximum."""
    d = len(kernel)
    n, c = x.shape[:2]
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    view = windows(_pad(x, pads, low), kernel, stride, dil)  # (N, C, *out, *kernel)
    best = view.reshape(n, c, *out, math.prod(kernel)).argmax(axis=-1)  # a copy: windows overlap
    offsets = np.unravel_index(best, kernel)
    flat = np.zeros(best.shape, dtype=np.intp)
    for i in range(d):  # over the (1 or 2) spatial axes, not over positions
        starts = np.arange(out[i]) * stride[i] - pads[i][0]
        starts = starts.reshape((out[i],) + (1,) * (d - 1 - i))
        coord = starts + offsets[i] * dil[i]
        # A window of -inf only (all real values -inf) may pick a padding cell: keep it inside.
        np.clip(coord, 0, x.shape[2 + i] - 1, out=coord)
        flat = flat * x.shape[2 + i] + coord
    return flat


def _max_pool(d: int, input: Any, kernel_size: Any, stride: Any, padding: Any,  # noqa: A002
              dilation: Any, ceil_mode: bool, return_indices: bool) -> Any:
    fn = f"max_pool{d}d"
    x = _as_input(input, f"{fn}: input")
    x, added = _as_batch(fn, x, d, _LAYOUTS[d])
    xs = _shape(x)
    kernel, stride_, dil, pads, out = _geometry(fn, xs, d, kernel_size, stride, padding, dilation,
                                                bool(ceil_mode), "span")
    data = x.data if isinstance(x, Tensor) else x
    spatial = _max_index(data, kernel, stride_, dil, pads, out)
    plane = math.prod(xs[2:])
    channel = np.arange(xs[0] * xs[1], dtype=np.intp).reshape(xs[0], xs[1], *(1,) * d) * plane
    y = _unbatch(gather(x, channel + spatial), added)
    if not return_indices:
        return y
    indices = spatial[0] if added else spatial
    return y, Tensor._wrap(indices.astype(np.int64, copy=False))


def max_pool1d(input: Any, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,  # noqa: A002
               padding: int | tuple[int] = 0, dilation: int | tuple[int] = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-D max pooling, ``torch.nn.functional.max_pool1d``: input (N, C, L) or (C, L).

    As ``max_pool2d`` with one spatial axis.
    """
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Any, kernel_size: int | tuple[int, int],  # noqa: A002
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               dilation: int | tuple[int, int] = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """2-D max pooling, ``torch.nn.functional.max_pool2d``'s signature and result.

    input (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out) with
    ``H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1`` (rounded up with
    ``ceil_mode``). ``stride`` defaults to ``kernel_size``; padding (at most half the dilated
    kernel, as PyTorch requires) counts as -inf. The gradient goes to the first maximum of each
    window in row-major order, as in PyTorch. ``return_indices=True`` also returns each
    maximum's flat index within its H*W plane (int64, PyTorch's convention). Keeps the dtype.
    Raises ``ValueError`` for a kernel, stride or padding that does not fit the input.
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _counts(length: int, k: int, s: int, pad: tuple[int, int], out: int, lo: int, hi: int) -> np.ndarray:
    """How many of each window's cells lie in [lo, hi) of the padded axis (length + both pads)."""
    mask = np.zeros(length + pad[0] + pad[1])
    mask[lo:hi] = 1
    return np.lib.stride_tricks.sliding_window_view(mask, k)[::s][:out].sum(axis=-1)


def _avg_pool(d: int, input: Any, kernel_size: Any, stride: Any, padding: Any,  # noqa: A002
              ceil_mode: bool, count_include_pad: bool, divisor_override: Any) -> Tensor:
    fn = f"avg_pool{d}d"
    x = _as_input(input, f"{fn}: input")
    x, added = _as_batch(fn, x, d, _LAYOUTS[d])
    xs = _shape(x)
    kernel, stride_, dil, pads, out = _geometry(fn, xs, d, kernel_size, stride, padding, 1,
                                                bool(ceil_mode), "kernel")
    dtype = x.dtype
    ones = np.ones((xs[1], 1, *kernel), dtype=dtype)
    sums = apply(conv_prim, x, ones, stride=stride_, padding=pads, dilation=dil, groups=xs[1])
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)) \
                or divisor_override <= 0:
            raise ValueError(f"{fn}: divisor_override must be a positive int, got {divisor_override!r}")
        divisor = np.asarray(divisor_override, dtype=dtype)
    else:
        # PyTorch's divisor: the window's cells within the input and its declared padding
        # (count_include_pad=True) or within the input alone, never the ceil_mode overhang.
        divisor = np.ones((), dtype=dtype)
        for i in range(d):
            p, length = pads[i][0], xs[2 + i]
            lo, hi = (0, length + 2 * p) if count_include_pad else (p, p + length)
            c = _counts(length, kernel[i], stride_[i], pads[i], out[i], lo, hi)
            divisor = divisor * c.astype(dtype).reshape((out[i],) + (1,) * (d - 1 - i))
    return _unbatch(sums / divisor, added)


def avg_pool1d(input: Any, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,  # noqa: A002
               padding: int | tuple[int] = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling, ``torch.nn.functional.avg_pool1d``: as ``avg_pool2d`` with one axis."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Any, kernel_size: int | tuple[int, int],  # noqa: A002
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """2-D average pooling, ``torch.nn.functional.avg_pool2d``'s signature and result.

    input (N, C, H, W) or (C, H, W) -> (N, C, H_out, W_out), sizes as ``max_pool2d``'s (no
    dilation). Zero padding (at most half the kernel) is counted in the divisor when
    ``count_include_pad`` (the default), not otherwise; cells a ``ceil_mode`` window reaches
    beyond the padding never count; ``divisor_override`` replaces the divisor. Computed as a
    depthwise convolution with a kernel of ones, divided by the count. Keeps the dtype.
    """
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
