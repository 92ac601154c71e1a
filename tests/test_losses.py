"""Losses: every function against gradcheck, HIPS autograd and PyTorch, for each reduction.

Each test is written once and parametrised over the loss cases. The autograd oracle is the
loss written out independently in ``autograd.numpy``; the PyTorch oracle calls torch's own
function with the same reduction and parameters.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_element, reduction):
    if reduction == "none":
        return per_element
    return anp.sum(per_element) if reduction == "sum" else anp.mean(per_element)


@dataclass
class Loss:
    """One loss configuration: how to draw inputs, and the three implementations to compare."""

    label: str
    make: Callable[[np.random.Generator], list[np.ndarray]]
    ours: Callable[..., Any]  # (*args, reduction) -> chainrule Tensor
    auto: Callable[..., Any]  # (*args, reduction) -> per-element loss, reduced, in autograd.numpy
    torch: Callable[..., Any] | None  # (torch module, *args, reduction) -> torch tensor
    diff: tuple[int, ...] = (0,)  # the arguments that get gradients
    reductions: tuple[str | None, ...] = REDUCTIONS  # None: the function takes no reduction
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.label


def _pm1(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def _simplex(rng, shape):
    e = rng.random(shape) + 0.05
    return e / e.sum(axis=-1, keepdims=True)


def _auto_log_softmax(z):
    return z - asp.logsumexp(z, axis=-1, keepdims=True)


def _auto_ce(z, target, reduction, smoothing=0.0, weight=None, ignore_index=-100):
    classes = z.shape[-1]
    w = np.ones(classes) if weight is None else weight
    if target.dtype.kind == "i":  # class indices -> one-hot rows (zero where ignored), in NumPy
        kept = target != ignore_index
        index = np.where(kept, target, 0)
        q = np.eye(classes)[index] * np.expand_dims(kept, -1)
        divisor = np.sum(w[index] * kept)  # PyTorch: the summed weight of the rows' targets
    else:
        kept, q, divisor = None, target, z.shape[0] if z.ndim == 2 else 1
    q = (1 - smoothing) * q + smoothing / classes
    if kept is not None:
        q = q * np.expand_dims(kept, -1)
    per_row = -anp.sum(q * w * _auto_log_softmax(z), axis=-1)
    return anp.sum(per_row) / divisor if reduction == "mean" else _reduce(per_row, reduction)


def _auto_ce_positions(z, target, reduction, smoothing=0.0, weight=None, ignore_index=-100):
    """(N, C, d...) scores: the class axis last and the positions stacked into rows. PyTorch,
    which takes such score maps natively, is the independent oracle for this layout."""
    classes, positions = z.shape[1], z.shape[:1] + z.shape[2:]
    last = (0, *range(2, z.ndim), 1)
    rows = anp.reshape(anp.transpose(z, last), (-1, classes))
    if target.dtype.kind == "f":
        target = anp.reshape(anp.transpose(target, last), (-1, classes))
    else:
        target = np.reshape(target, -1)
    out = _auto_ce(rows, target, reduction, smoothing, weight, ignore_index)
    return anp.reshape(out, positions) if reduction == "none" else out


def _simplex_on_axis_1(rng, shape):
    e = rng.random(shape) + 0.05
    return e / e.sum(axis=1, keepdims=True)


def _targets_with_ignored(rng, n, classes):
    t = rng.integers(0, classes, n)
    t[1] = -100  # PyTorch's default ignore_index
    return t


def _auto_multi_margin(x, t, reduction, p=1, margin=1.0, weight=None):
    classes = x.shape[-1]
    x2, t2 = anp.reshape(x, (-1, classes)), np.reshape(t, -1)
    h = margin - x2[np.arange(len(t2)), t2][:, None] + x2
    counted = (np.arange(classes)[None, :] != t2[:, None]) & (h > 0)
    terms = anp.where(counted, h ** p, 0.0)
    if weight is not None:
        terms = terms * weight[t2][:, None]
    return _reduce(anp.reshape(anp.sum(terms, axis=1) / classes, np.shape(t)), reduction)


def _auto_cosine(a, b, axis=-1, eps=1e-8):
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))  # PyTorch broadcasts, then takes norms
    a, b = a + anp.zeros(shape), b + anp.zeros(shape)
    na = anp.maximum(anp.sqrt(anp.sum(a * a, axis=axis, keepdims=True)), eps)
    nb = anp.maximum(anp.sqrt(anp.sum(b * b, axis=axis, keepdims=True)), eps)
    return anp.sum((a / na) * (b / nb), axis=axis)


def _auto_cosine_embedding(a, b, y, reduction, margin=0.0):
    # PyTorch's definition: 1e-12 is added to each squared norm, of the inputs broadcast first.
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    a, b = a + anp.zeros(shape), b + anp.zeros(shape)
    cos = anp.sum(a * b, axis=-1) / anp.sqrt((anp.sum(a * a, axis=-1) + 1e-12) *
                                              (anp.sum(b * b, axis=-1) + 1e-12))
    return _reduce(anp.where(y == 1, 1 - cos, anp.maximum(0.0, cos - margin)), reduction)


def _huber(r, delta):
    return anp.where(anp.abs(r) <= delta, 0.5 * r * r, delta * (anp.abs(r) - 0.5 * delta))


def _torch_reduce(x, reduction):
    return x if reduction == "none" else (x.sum() if reduction == "sum" else x.mean())


def _tf(t):
    return t.nn.functional


CASES = [
    Loss("l1_loss", lambda r: [r.normal(size=(4, 3)), r.normal(size=(4, 3))],
         lambda p, y, reduction: F.l1_loss(p, y, reduction=reduction),
         lambda p, y, reduction: _reduce(anp.abs(p - y), reduction),
         lambda t, p, y, reduction: _tf(t).l1_loss(p, y, reduction=reduction), diff=(0, 1)),
    Loss("mse_loss", lambda r: [r.normal(size=(4, 3)), r.normal(size=(4, 3))],
         lambda p, y, reduction: F.mse_loss(p, y, reduction=reduction),
         lambda p, y, reduction: _reduce((p - y) ** 2, reduction),
         lambda t, p, y, reduction: _tf(t).mse_loss(p, y, reduction=reduction), diff=(0, 1)),
    Loss("l2_loss", lambda r: [r.normal(size=(5,)), r.normal(size=(5,))],
         lambda p, y, reduction: F.l2_loss(p, y, reduction=reduction),
         lambda p, y, reduction: _reduce(0.5 * (y - p) ** 2, reduction),
         lambda t, p, y, reduction: _torch_reduce(0.5 * (y - p) ** 2, reduction), diff=(0, 1)),
    Loss("huber_loss(delta=0.7)", lambda r: [r.normal(size=(4, 3)), r.normal(size=(4, 3))],
         lambda p, y, reduction: F.huber_loss(p, y, delta=0.7, reduction=reduction),
         lambda p, y, reduction: _reduce(_huber(p - y, 0.7), reduction),
         lambda t, p, y, reduction: _tf(t).huber_loss(p, y, delta=0.7, reduction=reduction),
         diff=(0, 1)),
    Loss("hinge_loss", lambda r: [r.normal(size=(6,)), _pm1(r, (6,))],
         lambda s, y, reduction: F.hinge_loss(s, y, reduction=reduction),
         lambda s, y, reduction: _reduce(anp.where(y * s < 1, 1 - y * s, 0.0), reduction),
         lambda t, s, y, reduction: _torch_reduce(t.clamp(1 - y * s, min=0), reduction)),
    Loss("binary_cross_entropy", lambda r: [r.uniform(0.05, 0.95, (4, 3)), r.random((4, 3))],
         lambda p, y, reduction: F.binary_cross_entropy(p, y, reduction=reduction),
         lambda p, y, reduction: _reduce(-(y * anp.log(p) + (1 - y) * anp.log(1 - p)), reduction),
         lambda t, p, y, reduction: _tf(t).binary_cross_entropy(p, y, reduction=reduction),
         diff=(0, 1)),
    Loss("binary_cross_entropy_with_logits", lambda r: [3 * r.normal(size=(4, 3)), r.random((4, 3))],
         lambda z, y, reduction: F.binary_cross_entropy_with_logits(z, y, reduction=reduction),
         lambda z, y, reduction: _reduce(anp.logaddexp(0.0, z) - y * z, reduction),
         lambda t, z, y, reduction: _tf(t).binary_cross_entropy_with_logits(z, y, reduction=reduction),
         diff=(0, 1)),
    Loss("binary_cross_entropy(weight)", lambda r: [r.uniform(0.05, 0.95, (4, 3)), r.random((4, 3))],
         lambda p, y, reduction: F.binary_cross_entropy(p, y, weight=[0.5, 1.0, 2.0], reduction=reduction),
         lambda p, y, reduction: _reduce(-(y * anp.log(p) + (1 - y) * anp.log(1 - p)) * np.array(
             [0.5, 1.0, 2.0]), reduction),
         lambda t, p, y, reduction: _tf(t).binary_cross_entropy(
             p, y, weight=t.tensor([0.5, 1.0, 2.0], dtype=t.float64), reduction=reduction),
         diff=(0, 1)),
    Loss("binary_cross_entropy_with_logits(weight, pos_weight)",
         lambda r: [3 * r.normal(size=(4, 3)), r.random((4, 3))],
         lambda z, y, reduction: F.binary_cross_entropy_with_logits(
             z, y, weight=np.array([[1.0], [0.5], [2.0], [1.0]]), pos_weight=[3.0, 1.0, 0.2],
             reduction=reduction),
         lambda z, y, reduction: _reduce(
             (np.array([3.0, 1.0, 0.2]) * y * anp.logaddexp(0.0, -z) + (1 - y) * anp.logaddexp(0.0, z))
             * np.array([[1.0], [0.5], [2.0], [1.0]]), reduction),
         lambda t, z, y, reduction: _tf(t).binary_cross_entropy_with_logits(
             z, y, weight=t.tensor([[1.0], [0.5], [2.0], [1.0]], dtype=t.float64),
             pos_weight=t.tensor([3.0, 1.0, 0.2], dtype=t.float64), reduction=reduction),
         diff=(0, 1)),
    Loss("cross_entropy(indices)", lambda r: [r.normal(size=(5, 4)), r.integers(0, 4, 5)],
         lambda z, k, reduction: F.cross_entropy(z, k, reduction=reduction),
         lambda z, k, reduction: _auto_ce(z, k, reduction),
         lambda t, z, k, reduction: _tf(t).cross_entropy(z, k, reduction=reduction)),
    Loss("cross_entropy(indices, label_smoothing=0.2)",
         lambda r: [r.normal(size=(5, 4)), r.integers(0, 4, 5)],
         lambda z, k, reduction: F.cross_entropy(z, k, label_smoothing=0.2, reduction=reduction),
         lambda z, k, reduction: _auto_ce(z, k, reduction, 0.2),
         lambda t, z, k, reduction: _tf(t).cross_entropy(z, k, label_smoothing=0.2, reduction=reduction)),
    Loss("cross_entropy(probabilities)", lambda r: [r.normal(size=(5, 4)), _simplex(r, (5, 4))],
         lambda z, y, reduction: F.cross_entropy(z, y, reduction=reduction),
         lambda z, y, reduction: _auto_ce(z, y, reduction),
         lambda t, z, y, reduction: _tf(t).cross_entropy(z, y, reduction=reduction), diff=(0, 1)),
    Loss("cross_entropy(unnormalised rows, label_smoothing=0.1)",
         lambda r: [r.normal(size=(3, 4)), r.random((3, 4))],
         lambda z, y, reduction: F.cross_entropy(z, y, label_smoothing=0.1, reduction=reduction),
         lambda z, y, reduction: _auto_ce(z, y, reduction, 0.1),
         lambda t, z, y, reduction: _tf(t).cross_entropy(z, y, label_smoothing=0.1, reduction=reduction),
         diff=(0, 1)),
    Loss("cross_entropy(one sample)", lambda r: [r.normal(size=(4,)), np.array(2)],
         lambda z, k, reduction: F.cross_entropy(z, k, reduction=reduction),
         lambda z, k, reduction: _auto_ce(z, k, reduction),
         lambda t, z, k, reduction: _tf(t).cross_entropy(z, k, reduction=reduction)),
    Loss("cross_entropy(weight, ignore_index, label_smoothing=0.1)",
         lambda r: [r.normal(size=(6, 4)), _targets_with_ignored(r, 6, 4)],
         lambda z, k, reduction: F.cross_entropy(z, k, weight=np.array([1.0, 2.0, 0.5, 1.5]),
                                                 label_smoothing=0.1, reduction=reduction),
         lambda z, k, reduction: _auto_ce(z, k, reduction, 0.1, np.array([1.0, 2.0, 0.5, 1.5])),
         lambda t, z, k, reduction: _tf(t).cross_entropy(
             z, k, weight=t.tensor([1.0, 2.0, 0.5, 1.5], dtype=t.float64), label_smoothing=0.1,
             reduction=reduction)),
    Loss("cross_entropy(indices, ignore_index=2)", lambda r: [r.normal(size=(6, 4)), r.integers(0, 4, 6)],
         lambda z, k, reduction: F.cross_entropy(z, k, ignore_index=2, reduction=reduction),
         lambda z, k, reduction: _auto_ce(z, k, reduction, ignore_index=2),
         lambda t, z, k, reduction: _tf(t).cross_entropy(z, k, ignore_index=2, reduction=reduction)),
    Loss("cross_entropy(score map (N, C, d), indices)",
         lambda r: [r.normal(size=(2, 4, 3)), r.integers(0, 4, (2, 3))],
         lambda z, k, reduction: F.cross_entropy(z, k, reduction=reduction),
         lambda z, k, reduction: _auto_ce_positions(z, k, reduction),
         lambda t, z, k, reduction: _tf(t).cross_entropy(z, k, reduction=reduction)),
    Loss("cross_entropy(score map (N, C, d1, d2), weight, ignore_index=1, label_smoothing=0.1)",
         lambda r: [r.normal(size=(2, 3, 2, 2)), r.integers(0, 3, (2, 2, 2))],
         lambda z, k, reduction: F.cross_entropy(z, k, weight=[1.0, 2.0, 0.5], ignore_index=1,
                                                 label_smoothing=0.1, reduction=reduction),
         lambda z, k, reduction: _auto_ce_positions(z, k, reduction, 0.1, np.array([1.0, 2.0, 0.5]), 1),
         lambda t, z, k, reduction: _tf(t).cross_entropy(
             z, k, weight=t.tensor([1.0, 2.0, 0.5], dtype=t.float64), ignore_index=1,
             label_smoothing=0.1, reduction=reduction)),
    Loss("cross_entropy(score map (N, C, d), probabilities)",
         lambda r: [r.normal(size=(2, 4, 3)), _simplex_on_axis_1(r, (2, 4, 3))],
         lambda z, y, reduction: F.cross_entropy(z, y, reduction=reduction),
         lambda z, y, reduction: _auto_ce_positions(z, y, reduction),
         lambda t, z, y, reduction: _tf(t).cross_entropy(z, y, reduction=reduction), diff=(0, 1)),
    Loss("cross_entropy(probabilities, weight)", lambda r: [r.normal(size=(5, 4)), _simplex(r, (5, 4))],
         lambda z, y, reduction: F.cross_entropy(z, y, weight=[0.5, 1.0, 2.0, 1.0], reduction=reduction),
         lambda z, y, reduction: _auto_ce(z, y, reduction, weight=np.array([0.5, 1.0, 2.0, 1.0])),
         lambda t, z, y, reduction: _tf(t).cross_entropy(
             z, y, weight=t.tensor([0.5, 1.0, 2.0, 1.0], dtype=t.float64), reduction=reduction),
         diff=(0, 1)),
    Loss("multi_margin_loss", lambda r: [r.normal(size=(6, 4)), r.integers(0, 4, 6)],
         lambda x, k, reduction: F.multi_margin_loss(x, k, reduction=reduction),
         lambda x, k, reduction: _auto_multi_margin(x, k, reduction),
         lambda t, x, k, reduction: _tf(t).multi_margin_loss(x, k, reduction=reduction)),
    Loss("multi_margin_loss(p=2, margin=0.5, weight)",
         lambda r: [r.normal(size=(6, 4)), r.integers(0, 4, 6)],
         lambda x, k, reduction: F.multi_margin_loss(x, k, p=2, margin=0.5, weight=[1.0, 2.0, 0.5, 1.5],
                                                     reduction=reduction),
         lambda x, k, reduction: _auto_multi_margin(x, k, reduction, 2, 0.5, np.array([1.0, 2.0, 0.5, 1.5])),
         lambda t, x, k, reduction: _tf(t).multi_margin_loss(
             x, k, p=2, margin=0.5, weight=t.tensor([1.0, 2.0, 0.5, 1.5], dtype=t.float64),
             reduction=reduction)),
    Loss("multi_margin_loss(one sample)", lambda r: [r.normal(size=(5,)), np.array(3)],
         lambda x, k, reduction: F.multi_margin_loss(x, k, reduction=reduction),
         lambda x, k, reduction: _auto_multi_margin(x, k, reduction),
         lambda t, x, k, reduction: _tf(t).multi_margin_loss(x, k, reduction=reduction)),
    Loss("cosine_similarity", lambda r: [r.normal(size=(4, 3)), r.normal(size=(4, 3))],
         lambda a, b, reduction: F.cosine_similarity(a, b),
         lambda a, b, reduction: _auto_cosine(a, b),
         lambda t, a, b, reduction: _tf(t).cosine_similarity(a, b, dim=-1),
         diff=(0, 1), reductions=(None,)),
    Loss("cosine_similarity(axis=0, broadcast)", lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 1))],
         lambda a, b, reduction: F.cosine_similarity(a, b, axis=0),
         lambda a, b, reduction: _auto_cosine(a, b, axis=0),
         lambda t, a, b, reduction: _tf(t).cosine_similarity(a, b, dim=0),
         diff=(0, 1), reductions=(None,)),
    # b broadcast along the axis the norms are taken over: |b| is that of the broadcast copies
    Loss("cosine_similarity(broadcast along axis)", lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 1))],
         lambda a, b, reduction: F.cosine_similarity(a, b, axis=-1),
         lambda a, b, reduction: _auto_cosine(a, b, axis=-1),
         lambda t, a, b, reduction: _tf(t).cosine_similarity(a, b, dim=-1),
         diff=(0, 1), reductions=(None,)),
    Loss("cosine_similarity(axis only after broadcasting)",
         lambda r: [r.normal(size=(3, 1)), r.normal(size=(4,))],
         lambda a, b, reduction: F.cosine_similarity(a, b, axis=1),
         lambda a, b, reduction: _auto_cosine(a, b, axis=1),
         lambda t, a, b, reduction: _tf(t).cosine_similarity(a, b, dim=1),
         diff=(0, 1), reductions=(None,)),
    Loss("cosine_embedding_loss(margin=0.2)",
         lambda r: [r.normal(size=(6, 3)), r.normal(size=(6, 3)), _pm1(r, (6,))],
         lambda a, b, y, reduction: F.cosine_embedding_loss(a, b, y, margin=0.2, reduction=reduction),
         lambda a, b, y, reduction: _auto_cosine_embedding(a, b, y, reduction, 0.2),
         lambda t, a, b, y, reduction: _tf(t).cosine_embedding_loss(a, b, y, margin=0.2, reduction=reduction),
         diff=(0, 1)),
    # an anchor row (1, D) against N rows: the inputs' rows broadcast, as PyTorch's
    Loss("cosine_embedding_loss(broadcast anchor)",
         lambda r: [r.normal(size=(5, 3)), r.normal(size=(1, 3)), _pm1(r, (5,))],
         lambda a, b, y, reduction: F.cosine_embedding_loss(a, b, y, margin=-0.3, reduction=reduction),
         lambda a, b, y, reduction: _auto_cosine_embedding(a, b, y, reduction, -0.3),
         lambda t, a, b, y, reduction: _tf(t).cosine_embedding_loss(a, b, y, margin=-0.3,
                                                                  reduction=reduction),
         diff=(0, 1)),
    Loss("cosine_embedding_loss(one pair)",
         lambda r: [r.normal(size=(3,)), r.normal(size=(3,)), np.array(-1.0)],
         lambda a, b, y, reduction: F.cosine_embedding_loss(a, b, y, margin=-0.9, reduction=reduction),
         lambda a, b, y, reduction: _auto_cosine_embedding(a, b, y, reduction, -0.9),
         lambda t, a, b, y, reduction: _tf(t).cosine_embedding_loss(a, b, y, margin=-0.9,
                                                                  reduction=reduction),
         diff=(0, 1)),
]


# --- PyTorch's nll_loss, smooth_l1_loss and kl_div (issue 12) -------------------------------

NLL_WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])


def _auto_nll(x, y, reduction, weight=None, ignore_index=-100, class_axis=-1):
    xt = anp.moveaxis(x, class_axis, -1) if x.ndim > 1 else x
    kept = y != ignore_index
    index = np.where(kept, y, 0)
    w = (np.ones(xt.shape[-1]) if weight is None else weight)[index] * kept
    per = -w * anp.sum(xt * np.eye(xt.shape[-1])[index], axis=-1)
    if reduction == "mean":
        return anp.sum(per) / np.sum(w)
    return anp.sum(per) if reduction == "sum" else per


def _auto_smooth_l1(p, y, reduction, beta):
    r = p - y
    a = anp.abs(r)
    per = a if beta == 0 else anp.where(a < beta, 0.5 * r * r / beta, a - 0.5 * beta)
    return _reduce(per, reduction)


def _auto_kl(x, y, reduction, log_target=False):
    per = anp.exp(y) * (y - x) if log_target else y * (anp.log(y) - x)
    if reduction == "batchmean":
        return anp.sum(per) / x.shape[0]
    return _reduce(per, reduction)


def _log_probs(r, shape):
    z = r.normal(size=shape)
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")

CASES += [
    Loss("nll_loss",
         lambda r: [r.normal(size=(5, 4)), r.integers(0, 4, size=5)],
         lambda x, y, reduction: F.nll_loss(x, y, reduction=reduction),
         lambda x, y, reduction: _auto_nll(x, y, reduction),
         lambda t, x, y, reduction: _tf(t).nll_loss(x, y, reduction=reduction)),
    Loss("nll_loss(weight, ignore_index)",
         lambda r: [r.normal(size=(5, 4)), np.array([0, 3, -100, 1, 3])],
         lambda x, y, reduction: F.nll_loss(x, y, weight=NLL_WEIGHT, reduction=reduction),
         lambda x, y, reduction: _auto_nll(x, y, reduction, NLL_WEIGHT),
         lambda t, x, y, reduction: _tf(t).nll_loss(x, y, weight=t.tensor(NLL_WEIGHT),
                                                    reduction=reduction)),
    Loss("nll_loss(ignore_index=1)",
         lambda r: [r.normal(size=(4, 3)), np.array([1, 0, 1, 2])],
         lambda x, y, reduction: F.nll_loss(x, y, ignore_index=1, reduction=reduction),
         lambda x, y, reduction: _auto_nll(x, y, reduction, ignore_index=1),
         lambda t, x, y, reduction: _tf(t).nll_loss(x, y, ignore_index=1, reduction=reduction)),
    Loss("nll_loss(one sample)",
         lambda r: [r.normal(size=(4,)), np.array(2)],
         lambda x, y, reduction: F.nll_loss(x, y, reduction=reduction),
         lambda x, y, reduction: _auto_nll(x, y, reduction),
         lambda t, x, y, reduction: _tf(t).nll_loss(x, y, reduction=reduction)),
    Loss("nll_loss(N, C, d)",
         lambda r: [r.normal(size=(2, 3, 4)), r.integers(0, 3, size=(2, 4))],
         lambda x, y, reduction: F.nll_loss(x, y, reduction=reduction),
         lambda x, y, reduction: _auto_nll(x, y, reduction, class_axis=1),
         lambda t, x, y, reduction: _tf(t).nll_loss(x, y, reduction=reduction)),
    Loss("smooth_l1_loss",
         lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
         lambda p, y, reduction: F.smooth_l1_loss(p, y, reduction=reduction),
         lambda p, y, reduction: _auto_smooth_l1(p, y, reduction, 1.0),
         lambda t, p, y, reduction: _tf(t).smooth_l1_loss(p, y, reduction=reduction), diff=(0, 1)),
    Loss("smooth_l1_loss(beta=0.4)",
         lambda r: [r.normal(size=(6,)), r.normal(size=(6,))],
         lambda p, y, reduction: F.smooth_l1_loss(p, y, beta=0.4, reduction=reduction),
         lambda p, y, reduction: _auto_smooth_l1(p, y, reduction, 0.4),
         lambda t, p, y, reduction: _tf(t).smooth_l1_loss(p, y, beta=0.4, reduction=reduction),
         diff=(0, 1)),
    Loss("smooth_l1_loss(beta=0)",
         lambda r: [r.normal(size=(6,)), r.normal(size=(6,))],
         lambda p, y, reduction: F.smooth_l1_loss(p, y, beta=0.0, reduction=reduction),
         lambda p, y, reduction: _auto_smooth_l1(p, y, reduction, 0.0),
         lambda t, p, y, reduction: _tf(t).smooth_l1_loss(p, y, beta=0.0, reduction=reduction),
         diff=(0, 1)),
    Loss("kl_div",
         lambda r: [_log_probs(r, (3, 4)), np.exp(_log_probs(r, (3, 4)))],
         lambda x, y, reduction: F.kl_div(x, y, reduction=reduction),
         lambda x, y, reduction: _auto_kl(x, y, reduction),
         lambda t, x, y, reduction: _tf(t).kl_div(x, y, reduction=reduction), diff=(0, 1),
         reductions=KL_REDUCTIONS),
    Loss("kl_div(log_target)",
         lambda r: [_log_probs(r, (3, 4)), _log_probs(r, (3, 4))],
         lambda x, y, reduction: F.kl_div(x, y, reduction=reduction, log_target=True),
         lambda x, y, reduction: _auto_kl(x, y, reduction, log_target=True),
         lambda t, x, y, reduction: _tf(t).kl_div(x, y, reduction=reduction, log_target=True),
         diff=(0, 1), reductions=KL_REDUCTIONS),
]
PARAMS = [pytest.param(c, r, id=f"{c.label}-{r}") for c in CASES for r in c.reductions]


def _ours(case: Loss, args: list[np.ndarray], reduction, g=None, wrt=None):
    """Value and gradients (for the arguments ``wrt``) from chainrule, seeded with ``g``."""
    wrt = case.diff if wrt is None else wrt
    inputs = [cr.tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(args)]
    out = case.ours(*inputs, reduction=reduction)
    g = np.ones(out.shape, dtype=out.dtype) if g is None else g
    grads = cr.grad(out, [inputs[i] for i in wrt], grad_output=g)
    return out.data, [gr.data for gr in grads]


def _auto(case: Loss, args, reduction, g):
    value = case.auto(*args, reduction=reduction)
    grads = []
    for i in case.diff:
        def f(a, i=i):
            return anp.sum(case.auto(*args[:i], a, *args[i + 1:], reduction=reduction) * g)
        grads.append(autograd.grad(f)(args[i]))
    return value, grads


def _torch(case: Loss, args, reduction, g):
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    inputs = [torch.tensor(a, requires_grad=i in case.diff) for i, a in enumerate(args)]
    out = case.torch(torch, *inputs, reduction=reduction)
    out.backward(torch.tensor(g, dtype=out.dtype))
    return out.detach().numpy(), [inputs[i].grad.numpy() for i in case.diff]


def _seed(case, args, reduction, rng):
    out = case.ours(*args, reduction=reduction)
    return rng.normal(size=out.shape)


def _assert_close(actual, expected, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case, reduction", PARAMS)
def test_gradcheck(case, reduction, rng):
    args = case.make(rng)
    inputs = [cr.tensor(a, requires_grad=True) if i in case.diff else a for i, a in enumerate(args)]
    assert cr.gradcheck(lambda *xs: case.ours(*xs, reduction=reduction), *inputs)


@pytest.mark.parametrize("case, reduction", PARAMS)
def test_matches_autograd(case, reduction, rng):
    args = case.make(rng)
    g = _seed(case, args, reduction, rng)
    value, grads = _ours(case, args, reduction, g)
    auto_value, auto_grads = _auto(case, args, reduction, g)
    _assert_close(value, auto_value)
    for ours, expected in zip(grads, auto_grads, strict=True):
        _assert_close(ours, expected)


@pytest.mark.parametrize("case, reduction", PARAMS)
def test_matches_torch(case, reduction, rng):
    args = case.make(rng)
    g = _seed(case, args, reduction, rng)
    torch_value, torch_grads = _torch(case, args, reduction, g)
    value, grads = _ours(case, args, reduction, g)
    _assert_close(value, torch_value)
    for ours, expected in zip(grads, torch_grads, strict=True):
        _assert_close(ours, expected)


@pytest.mark.parametrize("case, reduction", PARAMS)
def test_float32_stays_float32(case, reduction, rng):
    args = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in case.make(rng)]
    value, grads = _ours(case, args, reduction)
    assert value.dtype == np.float32
    assert all(gr.dtype == np.float32 for gr in grads)
    value64, grads64 = _ours(case, [a.astype(np.float64) if a.dtype.kind == "f" else a for a in args],
                             reduction)
    np.testing.assert_allclose(value, value64, rtol=1e-5, atol=1e-6)
    for g32, g64 in zip(grads, grads64, strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


# --- edge points named by the issue ------------------------------------------------------------

def _edge_case(label: str) -> Loss:
    return next(c for c in CASES if c.label == label)


def _compare_at(label: str, args: list[np.ndarray], reduction: str = "sum", torch_oracle: bool = True,
                torch_rtol: float = 1e-10):
    """Our value and gradients at ``args`` against autograd (and PyTorch), with all FP traps on."""
    case = _edge_case(label)
    g = np.ones(np.shape(case.auto(*args, reduction=reduction)))
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grads = _ours(case, args, reduction, g)
    auto_value, auto_grads = _auto(case, args, reduction, g)
    _assert_close(value, auto_value)
    for ours, expected in zip(grads, auto_grads, strict=True):
        _assert_close(ours, expected)
    try:
        import torch  # noqa: F401
    except ImportError:
        return value, grads
    if torch_oracle:
        torch_value, torch_grads = _torch(case, args, reduction, g)
        _assert_close(value, torch_value, rtol=torch_rtol)
        for ours, expected in zip(grads, torch_grads, strict=True):
            _assert_close(ours, expected, rtol=torch_rtol)
    return value, grads


def test_l1_subgradient_is_zero_where_prediction_equals_target():
    p = np.array([1.0, -2.0, 0.5, 3.0])
    y = np.array([1.0, -1.0, 0.5, 0.0])
    _, (gp, gy) = _compare_at("l1_loss", [p, y])
    assert gp.tolist() == [0.0, -1.0, 0.0, 1.0]
    assert gy.tolist() == [0.0, 1.0, 0.0, -1.0]


def test_hinge_at_margin_exactly_one_has_zero_subgradient():
    s = np.array([1.0, -1.0, 0.5, -0.25, 2.0])
    y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])  # y*s = 1, 1, 0.5, -0.25, -2
    # No PyTorch oracle here: torch has no binary hinge loss, and clamp's gradient at the kink is 1.
    value, (gs,) = _compare_at("hinge_loss", [s, y], torch_oracle=False)
    assert gs.tolist() == [0.0, 0.0, -1.0, -1.0, 1.0]
    assert value == pytest.approx(0 + 0 + 0.5 + 1.25 + 3.0, abs=1e-15)


def test_huber_at_abs_residual_exactly_delta():
    y = np.zeros(4)
    p = np.array([0.7, -0.7, 0.35, 1.4])  # |r| = delta, delta, below, above (delta = 0.7)
    value, (gp, _) = _compare_at("huber_loss(delta=0.7)", [p, y])
    np.testing.assert_allclose(gp, [0.7, -0.7, 0.35, 0.7], rtol=0, atol=1e-15)
    np.testing.assert_allclose(value, 0.245 + 0.245 + 0.06125 + 0.7 * (1.4 - 0.35), rtol=1e-14)


def test_cosine_similarity_with_a_zero_vector_is_zero_not_nan():
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    b = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0]])
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    expected = torch.nn.functional.cosine_similarity(ta, tb)
    expected.sum().backward()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, (ga, gb) = _ours(_edge_case("cosine_similarity"), [a, b], None)
    assert value.tolist() == [0.0, 0.0]
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    _assert_close(value, expected.detach().numpy())
    _assert_close(ga, ta.grad.numpy())
    _assert_close(gb, tb.grad.numpy())


def test_cosine_embedding_with_a_zero_vector_is_finite():
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    b = np.array([[1.0, -2.0, 0.5], [2.0, 1.0, 0.0]])
    # PyTorch's 1e-12 is a float32 constant (1e-12 * (1 + 4e-9)), hence its 2e-9 relative offset
    # at a zero vector, where the gradient is b / sqrt(1e-12 |b|^2); autograd is held to 1e-10.
    value, grads = _compare_at("cosine_embedding_loss(margin=0.2)", [a, b, np.array([1.0, -1.0])],
                               torch_rtol=1e-8)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label", ["cross_entropy(indices)", "cross_entropy(probabilities)",
                                   "cross_entropy(indices, label_smoothing=0.2)"])
def test_cross_entropy_logits_of_1e4_are_finite(label, dtype):
    z = np.array([[1e4, -1e4, 0.0, 0.0], [-1e4, -1e4, 1e4, 1e4], [0.0, 1.0, -1e4, 2.0]])
    target = (np.array([1, 2, 3]) if "indices" in label
              else np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]]))
    case = _edge_case(label)
    args = [z.astype(dtype), target if target.dtype.kind == "i" else target.astype(dtype)]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, (gz, *_) = _ours(case, args, "mean")
    assert value.dtype == dtype and gz.dtype == dtype
    assert np.isfinite(value) and np.all(np.isfinite(gz))
    if dtype == np.float64:
        _compare_at(label, args, "mean")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_at_saturation_is_finite(dtype):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.5], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grads = _ours(_edge_case("binary_cross_entropy"), [p, y], "none")
    assert np.all(np.isfinite(value)) and all(np.all(np.isfinite(g)) for g in grads)
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    tp = torch.tensor(p.astype(np.float64), requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(y.astype(np.float64)),
                                                        reduction="none")
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-6)  # log clamped at -100
    np.testing.assert_allclose(grads[0], tp.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_logits_of_1e4_is_finite(dtype):
    z = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, (gz, gy) = _ours(_edge_case("binary_cross_entropy_with_logits"), [z, y], "none")
    assert value.dtype == dtype and gz.dtype == dtype
    np.testing.assert_allclose(value, [0.0, 0.0, 1e4, 1e4, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(gz, [0.0, 0.0, 1.0, -1.0, 0.0], atol=1e-7)
    if dtype == np.float64:
        _compare_at("binary_cross_entropy_with_logits", [z, y], "sum")


# --- the reference solution's results, and the shape of the graph -----------------------------

def test_cross_entropy_gradient_is_softmax_minus_y_over_m(rng):
    """The reference's result dJ/dz_ij = (yhat_ij - y_ij)/m, written out in NumPy."""
    z, y = rng.normal(size=(5, 3)), _simplex(rng, (5, 3))
    logits = cr.tensor(z, requires_grad=True)
    loss = F.cross_entropy(logits, y)
    assert loss.op == "cross_entropy" and loss._node.parents[0] is logits  # one fused node
    loss.backward()
    yhat = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    _assert_close(loss.item(), -np.mean(np.sum(y * np.log(yhat), axis=1)))
    _assert_close(logits.grad, (yhat - y) / 5)


