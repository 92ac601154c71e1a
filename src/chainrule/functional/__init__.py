"""Activations, losses, layers' maps (linear, convolution, pooling, normalisation, embedding,
dropout, pad): ``import chainrule.functional as F``, with PyTorch's names and signatures.

Each function is one primitive of the engine with a closed-form backward pass and, for the
activations and losses, its formula (``chainrule.formula(name)``). ``ACTIVATIONS`` and
``LOSSES`` map function names to the functions; ``get_activation``/``get_loss`` also accept
short aliases ("mse", "bce", "huber", ...) and PyTorch's class names ("ReLU", "MSELoss").
"""
from __future__ import annotations

from collections.abc import Callable

from chainrule.functional.activations import (
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softsign,
    tanh,
)
from chainrule.functional.conv import conv1d, conv2d, conv3d
from chainrule.functional.dropout import dropout
from chainrule.functional.embedding import embedding
from chainrule.functional.formulas import FORMULAS, Formula, formula
from chainrule.functional.linear import linear
from chainrule.functional.losses import (
    KL_REDUCTIONS,
    REDUCTIONS,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cosine_similarity,
    cross_entropy,
    hinge_loss,
    huber_loss,
    kl_div,
    l1_loss,
    l2_loss,
    mse_loss,
    multi_margin_loss,
    nll_loss,
    smooth_l1_loss,
)
from chainrule.functional.normalization import batch_norm, layer_norm
from chainrule.functional.padding import pad
from chainrule.functional.pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d

ACTIVATIONS: dict[str, Callable] = {
    f.__name__: f
    for f in (sigmoid, tanh, relu, leaky_relu, elu, gelu, softplus, softmax, log_softmax,
              logsigmoid, silu, selu, celu, mish, hardswish, hardsigmoid, hardtanh, relu6,
              softsign, softmin)
}
LOSSES: dict[str, Callable] = {
    f.__name__: f
    for f in (l1_loss, mse_loss, l2_loss, huber_loss, hinge_loss, multi_margin_loss,
              binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
              cosine_embedding_loss, nll_loss, smooth_l1_loss, kl_div)
}

# Short and PyTorch-class spellings, after lower-casing and dropping "-", "_" and spaces. Each
# maps to the function it names, never to a near relative: "nll"/"NLLLoss" is the negative
# log-likelihood of log-probabilities (F.nll_loss, once it exists), not cross-entropy of scores.
_ALIASES = {
    "logistic": "sigmoid", "leakyrelu": "leaky_relu", "logsoftmax": "log_softmax",
    "l1": "l1_loss", "mae": "l1_loss", "mse": "mse_loss", "l2": "l2_loss", "huber": "huber_loss",
    "hinge": "hinge_loss", "svm": "hinge_loss", "multimargin": "multi_margin_loss",
    "bce": "binary_cross_entropy", "bceloss": "binary_cross_entropy",
    "bcewithlogits": "binary_cross_entropy_with_logits",
    "ce": "cross_entropy", "crossentropyloss": "cross_entropy", "nll": "nll_loss",
    "smoothl1": "smooth_l1_loss", "kldiv": "kl_div", "kl": "kl_div",
    "cosine": "cosine_similarity", "cosineembedding": "cosine_embedding_loss",
}


def _squash(name: str) -> str:
    return "".join(c for c in name.lower() if c not in "-_ ")


def _canonical(name: str) -> str:
    """The registered name for ``name``, an alias of it, or ``name`` itself if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"expected a function name (str), got {type(name).__name__}")
    key = _squash(name)
    known = {_squash(n): n for n in (*FORMULAS, *ACTIVATIONS, *LOSSES)}
    if key in known:
        return known[key]
    if key in _ALIASES:
        return _ALIASES[key]
    if key.endswith("loss") and key[:-4] in _ALIASES:  # "MSELoss", "HuberLoss", "L1Loss"
        return _ALIASES[key[:-4]]
    return name


def _lookup(name: str, table: dict[str, Callable], kind: str) -> Callable:
    key = _canonical(name)
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(table)}")
    return table[key]


def get_activation(name: str) -> Callable:
    """The activation called ``name`` ("relu", "ReLU", "logistic", ...); ValueError if unknown."""
    return _lookup(name, ACTIVATIONS, "activation")


def get_loss(name: str) -> Callable:
    """The loss called ``name`` ("mse_loss", "mse", "MSELoss", "bce", ...); ValueError if unknown."""
    return _lookup(name, LOSSES, "loss")


__all__ = [
    "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softplus", "softmax",
    "log_softmax", "l1_loss", "mse_loss", "l2_loss", "huber_loss", "hinge_loss",
    "multi_margin_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cross_entropy", "cosine_similarity", "cosine_embedding_loss", "logsigmoid", "silu", "selu",
    "celu", "mish", "hardswish", "hardsigmoid", "hardtanh", "relu6", "softsign", "softmin",
    "nll_loss", "smooth_l1_loss", "kl_div", "KL_REDUCTIONS", "ACTIVATIONS", "LOSSES",
    "REDUCTIONS", "FORMULAS", "Formula", "formula", "get_activation", "get_loss",
    "conv1d", "conv2d", "conv3d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "batch_norm", "layer_norm", "embedding", "dropout", "pad",
]
