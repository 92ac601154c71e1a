"""Convolution (PyTorch's ``conv1d``, ``conv2d``, ``conv3d``) as three fused primitives.

Like PyTorch (and every deep-learning library) "convolution" here is cross-correlation:
``y[n, o, p] = b[o] + sum_{c, j} x_pad[n, g(o)*C/G + c, p*stride + j*dilation] * w[o, c, j]``
for ``x`` of shape (N, C, *spatial), ``w`` of shape (O, C/groups, *kernel) and ``groups`` G
(``torch.nn.functional.conv2d``'s definition and layout).

The forward views every window of the padded input at once with
``numpy.lib.stride_tricks.sliding_window_view`` (no copy), lays the windows out as the rows of
one matrix per group (im2col) and multiplies by the weight matrix: one BLAS product, no Python
loop over positions. The two gradients are primitives of their own, so the backward pass can
itself be differentiated (``create_graph=True``):

- ``conv_input_grad(g, w)``: dL/dx, the transposed convolution: ``g`` spread out by the stride
  (stride - 1 zeros between its entries), padded by ``dilation*(k-1)`` on each side and
  correlated with the weight flipped in space and with in/out channels swapped in each group;
- ``conv_weight_grad(x, g)``: dL/dw, the windows of ``x`` times ``g``, one product per group.

The three are closed under differentiation: the adjoint of ``conv(., w)`` is
``conv_input_grad(., w)``, and of ``conv(x, .)`` is ``conv_weight_grad(x, .)``, so each one's
VJPs are the other two (derivation in ``_conv_input_grad_vjps``). Every VJP calls them through
``_dispatch.call``: plain NumPy on arrays, recorded on the graph on Tensors.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.functional._dispatch import call
from chainrule.functional.activations import _as_input
from chainrule.ops import primitive
from chainrule.tensor import Tensor, apply

Pairs = tuple[tuple[int, int], ...]


# --- the NumPy kernels ----------------------------------------------------------------------

def _pad(x: np.ndarray, padding: Pairs, value: float = 0.0) -> np.ndarray:
    """``x`` with ``padding[i] = (before, after)`` added to spatial axis i (axes 2, 3, ...)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    # A filled array and one slice assignment: np.pad costs ~4x as much for these small images.
    shape = (*x.shape[:2], *(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding, strict=True)))
    out = np.full(shape, value, dtype=x.dtype)
    inside = (slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], padding, strict=True))
    out[(slice(None), slice(None), *inside)] = x
    return out


def windows(xp: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...],
            dilation: tuple[int, ...]) -> np.ndarray:
    """Every window of the (already padded) ``xp`` (N, C, *L): a view of shape (N, C, *out, *kernel).

    ``out[i] = (L[i] - dilation[i]*(kernel[i]-1) - 1) // stride[i] + 1``, PyTorch's output size.
    """
    d = len(kernel)
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation, strict=True))
    view = sliding_window_view(xp, span, axis=tuple(range(2, 2 + d)))
    index = ((slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)
             + tuple(slice(None, None, dl) for dl in dilation))
    return view[index]