# the (N, C) primitive's own node (score maps add a transpose and reshape before it)
CE_CASES = [c for c in CASES if c.label.startswith("cross_entropy") and "score map" not in c.label]


@pytest.mark.parametrize("case", CE_CASES, ids=[c.label for c in CE_CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_residual_and_recomputed_softmax_agree(case, reduction, rng):
    """The backward pass reuses the forward's e^(z - max z) (the node's residual); the
    explainer calls the same VJP without it, which recomputes. Both must give one gradient,
    and the residual must survive a first backward for a second (retain_graph)."""
    args = case.make(rng)
    logits = cr.tensor(args[0], requires_grad=True)
    out = case.ours(logits, *args[1:], reduction=reduction)
    node = out._node
    assert node.residual is not None
    g = rng.normal(size=out.shape)
    recomputed = node.prim.vjp(0, g, out.data, node.args, node.kwargs)
    out.backward(g, retain_graph=True)
    first = logits.grad.copy()
    logits.grad = None
    out.backward(g)
    np.testing.assert_allclose(first, recomputed, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(logits.grad, first)


def test_l2_loss_defaults_to_the_sum_of_half_squares():
    y_hat, y = np.array([0.9136, 0.2, -1.0]), np.array([0.61, 0.0, 1.0])
    p = cr.tensor(y_hat, requires_grad=True)
    loss = F.l2_loss(p, y)
    loss.backward()
    _assert_close(loss.item(), 0.5 * np.sum((y - y_hat) ** 2))
    _assert_close(p.grad, y_hat - y)


def test_losses_registry_and_lookup():
    assert set(F.LOSSES) == {
        "l1_loss", "mse_loss", "l2_loss", "huber_loss", "hinge_loss", "multi_margin_loss",
        "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
        "cosine_embedding_loss", "nll_loss", "smooth_l1_loss", "kl_div"}
    assert F.get_loss("NLLLoss") is F.nll_loss and F.get_loss("nll") is F.nll_loss
    assert F.get_loss("SmoothL1Loss") is F.smooth_l1_loss and F.get_loss("KLDivLoss") is F.kl_div
    assert F.get_loss("mse") is F.mse_loss and F.get_loss("MSELoss") is F.mse_loss
    assert F.get_loss("huber") is F.huber_loss and F.get_loss("CrossEntropyLoss") is F.cross_entropy
    assert F.get_loss("BCEWithLogitsLoss") is F.binary_cross_entropy_with_logits
    with pytest.raises(ValueError, match="valid names: l1_loss"):
        F.get_loss("triplet_margin")


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: F.mse_loss(np.zeros((4, 1)), np.zeros(4)), r"\(4, 1\).*\(4,\)"),
    (lambda: F.l1_loss(np.zeros(3), np.zeros(4)), r"\(3,\).*\(4,\)"),
    (lambda: F.binary_cross_entropy_with_logits(np.zeros((2, 1)), np.zeros(2)), r"\(2, 1\).*\(2,\)"),
    (lambda: F.hinge_loss(np.zeros(3), np.array([1.0, 0.0, -1.0])), "-1 or \\+1, got 0"),
    (lambda: F.hinge_loss(np.zeros(3), np.ones(4)), r"\(3,\).*\(4,\)"),
    (lambda: F.huber_loss(np.zeros(2), np.zeros(2), delta=0.0), "delta must be > 0"),
    (lambda: F.huber_loss(np.zeros(2), np.zeros(2), delta=-1.0), "delta must be > 0"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), "class index 3 out of range for 3"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([-1, 0])), "class index -1 out of range"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=[1.0, 2.0]),
     r"weight must have shape \(3,\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), "must be integers"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.zeros((2, 4))), r"\(2, 3\).*\(2, 4\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), r"shape \(2,\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5), "label_smoothing"),
    (lambda: F.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3), dtype=int)),
     r"classes on axis 1\) the target must be class indices of shape \(2, 4\).*got shape \(2, 3\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 4))), "must be integers"),
    (lambda: F.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 4), dtype=int) + 3), "class index 3"),
    (lambda: F.multi_margin_loss(np.zeros((2, 3)), np.array([0, 5])), "class index 5"),
    (lambda: F.multi_margin_loss(np.zeros((2, 3)), np.array([0, 1]), p=3), "p must be 1 or 2"),
    (lambda: F.binary_cross_entropy(np.array([0.5, 1.5]), np.zeros(2)), r"\[0, 1\]"),
    (lambda: F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)),
     r"pos_weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: F.cosine_embedding_loss(np.ones((2, 3)), np.ones((2, 3)), np.array([1, 0])), "1 or -1"),
    (lambda: F.cosine_similarity(np.ones((2, 3)), np.ones((4, 3))), "do not broadcast"),
    (lambda: F.cosine_embedding_loss(np.ones((2, 3)), np.ones((4, 3)), np.ones(2)), r"\(2, 3\) and \(4, 3\)"),
    (lambda: F.cosine_embedding_loss(np.ones((2, 3)), np.ones(3), np.ones(2)), "both"),
    (lambda: F.cosine_embedding_loss(np.ones((2, 1)), np.ones((2, 3)), np.ones(2)), "same D"),
    (lambda: F.cosine_embedding_loss(np.ones((2, 3)), np.ones((1, 3)), np.ones(3)), r"shape \(2,\)"),
    (lambda: F.mse_loss(np.zeros(2), np.zeros(2), reduction="avg"), "reduction must be"),
])
def test_bad_input_raises_value_error_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cosine_similarity_broadcasts_before_taking_norms():
    # b = (c,) against a of shape (2,) is the vector (c, c): |b| = sqrt(2)|c|, so cos = (a1 + a2)
    # / (sqrt(2)|a|) for c > 0, and each of the two copies of c gets its share of the gradient.
    a, c = np.array([-0.1321048632913019, 0.6404226504432821]), 0.1257302210933933
    x, y = cr.tensor(a, requires_grad=True), cr.tensor([c], requires_grad=True)
    out = F.cosine_similarity(x, y, axis=0)
    out.backward()
    norm_a = math.sqrt(a @ a)
    assert math.isclose(out.item(), a.sum() / (math.sqrt(2) * norm_a), rel_tol=1e-14)
    # d cos/d a = 1/(sqrt2 |a|) - cos a/|a|^2, and cos does not depend on c > 0 at all
    np.testing.assert_allclose(x.grad, 1 / (math.sqrt(2) * norm_a) - out.item() * a / norm_a**2, rtol=1e-13)
    np.testing.assert_allclose(y.grad, [0.0], atol=1e-15)


