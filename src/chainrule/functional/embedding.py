"""``embedding``: rows of a weight matrix picked by integer indices (``torch.nn.functional.embedding``).

A ``gather`` of whole rows (``functional/gather.py``), whose VJP adds each output row's gradient
into the row it came from (repeated indices accumulate). Rows at ``padding_idx`` are taken as
constants, so that row never gets a gradient, as in PyTorch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.functional.activations import _as_input
from chainrule.functional.gather import gather
from chainrule.tensor import Tensor, where


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def embedding(input: Any, weight: Any, padding_idx: int | None = None) -> Tensor:  # noqa: A002
    """``weight[input]``: one row of ``weight`` (num_embeddings, embedding_dim) per index.

    ``input``: integer indices of any shape (a Tensor, array or list), each in
    [0, num_embeddings); output shape ``input.shape + (embedding_dim,)``, weight's dtype.
    ``padding_idx`` (negative counts from the end): that row is returned as it is but gets no
    gradient, as in PyTorch. (PyTorch's ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are
    not supported.) Raises ``TypeError`` for non-integer indices and ``ValueError`` for indices
    or a ``padding_idx`` out of range, or a weight that is not 2-D.
    """
    fn = "embedding"
    w = _as_input(weight, f"{fn}: weight")
    ws = _shape(w)
    if len(ws) != 2:
        raise ValueError(f"{fn}: weight must be 2-D (num_embeddings, embedding_dim), got shape {ws}")
    idx = np.asarray(input.data if isinstance(input, Tensor) else input)
    if idx.dtype.kind not in "iu" and not (idx.size == 0 and idx.dtype.kind == "f"):
        raise TypeError(f"{fn}: indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.intp, copy=False)
    v, dim = ws
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(f"{fn}: index {int(bad)} is out of range for {v} embeddings (weight shape {ws})")
    flat = idx[..., None] * dim + np.arange(dim, dtype=np.intp)
    rows = gather(w, flat)
    if padding_idx is None:
        return rows
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
            or not -v <= padding_idx < v:
        raise ValueError(f"{fn}: padding_idx must be an int in [-{v}, {v}), got {padding_idx!r}")
    pad_row = int(padding_idx) % v
    mask = (idx == pad_row)[..., None]
    if not mask.any():
        return rows
    constant = (w.data if isinstance(w, Tensor) else w)[pad_row]  # no graph: no gradient
    return where(mask, np.broadcast_to(constant, rows.shape), rows)
