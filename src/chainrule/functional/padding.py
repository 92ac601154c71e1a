"""``pad``: PyTorch's ``torch.nn.functional.pad`` (modes constant, reflect, replicate, circular).

``pad`` lists (before, after) amounts from the *last* axis backwards, as PyTorch does:
``pad(x, (1, 2))`` pads the last axis by 1 before and 2 after, ``pad(x, (1, 2, 3, 4))`` also
the axis before it by 3 and 4. Constant padding is one primitive (``np.pad``) whose VJP cuts
the padding away again; negative amounts crop, as in PyTorch. The other modes read each output
cell from one input cell: an index map built with ``np.pad`` on ``arange`` and a ``gather``
(``functional/gather.py``), whose VJP adds the gradient of every copy back into its source.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.functional.activations import _as_input
from chainrule.functional.gather import gather
from chainrule.ops import primitive
from chainrule.tensor import Tensor, apply

_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_constant(x, pairs, value):
    return np.pad(x, pairs, constant_values=value)


def _pad_constant_vjp(g, ans, x, pairs, value):
    return g[tuple(slice(lo, lo + n) for (lo, _), n in zip(pairs, x.shape, strict=True))]


pad_prim = primitive("pad", _pad_constant, _pad_constant_vjp, latex=r"\operatorname{{pad}}({0})")


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def pad(input: Any, pad: tuple[int, ...] | list[int], mode: str = "constant",  # noqa: A002
        value: float | None = None) -> Tensor:
    """Pad ``input`` as ``torch.nn.functional.pad`` does.

    ``pad`` has an even number of ints, at most two per axis, for the last axes backwards:
    (last_before, last_after, second_last_before, ...). ``mode``: 'constant' (fill with
    ``value``, default 0; negative amounts crop), 'reflect' (mirror without repeating the
    edge; each amount below that axis's size), 'replicate' (repeat the edge) or 'circular'
    (wrap around; amounts at most the size). Keeps the dtype. Raises ``ValueError`` for an
    odd or too long ``pad``, an unknown mode, or amounts the mode cannot take.
    """
    fn = "pad"
    x = _as_input(input, f"{fn}: input")
    xs = _shape(x)
    if (not isinstance(pad, (tuple, list)) or len(pad) % 2
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)):
        raise ValueError(f"{fn}: pad must be an even number of ints (before, after per axis, last "
                         f"axis first), got {pad!r}")
    if len(pad) // 2 > len(xs):
        raise ValueError(f"{fn}: pad {tuple(pad)} covers {len(pad) // 2} axes, the input has only "
                         f"{len(xs)} (shape {xs})")
    if mode not in _MODES:
        raise ValueError(f"{fn}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    k = len(pad) // 2
    pairs = [(0, 0)] * (len(xs) - k) + [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(k))]
    if mode == "constant":
        if any(lo < 0 or hi < 0 for lo, hi in pairs):  # crop first, as PyTorch does
            crop = tuple(slice(max(0, -lo), n - max(0, -hi)) for (lo, hi), n in zip(pairs, xs, strict=True))
            if any(s.stop <= s.start for s in crop):
                raise ValueError(f"{fn}: negative pad {tuple(pad)} removes the whole of an axis of "
                                 f"input shape {xs}")
            x = x[crop] if isinstance(x, Tensor) else Tensor._wrap(x)[crop]
            pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
        fill = 0 if value is None else value
        return apply(pad_prim, x, pairs=tuple(pairs), value=fill)
    if value not in (None, 0, 0.0):
        raise ValueError(f"{fn}: value is for mode='constant' only, got value={value!r} with mode={mode!r}")
    for (lo, hi), n in zip(pairs, xs, strict=True):
        if lo < 0 or hi < 0:
            raise ValueError(f"{fn}: mode {mode!r} takes no negative amounts, got pad {tuple(pad)}")
        if mode == "reflect" and max(lo, hi) >= n and (lo or hi):
            raise ValueError(f"{fn}: reflect padding must be smaller than the axis it pads: pad "
                             f"{tuple(pad)} for input shape {xs}")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"{fn}: circular padding must be at most the size of the axis it pads: "
                             f"pad {tuple(pad)} for input shape {xs}")
        if mode == "replicate" and n == 0 and (lo or hi):
            raise ValueError(f"{fn}: cannot replicate-pad an empty axis (input shape {xs})")
    index = np.pad(np.arange(math.prod(xs), dtype=np.intp).reshape(xs), pairs, mode=_MODES[mode])
    return gather(x, index)