# --- empty input ----------------------------------------------------------------------------

def _empty_args(case: Loss, rng) -> list[np.ndarray] | None:
    """The case's arguments with zero rows, or None for the one-sample cases (no batch axis)."""
    args = case.make(rng)
    if any(np.ndim(a) == 0 for a in args) or "pos_weight" in case.label:  # its weight is per row
        return None
    return [a[:0] for a in args]


EMPTY = [pytest.param(c, id=c.label) for c in CASES if "mean" in c.reductions and
         _empty_args(c, np.random.default_rng(0)) is not None]


@pytest.mark.parametrize("case", EMPTY)
def test_mean_of_an_empty_input_is_an_error_naming_its_shape(case, rng):
    args = _empty_args(case, rng)
    with pytest.raises(ValueError, match=rf"empty \(shape {re.escape(str(args[0].shape))}\)"):
        case.ours(*args, reduction="mean")


@pytest.mark.parametrize("reduction", ["sum", "none"])
@pytest.mark.parametrize("case", EMPTY)
def test_sum_and_none_of_an_empty_input_match_torch(case, reduction, rng):
    """'sum' of nothing is 0 and 'none' an empty array, with empty gradients: PyTorch's values."""
    args = _empty_args(case, rng)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, grads = _ours(case, args, reduction)
    assert all(g.shape == args[i].shape for g, i in zip(grads, case.diff, strict=True))
    torch_value, _ = _torch(case, args, reduction, np.ones(np.shape(value)))
    assert value.shape == torch_value.shape and value.dtype == args[0].dtype
    _assert_close(value, torch_value)
    if reduction == "sum":
        assert value == 0.0


