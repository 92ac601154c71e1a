"""``dropout``: inverted dropout, ``torch.nn.functional.dropout`` with a reproducible generator."""
from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.functional.activations import _as_input
from chainrule.tensor import RNG, Tensor, _generator


def dropout(input: Any, p: float = 0.5, training: bool = True, *, rng: RNG = None) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout,
    Srivastava et al. 2014, as ``torch.nn.functional.dropout``); the identity when
    ``training=False`` or ``p == 0``.

    The keep-mask is drawn from ``rng`` (a ``numpy.random.Generator``, an int seed or None for
    fresh entropy) as ``rng.random(shape) >= p``: the same generator state gives the same mask.
    (PyTorch draws from its global generator instead and has an ``inplace`` flag; chainrule
    never works in place here.) The mask is a constant of the graph, so the gradient is
    ``g * mask``. Keeps the dtype. Raises ``ValueError`` for ``p`` outside [0, 1].
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")
    x = _as_input(input, "dropout: input")
    if not isinstance(x, Tensor):
        x = Tensor._wrap(x)
    if not training or p == 0:
        return x
    gen = _generator(rng)
    dtype = x.dtype
    if p == 1:
        mask = np.zeros(x.shape, dtype=dtype)
    else:
        mask = (gen.random(x.shape) >= p).astype(dtype) / dtype.type(1.0 - p)
    return x * mask