def _columns(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...], padding: Pairs,
             dilation: tuple[int, ...], groups: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """im2col: the windows of padded ``x`` as a (groups, C/groups*prod(kernel), N*prod(out)) array.

    Window cells run down the rows and positions along the columns: copying the strided
    windows view in this order keeps the innermost loop along the image's own rows, 5x faster
    than positions-by-cells (measured on a (64, 16, 10, 10) input with a 3 x 3 kernel).
    """
    d = len(kernel)
    n, c = x.shape[:2]
    view = windows(_pad(x, padding), kernel, stride, dilation)
    out = view.shape[2:2 + d]
    view = view.reshape(n, groups, c // groups, *out, *kernel)
    # (N, G, C/G, *out, *k) -> (G, C/G, *k, N, *out)
    view = view.transpose(1, 2, *range(3 + d, 3 + 2 * d), 0, *range(3, 3 + d))
    return view.reshape(groups, (c // groups) * math.prod(kernel), n * math.prod(out)), out


def _conv(x, w, b=None, *, stride, padding, dilation, groups):
    d = x.ndim - 2
    kernel = w.shape[2:]
    cols, out = _columns(x, kernel, stride, padding, dilation, groups)
    n, o = x.shape[0], w.shape[0]
    y = w.reshape(groups, o // groups, -1) @ cols  # (G, O/G, N*prod(out)): one BLAS product per group
    y = y.reshape(o, n, *out).swapaxes(0, 1)
    if b is None:
        return np.ascontiguousarray(y)
    result = np.empty(y.shape, dtype=np.result_type(y, b))
    np.add(y, b.reshape(o, *(1,) * d), out=result)  # the copy to (N, O, *out) and the bias in one
    return result


def _conv_weight_grad(x, g, *, w_shape, stride, padding, dilation, groups):
    kernel = tuple(w_shape[2:])
    cols, out = _columns(x, kernel, stride, padding, dilation, groups)
    n, o = g.shape[:2]
    gm = g.swapaxes(0, 1).reshape(groups, o // groups, -1)  # (G, O/G, N*prod(out)), as cols' columns
    return (gm @ cols.swapaxes(1, 2)).reshape(w_shape)


def _conv_input_grad(g, w, *, x_shape, stride, padding, dilation, groups):
    d = g.ndim - 2
    kernel = w.shape[2:]
    n, o = g.shape[:2]
    out = g.shape[2:]
    if any(s > 1 for s in stride):  # spread g out: stride - 1 zeros between its entries
        spread = np.zeros((n, o, *((m - 1) * s + 1 for m, s in zip(out, stride, strict=True))),
                          dtype=g.dtype)
        spread[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = g
        g = spread
    c = x_shape[1]
    # The weight with in/out channels swapped within each group and flipped in space.
    flipped = w.reshape(groups, o // groups, c // groups, *kernel).swapaxes(1, 2)
    flipped = flipped.reshape(c, o // groups, *kernel)[(Ellipsis, *(slice(None, None, -1),) * d)]
    # Input position i (padded: i + before) gets the "full" correlation of g at i + before: pad
    # g by dilation*(k-1) - before on the left and by whatever makes the output the input's
    # length on the right; a negative amount crops instead (padding larger than the kernel,
    # or positions the stride never reached, which get 0 from the zero padding).
    pairs, crop = [], []
    for i, (k, dl, (before, _)) in enumerate(zip(kernel, dilation, padding, strict=True)):
        left = dl * (k - 1) - before
        right = x_shape[2 + i] + dl * (k - 1) - g.shape[2 + i] - left
        pairs.append((max(left, 0), max(right, 0)))
        crop.append(slice(max(-left, 0), g.shape[2 + i] - max(-right, 0)))
    g = g[(slice(None), slice(None), *crop)]
    return _conv(g, flipped, stride=(1,) * d, padding=tuple(pairs), dilation=dilation, groups=groups)


# --- the primitives and their VJPs ------------------------------------------------------------

def _params(kw: dict) -> dict:
    return {k: kw[k] for k in ("stride", "padding", "dilation", "groups")}


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if isinstance(a, (np.ndarray, Tensor)) else np.shape(a)


def _conv_vjp_x(g, ans, x, w, b=None, **kw):
    return call(conv_input_grad_prim, g, w, x_shape=_shape(x), **_params(kw))


def _conv_vjp_w(g, ans, x, w, b=None, **kw):
    return call(conv_weight_grad_prim, x, g, w_shape=_shape(w), **_params(kw))


def _conv_vjp_b(g, ans, x, w, b=None, **kw):
    return g.sum(axis=(0, *range(2, len(_shape(g)))))


conv_prim = primitive("conv", _conv, _conv_vjp_x, _conv_vjp_w, latex=r"{0} \star {1}")
conv_bias_prim = primitive("conv_bias", _conv, _conv_vjp_x, _conv_vjp_w, _conv_vjp_b,
                           latex=r"{0} \star {1} + {2}")


def _conv_input_grad_vjps():
    """dx = IG(g, w) is bilinear. For any dx_bar: <dx_bar, IG(g, w)> = <conv(dx_bar, w), g>
    (IG(., w) is conv(., w)'s adjoint), and as a function of w that equals
    <w, WG(dx_bar, g)>. So d/dg = conv(dx_bar, w) and d/dw = WG(dx_bar, g)."""

    def vjp_g(gg, ans, g, w, *, x_shape, **kw):
        return call(conv_prim, gg, w, **kw)

    def vjp_w(gg, ans, g, w, *, x_shape, **kw):
        return call(conv_weight_grad_prim, gg, g, w_shape=_shape(w), **kw)

    return vjp_g, vjp_w


def _conv_weight_grad_vjps():
    """dw = WG(x, g) is bilinear. For any dw_bar: <dw_bar, WG(x, g)> = <conv(x, dw_bar), g>
    = <x, IG(g, dw_bar)>. So d/dx = IG(g, dw_bar) and d/dg = conv(x, dw_bar)."""

    def vjp_x(gg, ans, x, g, *, w_shape, **kw):
        return call(conv_input_grad_prim, g, gg, x_shape=_shape(x), **kw)

    def vjp_g(gg, ans, x, g, *, w_shape, **kw):
        return call(conv_prim, x, gg, **kw)

    return vjp_x, vjp_g


conv_input_grad_prim = primitive("conv_input_grad", _conv_input_grad, *_conv_input_grad_vjps(),
                                 latex=r"{0} \star^{{\top}} {1}")
conv_weight_grad_prim = primitive("conv_weight_grad", _conv_weight_grad, *_conv_weight_grad_vjps(),
                                  latex=r"{0} \star_{{w}} {1}")


# --- argument checking ---------------------------------------------------------------------------

def _ints(fn: str, name: str, value: Any, d: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``d`` ints, each >= ``minimum``, as a tuple of ``d`` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * d
    elif (isinstance(value, (tuple, list)) and len(value) == d
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        values = tuple(int(v) for v in value)
    else:
        raise ValueError(f"{fn}: {name} must be an int or {d} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return values


def conv_padding(fn: str, padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...]) -> Pairs:
    """PyTorch's ``padding`` (int, ints, 'valid' or 'same') as (before, after) per spatial axis.

    'same' pads ``dilation*(k-1)`` in all, the odd one at the end, as PyTorch does; like
    PyTorch it needs stride 1.
    """
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}: padding='same' needs stride 1 (as in PyTorch), got "
                                 f"stride={stride}")
            total = [dl * (k - 1) for k, dl in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{fn}: padding must be 'valid', 'same', an int or {d} ints, got {padding!r}")
    return tuple((p, p) for p in _ints(fn, "padding", padding, d, 0))


def _as_batch(fn: str, x: Any, d: int, shape: str) -> tuple[Any, bool]:
    """(x with a batch axis, whether one was added): PyTorch also takes one unbatched sample."""
    s = _shape(x)
    if len(s) == d + 1:
        return (x.reshape((1, *s)) if isinstance(x, Tensor) else x.reshape((1, *s))), True
    if len(s) != d + 2:
        raise ValueError(f"{fn}: input must be {d + 1}-D {shape[3:]} or {d + 2}-D {shape} "
                         f"(unbatched or batched), got shape {s}")
    return x, False


def _unbatch(y: Tensor, added: bool) -> Tensor:
    return y.reshape(y.shape[1:]) if added else y


_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_KERNELS = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}


def _convnd(d: int, input: Any, weight: Any, bias: Any, stride: Any, padding: Any,  # noqa: A002
            dilation: Any, groups: int) -> Tensor:
    fn = f"conv{d}d"
    x = _as_input(input, f"{fn}: input")
    w = _as_input(weight, f"{fn}: weight")
    x, added = _as_batch(fn, x, d, _LAYOUTS[d])
    xs, ws = _shape(x), _shape(w)
    if len(ws) != d + 2:
        raise ValueError(f"{fn}: weight must be {d + 2}-D (out_channels, in_channels/groups, "
                         f"{_KERNELS[d]}), got shape {ws}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{fn}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if ws[0] % groups:
        raise ValueError(f"{fn}: out_channels = weight.shape[0] = {ws[0]} is not divisible by "
                         f"groups = {groups} (weight shape {ws})")
    if xs[1] != ws[1] * groups:
        raise ValueError(f"{fn}: input has {xs[1]} channels (shape {xs}), but weight shape {ws} "
                         f"with groups={groups} expects {ws[1]} * {groups} = {ws[1] * groups}")
    stride_ = _ints(fn, "stride", stride, d, 1)
    dilation_ = _ints(fn, "dilation", dilation, d, 1)
    kernel = tuple(ws[2:])
    pads = conv_padding(fn, padding, kernel, stride_, dilation_)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(xs[2:], pads, strict=True))
    span = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation_, strict=True))
    if any(s > p for s, p in zip(span, padded, strict=True)):
        raise ValueError(f"{fn}: kernel of spatial size {kernel} (dilated: {span}) is larger than "
                         f"the padded input {padded} (input shape {xs}, padding {pads})")
    kw = dict(stride=stride_, padding=pads, dilation=dilation_, groups=groups)
    if bias is None:
        return _unbatch(apply(conv_prim, x, w, **kw), added)
    b = _as_input(bias, f"{fn}: bias")
    if _shape(b) != (ws[0],):
        raise ValueError(f"{fn}: bias must have shape ({ws[0]},) for weight shape {ws}, got {_shape(b)}")
    return _unbatch(apply(conv_bias_prim, x, w, b, **kw), added)


def conv1d(input: Any, weight: Any, bias: Any = None, stride: int | tuple[int] = 1,  # noqa: A002
           padding: int | tuple[int] | str = 0, dilation: int | tuple[int] = 1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation), ``torch.nn.functional.conv1d``'s signature and result.

    Shapes: input (N, C_in, L) or unbatched (C_in, L); weight (C_out, C_in/groups, kL);
    bias (C_out,) or None; output (N, C_out, L_out) with
    ``L_out = (L + 2*padding - dilation*(kL-1) - 1) // stride + 1``. ``padding`` is an int or
    'valid' (0) or 'same' (output length L; stride must be 1). The dtype follows NumPy's
    promotion of input and weight (float32 stays float32). Raises ``ValueError`` naming the
    shapes when input, weight, bias, stride, padding or groups do not fit together.
    """
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: int | tuple[int, int] = 1,  # noqa: A002
           padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation), ``torch.nn.functional.conv2d``'s signature and result.

    Shapes: input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_out, C_in/groups, kH, kW);
    bias (C_out,) or None; output (N, C_out, H_out, W_out) with, per spatial axis,
    ``H_out = (H + 2*padding - dilation*(kH-1) - 1) // stride + 1``. ``stride``, ``padding`` and
    ``dilation`` are an int or one int per axis; ``padding`` may also be 'valid' (0) or 'same'
    (output size H x W, the odd pad at the end; stride must be 1). ``groups`` splits the
    channels into independent convolutions (``groups = C_in``: depthwise). The dtype follows
    NumPy's promotion of input and weight (float32 stays float32). Raises ``ValueError``
    naming the shapes when input, weight, bias, stride, padding or groups do not fit together.
    """
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Any, weight: Any, bias: Any = None, stride: int | tuple[int, int, int] = 1,  # noqa: A002
           padding: int | tuple[int, int, int] | str = 0, dilation: int | tuple[int, int, int] = 1,
           groups: int = 1) -> Tensor:
    """3-D convolution, ``torch.nn.functional.conv3d``: as ``conv2d`` with a depth axis
    (input (N, C_in, D, H, W), weight (C_out, C_in/groups, kD, kH, kW))."""
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups)