# --- float32 at extremes: underflow in a gradient is the intended 0 ------------------------

Z32 = np.array([[-80, -1e4, -1, 0, 1, 1e4, 80], [80, 80, -80, -89, 0.5, 89, -0.5]], dtype=np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label, target", [
    ("binary_cross_entropy_with_logits", np.array([[0, 1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0, 0.5]])),
    ("cross_entropy(indices)", np.array([5, 6])),
    ("cross_entropy(probabilities)", np.full((2, 7), 1 / 7)),
    ("cross_entropy(indices, label_smoothing=0.2)", np.array([0, 3])),
])
def test_float32_gradients_that_underflow_raise_nothing_and_match_torch(label, target, reduction):
    """Subnormal or zero gradient entries are right, not an error, under errstate(all='raise')."""
    case = _edge_case(label)
    target = target if target.dtype.kind == "i" else target.astype(np.float32)
    g = np.linspace(-1.0, 1.0, np.size(case.auto(Z32.astype(np.float64), target, reduction=reduction)))
    g = g.reshape(np.shape(case.auto(Z32.astype(np.float64), target, reduction=reduction)))
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, (grad, *_) = _ours(case, [Z32, target], reduction, g.astype(np.float32))
    assert value.dtype == np.float32 and grad.dtype == np.float32
    target64 = target if target.dtype.kind == "i" else target.astype(np.float64)
    torch_value, (torch_grad, *_) = _torch(case, [Z32.astype(np.float64), target64], reduction, g)
    np.testing.assert_allclose(value, torch_value, rtol=1e-5, atol=1e-5 * (1 + np.max(np.abs(torch_value))))
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-5, atol=1e-6)


def test_nll_loss_with_every_row_ignored_gives_nan_loss_and_zero_gradient_as_torch():
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    x = np.array([[-0.5, -1.2, -2.0], [-0.1, -3.0, -0.7]])
    target = np.array([-100, -100])
    t = cr.tensor(x, requires_grad=True)
    loss = F.nll_loss(t, target)
    loss.backward()
    tt = torch.tensor(x, requires_grad=True)
    want = _tf(torch).nll_loss(tt, torch.tensor(target))
    want.backward()
    assert np.isnan(loss.item()) and np.isnan(want.item())
    np.testing.assert_array_equal(t.grad, tt.grad.numpy())
    np.testing.assert_array_equal(t.grad, np.zeros((2, 3)))


@pytest.mark.parametrize("make", [lambda x: x.T, lambda x: x[:, ::-1], lambda x: x.T[::2]],
                         ids=["transposed", "reversed-columns", "strided"])
def test_cross_entropy_of_a_non_contiguous_input_matches_torch(make):
    """Logits that are a transposed or strided view: the class-index VJP subtracts the one-hot
    rows in place through a reshape, which must not land in a copy (it did: 0.5 off)."""
    torch = pytest.importorskip("torch", reason="PyTorch oracle needs torch installed")
    x = np.random.default_rng(4).normal(size=(4, 4))
    target = np.array([1, 1, 3, 0])[: make(x).shape[0]]
    t = cr.tensor(x, requires_grad=True)
    F.cross_entropy(make(t), target).backward()
    tt = torch.tensor(x, requires_grad=True)
    _tf(torch).cross_entropy(make(tt) if make(x).strides[-1] > 0 else tt.flip(1),
                             torch.tensor(target)).backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-15)


# --- names and aliases: each maps to the function it names ----------------------------------

# PyTorch's class names and the short spellings, with the function each one names (written out
# here, not read from chainrule's table).
LOSS_NAMES = [
    ("L1Loss", "l1_loss"), ("l1", "l1_loss"), ("mae", "l1_loss"), ("MSELoss", "mse_loss"),
    ("mse", "mse_loss"), ("l2", "l2_loss"), ("HuberLoss", "huber_loss"), ("huber", "huber_loss"),
    ("hinge", "hinge_loss"), ("svm", "hinge_loss"), ("MultiMarginLoss", "multi_margin_loss"),
    ("BCELoss", "binary_cross_entropy"), ("bce", "binary_cross_entropy"),
    ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
    ("CrossEntropyLoss", "cross_entropy"), ("ce", "cross_entropy"),
    ("CosineEmbeddingLoss", "cosine_embedding_loss"), ("cross-entropy", "cross_entropy"),
]


@pytest.mark.parametrize("alias,name", LOSS_NAMES)
def test_every_loss_alias_maps_to_the_function_it_names(alias, name):
    assert F.get_loss(alias) is getattr(F, name)


@pytest.mark.parametrize("alias", ["NLLLoss", "nll", "nll_loss"])
def test_nll_loss_is_never_cross_entropy(alias):
    """NLLLoss takes log-probabilities; cross-entropy takes scores: not interchangeable."""
    if hasattr(F, "nll_loss"):
        assert F.get_loss(alias) is F.nll_loss
    else:
        with pytest.raises(ValueError, match="unknown loss"):
            F.get_loss(alias)


@pytest.mark.parametrize("alias", ["HingeEmbeddingLoss", "SmoothL1Loss", "KLDivLoss", "cosine"])
def test_a_loss_chainrule_lacks_is_not_mapped_to_a_relative(alias):
    function = getattr(F, {"HingeEmbeddingLoss": "hinge_embedding_loss", "SmoothL1Loss": "smooth_l1_loss",
                           "KLDivLoss": "kl_div", "cosine": "cosine_similarity_loss"}[alias], None)
    if function is not None and function.__name__ in F.LOSSES:
        assert F.get_loss(alias) is function
    else:
        with pytest.raises(ValueError, match="unknown loss"):
            F.get_loss(alias)
