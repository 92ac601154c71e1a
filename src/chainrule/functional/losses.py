"""Loss functions: each one's forward, fused closed-form VJP and formula, side by side.

Every loss is a single primitive: cross-entropy's backward is (softmax - y)/m in one step, the
reference solution's result, not the graph of log, softmax and sum. All take
``reduction='mean'|'sum'|'none'`` (PyTorch's default 'mean') except ``l2_loss``, whose definition
0.5 * sum(r^2) makes 'sum' its natural default. A prediction and target of different shapes are
an error, never silently broadcast ((n, 1) against (n,) would make an (n, n) loss).

An empty input with reduction='mean' is a ValueError naming its shape: the mean of no elements
is undefined (PyTorch returns NaN). 'sum' of an empty input is 0 and 'none' an empty array,
each with an empty gradient, as PyTorch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.functional.activations import (
    _log_softmax_prim,
    _number,
    _quiet,
    _sigmoid_prim,
    _softmax_prim,
)
from chainrule.functional.formulas import Formula, define
from chainrule.ops import unbroadcast
from chainrule.tensor import Tensor, apply, reshape, transpose

REDUCTIONS = ("mean", "sum", "none")
# --- shared argument handling ----------------------------------------------------------------

def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _input(x: Any, name: str) -> Any:
    """A prediction/score argument: a Tensor as is, anything else as a float array."""
    if isinstance(x, Tensor):
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: input must be floating point, got dtype {x.dtype}")
        return x
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: input must be numeric, got dtype {array.dtype}")
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _target(target: Any, like: Any, name: str) -> Any:
    """A float target in the input's dtype (a target tensor that needs a gradient is kept)."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    raw = np.asarray(_data(target))
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name}: target must be numeric, got dtype {raw.dtype}")
    return raw.astype(_data(like).dtype, copy=False)


def _check_reduction(reduction: str, name: str, input: Any) -> str:
    """A valid reduction for ``input``: 'mean' of an empty input is an error, not NaN.

    The mean of no elements is undefined (PyTorch returns NaN, NumPy adds a RuntimeWarning);
    'sum' of an empty input is 0 and 'none' an empty array, each with an empty gradient.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    shape = np.shape(_data(input))
    if reduction == "mean" and 0 in shape:
        raise ValueError(f"{name}: input is empty (shape {shape}); the mean of no elements is "
                         "undefined (use reduction='sum' for 0, or 'none')")
    return reduction


def _check_same_shape(name: str, input: Any, target: Any, what: str = "target") -> None:
    a, b = _data(input).shape, _data(target).shape
    if a != b:
        raise ValueError(f"{name}: input shape {a} and {what} shape {b} differ; they must be "
                         f"equal (reshape one of them: no silent broadcasting)")


def _reduce(per_element: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return per_element
    if reduction == "sum":  # the methods skip np.sum's dispatch layer (~2x faster when small)
        return per_element.sum()
    return per_element.mean()


def _seed(g: np.ndarray, reduction: str, count: int) -> np.ndarray:
    """d(reduced loss)/d(each element's loss), times ``g``: g, g, or g/count."""
    return g / count if reduction == "mean" else g


# --- elementwise regression and margin losses ------------------------------------------------

def _elementwise(formula: Formula, loss, d_input, d_target, latex: str):
    """Register a loss that is the reduction of ``loss(input, target, **params)`` per element."""

    def forward(input, target, reduction, **params):
        return _reduce(loss(input, target, **params), reduction)

    def vjp_input(g, ans, input, target, reduction, **params):
        return _seed(g, reduction, input.size) * d_input(input, target, **params)

    vjp_target = None
    if d_target is not None:
        def vjp_target(g, ans, input, target, reduction, **params):
            return _seed(g, reduction, input.size) * d_target(input, target, **params)

    return define(formula, forward, vjp_input, vjp_target, latex=latex)


def _regression(name: str, prim, input: Any, target: Any, reduction: str, **params) -> Tensor:
    input = _input(input, name)
    target = _target(target, input, name)
    _check_same_shape(name, input, target)
    return apply(prim, input, target, reduction=_check_reduction(reduction, name, input), **params)


_SUM_NOTE = "With reduction='mean' the sum is divided by the number of elements n."

_l1_prim = _elementwise(
    Formula(
        name="l1_loss", title="L1 loss",
        definition=r"J(y, \hat{y}) = \sum_{i=1}^{n} \lvert \hat{y}_i - y_i \rvert",
        derivative=r"\frac{\partial J}{\partial \hat{y}_i} = \operatorname{sign}(\hat{y}_i - y_i) = "
                   r"\frac{\lvert \hat{y}_i - y_i \rvert}{\hat{y}_i - y_i}",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = \sum_{i=1}^{n} "
                   r"\operatorname{sign}(f_i(w) - y_i)\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="J(y, ŷ) = Σ_i |ŷ_i − y_i|",
        derivative_text="∂J/∂ŷ_i = sign(ŷ_i − y_i) = |ŷ_i − y_i| / (ŷ_i − y_i)",
        chain_rule_text="∂/∂w J(y, f(w)) = Σ_i sign(f_i(w) − y_i)·∂f_i(w)/∂w",
        sympy=("Abs(p - y)", "sign(p - y)"), wrt="p",
        note="The subgradient where ŷ_i = y_i is 0 (PyTorch's l1_loss). " + _SUM_NOTE,
        local="sign($x - $y)",
        local_latex=r"\operatorname{sign}($x - $y)",
    ),
    lambda p, y: np.abs(p - y),
    lambda p, y: np.sign(p - y), lambda p, y: -np.sign(p - y),
    latex=r"\mathrm{{L1}}({0}, {1})")

def l1_loss(input: Any, target: Any, *, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced; the subgradient where they are equal is 0."""
    return _regression("l1_loss", _l1_prim, input, target, reduction)


_mse_prim = _elementwise(
    Formula(
        name="mse_loss", title="Mean squared error",
        definition=r"J(y, \hat{y}) = \frac{1}{n}\sum_{i=1}^{n} (\hat{y}_i - y_i)^2",
        derivative=r"\frac{\partial J}{\partial \hat{y}_i} = \frac{2}{n}\,(\hat{y}_i - y_i)",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = \frac{2}{n}\sum_{i=1}^{n} "
                   r"(f_i(w) - y_i)\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="J(y, ŷ) = (1/n)·Σ_i (ŷ_i − y_i)²",
        derivative_text="∂J/∂ŷ_i = (2/n)·(ŷ_i − y_i)",
        chain_rule_text="∂/∂w J(y, f(w)) = (2/n)·Σ_i (f_i(w) − y_i)·∂f_i(w)/∂w",
        sympy=("(p - y)**2", "2*(p - y)"), wrt="p",
        note="PyTorch's mse_loss; reduction='sum' drops the 1/n.",
        local="2 * ($x - $y)",
        local_latex=r"2\,($x - $y)",
    ),
    lambda p, y: np.square(p - y),
    lambda p, y: 2 * (p - y), lambda p, y: 2 * (y - p),
    latex=r"\mathrm{{MSE}}({0}, {1})")

def mse_loss(input: Any, target: Any, *, reduction: str = "mean") -> Tensor:
    """(input - target)^2, reduced: the mean squared error by default (PyTorch's mse_loss)."""
    return _regression("mse_loss", _mse_prim, input, target, reduction)


_l2_prim = _elementwise(
    Formula(
        name="l2_loss", title="L2 loss",
        definition=r"L = \frac{1}{2}\sum_{i=1}^{n} (y_i - \hat{y}_i)^2",
        derivative=r"\frac{\partial L}{\partial \hat{y}_i} = \hat{y}_i - y_i",
        chain_rule=r"\frac{\partial}{\partial w} L(y, f(w)) = \sum_{i=1}^{n} (f_i(w) - y_i)\,"
                   r"\frac{\partial f_i(w)}{\partial w}",
        definition_text="L = ½·Σ_i (y_i − ŷ_i)²",
        derivative_text="∂L/∂ŷ_i = ŷ_i − y_i",
        chain_rule_text="∂/∂w L(y, f(w)) = Σ_i (f_i(w) − y_i)·∂f_i(w)/∂w",
        sympy=("(y - p)**2/2", "p - y"), wrt="p",
        note="The reference solution's L2 and TensorFlow's l2_loss: reduction='sum' by default.",
        local="$x - $y",
        local_latex=r"$x - $y",
    ),
    lambda p, y: 0.5 * np.square(p - y),
    lambda p, y: p - y, lambda p, y: y - p,
    latex=r"\mathrm{{L2}}({0}, {1})")


def l2_loss(input: Any, target: Any, *, reduction: str = "sum") -> Tensor:
    """0.5 * sum((input - target)^2): the reference solution's L2 and TensorFlow's ``l2_loss``.

    Its default reduction is 'sum', not 'mean', because the 1/2 is there to cancel the 2 of
    the derivative of a *sum* of squares: dL/dy_hat_i = y_hat_i - y_i. ``reduction='mean'``
    gives 0.5 * mean(r^2) (half of ``mse_loss``).
    """
    return _regression("l2_loss", _l2_prim, input, target, reduction)


def _huber(p, y, delta):
    r = np.abs(p - y)
    return np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))


_huber_prim = _elementwise(
    Formula(
        name="huber_loss", title="Huber loss",
        definition=r"L_\delta(y_i, \hat{y}_i) = \begin{cases} \frac{1}{2}(y_i - \hat{y}_i)^2 & "
                   r"\lvert y_i - \hat{y}_i \rvert \le \delta \\ \delta\,\bigl(\lvert y_i - \hat{y}_i "
                   r"\rvert - \frac{\delta}{2}\bigr) & \text{else} \end{cases}",
        derivative=r"\frac{\partial L_\delta}{\partial \hat{y}_i} = \begin{cases} \hat{y}_i - y_i & "
                   r"\lvert y_i - \hat{y}_i \rvert \le \delta \\ \delta\,\operatorname{sign}"
                   r"(\hat{y}_i - y_i) & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w} \sum_{i} L_\delta(y_i, f_i(w)) = \sum_{i} "
                   r"\frac{\partial L_\delta}{\partial \hat{y}_i}\Big|_{\hat{y}_i = f_i(w)}\,"
                   r"\frac{\partial f_i(w)}{\partial w}",
        definition_text="L_δ(y_i, ŷ_i) = ½·(y_i − ŷ_i)² if |y_i − ŷ_i| ≤ δ, else δ·(|y_i − ŷ_i| − δ/2)",
        derivative_text="∂L_δ/∂ŷ_i = ŷ_i − y_i if |y_i − ŷ_i| ≤ δ, else δ·sign(ŷ_i − y_i)",
        chain_rule_text="∂/∂w Σ_i L_δ(y_i, f_i(w)) = Σ_i ∂L_δ/∂ŷ_i (at ŷ_i = f_i(w))·∂f_i(w)/∂w",
        sympy=("Piecewise(((y - p)**2/2, Abs(y - p) <= delta), (delta*(Abs(y - p) - delta/2), True))",
               "Piecewise((p - y, Abs(y - p) <= delta), (delta*sign(p - y), True))"),
        wrt="p", symbols={"delta": "positive"},
        note="The reference solution's L_s with s = δ; at |r| = δ both branches agree. " + _SUM_NOTE,
        local="$x - $y if abs($x - $y) <= $delta else $delta * sign($x - $y)",
        local_latex=(r"$x - $y \text{ if } |$x - $y| \le $delta \text{ else } "
                     r"$delta \operatorname{sign}($x - $y)"),
    ),
    _huber,
    lambda p, y, delta: np.clip(p - y, -delta, delta),
    lambda p, y, delta: np.clip(y - p, -delta, delta),
    latex=r"\mathrm{{Huber}}_\delta({0}, {1})")

def huber_loss(input: Any, target: Any, *, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    """0.5 r^2 where |r| <= delta, else delta (|r| - delta/2); r = input - target (PyTorch's)."""
    delta = _number("huber_loss", "delta", delta)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return _regression("huber_loss", _huber_prim, input, target, reduction, delta=delta)


_hinge_prim = _elementwise(
    Formula(
        name="hinge_loss", title="Hinge (binary SVM) loss",
        definition=r"L(y, \hat{y}) = \sum_{i=1}^{m} \max(0,\ 1 - y_i \hat{y}_i), \quad y_i \in \{-1, +1\}",
        derivative=r"\frac{\partial L}{\partial \hat{y}_i} = \begin{cases} -y_i & y_i \hat{y}_i < 1 "
                   r"\\ 0 & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w} L(y, f(w)) = \sum_{i=1}^{m} \begin{cases} "
                   r"-y_i\,\frac{\partial f_i(w)}{\partial w} & y_i f_i(w) < 1 \\ 0 & "
                   r"\text{else} \end{cases}",
        definition_text="L(y, ŷ) = Σ_i max(0, 1 − y_i·ŷ_i),  y_i ∈ {−1, +1}",
        derivative_text="∂L/∂ŷ_i = −y_i if y_i·ŷ_i < 1, else 0",
        chain_rule_text="∂/∂w L(y, f(w)) = Σ_i (−y_i·∂f_i(w)/∂w if y_i·f_i(w) < 1, else 0)",
        sympy=("Piecewise((1 - y*p, y*p < 1), (0, True))", "Piecewise((-y, y*p < 1), (0, True))"),
        wrt="p",
        note="At the margin exactly (y·ŷ = 1) the subgradient is 0. " + _SUM_NOTE,
        local="-$y if $y * $x < 1 else 0",
        local_latex=r"-$y \text{ if } $y \cdot $x < 1 \text{ else } 0",
    ),
    lambda s, y: np.maximum(0, 1 - y * s),
    lambda s, y: np.where(y * s < 1, -y, 0).astype(s.dtype), None,
    latex=r"\mathrm{{hinge}}({0}, {1})")


def hinge_loss(input: Any, target: Any, *, reduction: str = "mean") -> Tensor:
    """The binary SVM loss max(0, 1 - y s) for scores s and labels y in {-1, +1}.

    The subgradient is -y where y s < 1 and 0 elsewhere, including at the margin y s = 1.
    """
    input = _input(input, "hinge_loss")
    labels = _data(target)
    _check_same_shape("hinge_loss", input, labels, "labels")
    if labels.size and not np.all((labels == 1) | (labels == -1)):
        bad = labels[(labels != 1) & (labels != -1)].ravel()[0].item()
        raise ValueError(f"hinge_loss: labels must be -1 or +1, got {bad!r}")
    labels = labels.astype(_data(input).dtype, copy=False)
    return apply(_hinge_prim, input, labels, reduction=_check_reduction(reduction, "hinge_loss", input))


def _rescale(name: str, what: str, weight: Any, input: Any) -> np.ndarray | None:
    """A constant weight that broadcasts to the input's shape without enlarging it."""
    if weight is None:
        return None
    array = _data(input)
    weight = np.asarray(_data(weight), dtype=array.dtype)
    try:
        fits = np.broadcast_shapes(weight.shape, array.shape) == array.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: {what} of shape {weight.shape} does not broadcast to the input's "
                         f"shape {array.shape}")
    return weight


def _weighted(values, weight):
    return values if weight is None else values * weight


def _bce(p, y, weight):
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 as PyTorch does
        log_p = np.maximum(np.log(p), -100)
        log_q = np.maximum(np.log1p(-p), -100)
    return _weighted(-(y * log_p + (1 - y) * log_q), weight)


def _bce_d_input(p, y, weight):
    # PyTorch's clamp of the denominator keeps p = 0 or 1 finite.
    return _weighted((p - y) / np.maximum(p * (1 - p), 1e-12), weight)


def _bce_d_target(p, y, weight):
    with np.errstate(divide="ignore"):
        return _weighted(np.maximum(np.log1p(-p), -100) - np.maximum(np.log(p), -100), weight)


_bce_prim = _elementwise(
    Formula(
        name="binary_cross_entropy", title="Binary cross-entropy",
        definition=r"J(y, p) = -\sum_{i=1}^{n} \bigl(y_i \log p_i + (1 - y_i)\log(1 - p_i)\bigr)",
        derivative=r"\frac{\partial J}{\partial p_i} = \frac{p_i - y_i}{p_i\,(1 - p_i)}",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = \sum_{i=1}^{n} "
                   r"\frac{f_i(w) - y_i}{f_i(w)\,(1 - f_i(w))}\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="J(y, p) = −Σ_i (y_i·log p_i + (1 − y_i)·log(1 − p_i))",
        derivative_text="∂J/∂p_i = (p_i − y_i) / (p_i·(1 − p_i))",
        chain_rule_text="∂/∂w J(y, f(w)) = Σ_i (f_i(w) − y_i) / (f_i(w)·(1 − f_i(w)))·∂f_i(w)/∂w",
        sympy=("-(y*log(p) + (1 - y)*log(1 - p))", "(p - y)/(p*(1 - p))"), wrt="p",
        note="As PyTorch, each log is clamped at −100 and p(1 − p) at 1e-12, so p = 0 or 1 is "
             "finite. " + _SUM_NOTE,
        local="($x - $y) / ($x * (1 - $x))",
        local_latex=r"\frac{$x - $y}{$x\,(1 - $x)}",
    ),
    _bce, _bce_d_input, _bce_d_target,
    latex=r"\mathrm{{BCE}}({0}, {1})")


def binary_cross_entropy(input: Any, target: Any, *, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1] (PyTorch's clamps).

    ``weight`` rescales each element's loss (broadcast to the input's shape), as PyTorch.
    """
    name = "binary_cross_entropy"
    input = _input(input, name)
    p = _data(input)
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        raise ValueError(f"{name}: input must be probabilities in [0, 1], got values in "
                         f"[{np.nanmin(p)}, {np.nanmax(p)}]; use binary_cross_entropy_with_logits "
                         "for scores")
    return _regression(name, _bce_prim, input, target, reduction,
                       weight=_rescale(name, "weight", weight, input))


def _log1p_exp(z):
    """log(1 + e^z) = max(z, 0) + log(1 + e^-|z|): e^|z| is never formed."""
    with _quiet():
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _bce_logits(z, y, weight, pos_weight):
    if pos_weight is None:
        loss = _log1p_exp(z) - z * y
    else:  # -(pw y log sigma(z) + (1 - y) log(1 - sigma(z)))
        loss = pos_weight * y * _log1p_exp(-z) + (1 - y) * _log1p_exp(z)
    return _weighted(loss, weight)


def _bce_logits_d_input(z, y, weight, pos_weight):
    if pos_weight is None:
        return _weighted(_sigmoid_prim(z) - y, weight)
    return _weighted(_sigmoid_prim(z) * (1 - y + pos_weight * y) - pos_weight * y, weight)


def _bce_logits_d_target(z, y, weight, pos_weight):
    if pos_weight is None:
        return _weighted(-z, weight)
    return _weighted(pos_weight * _log1p_exp(-z) - _log1p_exp(z), weight)


_bce_logits_prim = _elementwise(
    Formula(
        name="binary_cross_entropy_with_logits", title="Binary cross-entropy with logits",
        definition=r"J(y, z) = -\sum_{i=1}^{n} \bigl(y_i \log \sigma(z_i) + (1 - y_i)"
                   r"\log(1 - \sigma(z_i))\bigr)",
        derivative=r"\frac{\partial J}{\partial z_i} = \sigma(z_i) - y_i",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = \sum_{i=1}^{n} \bigl(\sigma(f_i(w)) - "
                   r"y_i\bigr)\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="J(y, z) = −Σ_i (y_i·log σ(z_i) + (1 − y_i)·log(1 − σ(z_i)))",
        derivative_text="∂J/∂z_i = σ(z_i) − y_i",
        chain_rule_text="∂/∂w J(y, f(w)) = Σ_i (σ(f_i(w)) − y_i)·∂f_i(w)/∂w",
        sympy=("-(y*log(1/(1 + exp(-p))) + (1 - y)*log(1 - 1/(1 + exp(-p))))",
               "1/(1 + exp(-p)) - y"), wrt="p",
        note="Computed as max(z, 0) − z·y + log(1 + e^(−|z|)): finite for any z. With pos_weight "
             "pw the y·log σ term is scaled by pw, and ∂J/∂z_i = σ(z_i)(1 − y_i + pw·y_i) − pw·y_i. "
             + _SUM_NOTE,
    ),
    _bce_logits, _bce_logits_d_input, _bce_logits_d_target,
    latex=r"\mathrm{{BCE}}(\sigma({0}), {1})")


def binary_cross_entropy_with_logits(input: Any, target: Any, *, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy of sigmoid(z), in a form that is finite for any logit z.

    ``weight`` rescales each element's loss; ``pos_weight`` (one per class, the last axis)
    rescales the positive term y log sigma(z), as PyTorch's ``BCEWithLogitsLoss``.
    """
    name = "binary_cross_entropy_with_logits"
    input = _input(input, name)
    return _regression(name, _bce_logits_prim, input, target, reduction,
                       weight=_rescale(name, "weight", weight, input),
                       pos_weight=_rescale(name, "pos_weight", pos_weight, input))


# --- cross-entropy over classes --------------------------------------------------------------

def _ce_targets(logits, target, label_smoothing, weight, ignore_index):
    """Target rows q and the 'mean' divisor, so that the loss of row i is -sum_c q_ic log p_ic.

    q = w * ((1 - eps) y + eps / C), with y one-hot rows for class indices (zero rows where the
    index is ``ignore_index``). The divisor is PyTorch's: the number of rows, or for class
    indices the summed weight of the rows' target classes (the count of rows not ignored).
    """
    classes = logits.shape[-1]
    if target.dtype.kind in "iu":
        kept = target != ignore_index
        index = np.where(kept, target, 0)
        q = np.zeros(logits.shape, dtype=logits.dtype)
        np.put_along_axis(q, index[..., None], 1, axis=-1)
    else:
        kept, q = None, target.astype(logits.dtype, copy=False)
    if label_smoothing:
        q = (1 - label_smoothing) * q + label_smoothing / classes
    if weight is not None:
        q = q * weight
    if kept is None:
        return q, (logits.shape[0] if logits.ndim == 2 else 1)
    if not kept.all():
        q = q * kept[..., None]
    divisor = np.sum(weight[index] * kept) if weight is not None else int(np.count_nonzero(kept))
    return q, divisor


def _plain_indices(target, label_smoothing, weight, ignore_index):
    """For class indices with no smoothing and no class weight (the common case): the index
    of each row's class (0 where ignored), the rows that count (None: all), and their number.
    Else None, and the general one-hot path is taken."""
    if target.dtype.kind not in "iu" or label_smoothing or weight is not None:
        return None
    kept = target != ignore_index
    if kept.all():
        return target, None, target.size
    return np.where(kept, target, 0), kept, int(np.count_nonzero(kept))


def _exp_shifted(logits):
    """z - max z per row, e^(z - max z), and the row sums of the latter (kept as a column).

    Log-sum-exp is max z + log(total) and softmax is e / total: the forward needs the first,
    the VJP the second, so the forward keeps (e, total) as its residual."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    with _quiet():  # a class 1e4 below the best has e = 0 (probability 0), quietly
        e = np.exp(shifted)
    return shifted, e, e.sum(axis=-1, keepdims=True)


def _cross_entropy_fwd(logits, target, reduction, label_smoothing, weight, ignore_index):
    shifted, e, total = _exp_shifted(logits)
    plain = _plain_indices(target, label_smoothing, weight, ignore_index)
    if plain is not None:
        # Pick each row's log-probability instead of multiplying by a one-hot matrix: the
        # same numbers, without building and summing an (N, C) array (W2/W3 benchmarks).
        # -log p_iy = log sum_c e^(z_ic - m_i) - (z_iy - m_i), with m_i the row's maximum.
        index, kept, divisor = plain
        rows = shifted.reshape(-1, shifted.shape[-1])
        picked = rows[np.arange(rows.shape[0]), index.ravel()].reshape(index.shape)
        per_row = np.log(total[..., 0]) - picked
        if kept is not None:
            per_row = np.where(kept, per_row, 0)
    else:
        q, divisor = _ce_targets(logits, target, label_smoothing, weight, ignore_index)
        shifted -= np.log(total)  # log-softmax
        per_row = -np.sum(q * shifted, axis=-1)
    residual = (e, total, plain)  # softmax = e / total, and the class-index bookkeeping
    if reduction == "mean":  # 0/0 = NaN when every row is ignored, as PyTorch (quietly)
        total_loss = per_row.sum()
        return (total_loss / divisor if divisor else total_loss * np.nan), residual
    return _reduce(per_row, reduction), residual


def _cross_entropy(logits, target, reduction, label_smoothing, weight, ignore_index):
    return _cross_entropy_fwd(logits, target, reduction, label_smoothing, weight, ignore_index)[0]


def _row_seed(g, reduction, divisor):
    if reduction == "none":
        return g[..., None]
    if reduction == "mean":
        # A mean over zero total weight (every target ignore_index, or weighted 0): the loss is
        # 0/0 = NaN, as PyTorch's, but no row counts, so the gradient is 0 (PyTorch's), not
        # 0 * inf = NaN poisoning the step.
        return g / divisor if divisor else g * 0
    return g


def _cross_entropy_vjp(g, ans, logits, target, reduction, label_smoothing, weight, ignore_index,
                       residual=None):
    # The reference solution's result in one step: dJ/dz = (softmax(z) - y)/m. Written as
    # softmax * sum(q) - q, which is the same when rows of q sum to 1 and exact when they don't
    # (class weights, unnormalised probability rows, ignored rows).
    if residual is None:
        # Called outside a fast backward pass: the explainer, or a recorded backward
        # (create_graph), where logits may be a Tensor: the general form, differentiable.
        q, divisor = _ce_targets(logits, target, label_smoothing, weight, ignore_index)
        softmax = _softmax_prim(logits, axis=-1)
        return _row_seed(g, reduction, divisor) * (softmax * np.sum(q, axis=-1, keepdims=True) - q)
    e, total, plain = residual
    softmax = e / total  # a new array: e may serve a second backward (retain_graph)
    if not softmax.flags.c_contiguous:  # the writes below go through reshape, which would copy
        softmax = np.ascontiguousarray(softmax)  # (and lose them) for transposed logits
    if plain is not None:  # q is one-hot: subtract 1 at each row's class, in place
        index, kept, divisor = plain
        classes = softmax.shape[-1]
        rows = softmax.reshape(-1, classes)
        # Row i's class sits at flat position i*C + y_i: one flat index is half the cost of
        # indexing with (rows, columns) (~1 us less on W2's 64 x 10).
        rows.reshape(-1)[np.arange(0, rows.size, classes) + index.ravel()] -= 1
        if kept is not None:
            rows[~kept.ravel()] = 0
        softmax *= _row_seed(g, reduction, divisor)
        return softmax
    q, divisor = _ce_targets(logits, target, label_smoothing, weight, ignore_index)
    return _row_seed(g, reduction, divisor) * (softmax * np.sum(q, axis=-1, keepdims=True) - q)


def _cross_entropy_vjp_target(g, ans, logits, target, reduction, label_smoothing, weight,
                              ignore_index, residual=None):  # recomputed: a rare path
    _, divisor = _ce_targets(logits, target, label_smoothing, weight, ignore_index)
    d = -(1 - label_smoothing) * _log_softmax_prim(logits, axis=-1)
    return _row_seed(g, reduction, divisor) * (d if weight is None else d * weight)


_cross_entropy_prim = define(
    Formula(
        name="cross_entropy", title="Cross-entropy (softmax)",
        definition=r"J(y, \hat{y}) = -\frac{1}{m}\sum_{i=1}^{m}\sum_{j=1}^{C} y_{ij}\log \hat{y}_{ij},"
                   r" \quad \hat{y}_{ij} = \frac{e^{z_{ij}}}{\sum_{k=1}^{C} e^{z_{ik}}}",
        derivative=r"\frac{\partial J}{\partial z_{ij}} = \frac{1}{m}\bigl(\hat{y}_{ij} - y_{ij}\bigr)",
        chain_rule=r"\frac{\partial}{\partial w} J(y, \mathrm{softmax}(f(w))) = \sum_{i}\sum_{j} "
                   r"\frac{1}{m}\bigl(\hat{y}_{ij} - y_{ij}\bigr)\,\frac{\partial f_{ij}(w)}{\partial w}",
        definition_text="J(y, ŷ) = −(1/m)·Σ_i Σ_j y_ij·log ŷ_ij,  ŷ_ij = e^(z_ij) / Σ_k e^(z_ik)",
        derivative_text="∂J/∂z_ij = (1/m)·(ŷ_ij − y_ij)",
        chain_rule_text="∂/∂w J(y, softmax(f(w))) = Σ_i Σ_j (1/m)·(ŷ_ij − y_ij)·∂f_ij(w)/∂w",
        sympy=("-Sum(y[k]*log(exp(z[k])/Sum(exp(z[c]), (c, 1, n))), (k, 1, n))",
               "exp(z[i])/Sum(exp(z[c]), (c, 1, n)) - y[i]"),
        wrt="z[i]",
        note="For one sample (m = 1) with target row y summing to 1. Computed from log-softmax, "
             "so logits of ±1e4 are finite. Label smoothing ε replaces y by (1 − ε)·y + ε/C; "
             "class weights w_j multiply y_ij (and 'mean' divides by the rows' summed weight).",
    ),
    _cross_entropy, _cross_entropy_vjp, _cross_entropy_vjp_target,
    latex=r"\mathrm{{CE}}({0}, {1})", fwd=_cross_entropy_fwd)


def _class_indices(name: str, logits: np.ndarray, target: np.ndarray,
                   ignore_index: int | None = None) -> np.ndarray:
    if logits.ndim not in (1, 2):
        raise ValueError(f"{name}: input must be (N, C) scores or (C,) for one sample, got shape "
                         f"{logits.shape}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"{name}: class-index target must have shape {logits.shape[:-1]} for input "
                         f"of shape {logits.shape}, got {target.shape}")
    if target.dtype.kind not in "iu":
        raise ValueError(f"{name}: class-index target must be integers, got dtype {target.dtype}")
    classes = logits.shape[-1]
    if target.size == 0 or (target.min() >= 0 and target.max() < classes):
        return target  # all in range: two reductions, cheaper than the masks below
    bad = (target < 0) | (target >= classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if np.any(bad):
        raise ValueError(f"{name}: class index {target[bad].ravel()[0].item()} out of range for "
                         f"{classes} classes (valid: 0 to {classes - 1})")
    return target


def _class_weight(name: str, weight: Any, logits: np.ndarray) -> np.ndarray | None:
    if weight is None:
        return None
    weight = np.asarray(_data(weight), dtype=logits.dtype)
    if weight.shape != logits.shape[-1:]:
        raise ValueError(f"{name}: weight must have shape {logits.shape[-1:]} (one per class), "
                         f"got {weight.shape}")
    return weight


def cross_entropy(input: Any, target: Any, *, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input``, as PyTorch's ``cross_entropy``.

    ``input`` is (N, C) scores, (C,) for one sample, or (N, C, d1, ..., dK) with the class
    axis second (a score map: every position is a sample). ``target`` is class indices
    (integers, the input's shape without the class axis) or probability / one-hot rows
    (floats, the input's shape). ``weight`` rescales each class, ``ignore_index`` marks
    class-index rows that contribute nothing, ``label_smoothing`` mixes in the uniform
    distribution, each as PyTorch defines it. The backward pass is (softmax - y)/N in one step.
    """
    name = "cross_entropy"
    input = _input(input, name)
    logits = _data(input)
    label_smoothing = _number(name, "label_smoothing", label_smoothing)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing}")
    raw = _data(target)
    if logits.ndim == 0:
        raise ValueError(f"{name}: input must be (N, C) scores, (C,) for one sample or "
                         f"(N, C, d1, ...) score maps, got shape {logits.shape}")
    if logits.ndim > 2:
        return _cross_entropy_over_positions(input, target, raw, weight, ignore_index, reduction,
                                             label_smoothing)
    if raw.dtype.kind == "f" and raw.shape != logits.shape and raw.shape == logits.shape[:-1]:
        raise ValueError(f"{name}: class-index target must be integers, got dtype {raw.dtype} "
                         f"(use .astype(int)); probability targets have the input's shape {logits.shape}")
    if raw.dtype.kind == "f":
        _check_same_shape(name, logits, raw, "probability target")
        target = _target(target, input, name)
    elif raw.dtype.kind in "iu":
        target = _class_indices(name, logits, raw, ignore_index)
    else:
        raise TypeError(f"{name}: target must be class indices (integers) or probability rows "
                        f"(floats), got dtype {raw.dtype}")
    return apply(_cross_entropy_prim, input, target, reduction=_check_reduction(reduction, name, input),
                 label_smoothing=label_smoothing, weight=_class_weight(name, weight, logits),
                 ignore_index=int(ignore_index))


def _cross_entropy_over_positions(input, target, raw, weight, ignore_index, reduction, smoothing):
    """(N, C, d1, ..., dK) scores: each of the N x d1 x ... x dK positions is a row of C class
    scores. The class axis goes last and the rest are stacked, by transpose and reshape ops of
    the graph, so the (M, C) primitive computes it and 'mean' divides as PyTorch does."""
    name = "cross_entropy"
    reduction = _check_reduction(reduction, name, input)  # an empty input named by its own shape
    shape = _data(input).shape
    classes, positions = shape[1], shape[:1] + shape[2:]
    if raw.dtype.kind == "f" and raw.shape == positions:
        raise ValueError(f"{name}: class-index target must be integers, got dtype {raw.dtype} "
                         f"(use .astype(int)); probability targets have the input's shape {shape}")
    if raw.dtype.kind not in "iuf":
        raise TypeError(f"{name}: target must be class indices (integers) or probability rows "
                        f"(floats), got dtype {raw.dtype}")
    if raw.shape != (shape if raw.dtype.kind == "f" else positions):
        raise ValueError(f"{name}: for input of shape {shape} (classes on axis 1) the target must "
                         f"be class indices of shape {positions} or probabilities of shape {shape}, "
                         f"got shape {raw.shape}")
    last = (0, *range(2, len(shape)), 1)  # (N, C, d...) -> (N, d..., C)
    rows = reshape(transpose(input, last), (-1, classes))
    if raw.dtype.kind == "f":
        target = reshape(transpose(_target(target, input, name), last), (-1, classes))
    else:
        target = raw.reshape(-1)
    out = cross_entropy(rows, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                        label_smoothing=smoothing)
    return reshape(out, positions) if reduction == "none" else out


# --- multi-class margin loss ------------------------------------------------------------------

def _margins(x, target, margin):
    """h_ij = margin - x_i,y_i + x_ij, and the mask of the terms that count (h > 0, j != y_i)."""
    rows = np.arange(x.shape[0])
    h = margin - x[rows, target][:, None] + x
    active = np.array(h > 0, dtype=bool)  # a mask: an array even when h is a Tensor
    active[rows, target] = False
    return h, active


def _multi_margin(x, target, reduction, p, margin, weight):
    x2 = x.reshape(-1, x.shape[-1])
    h, active = _margins(x2, target.reshape(-1), margin)
    terms = np.where(active, h if p == 1 else h * h, 0)
    if weight is not None:
        terms = terms * weight[target.reshape(-1)][:, None]
    per_row = terms.sum(axis=-1) / x.shape[-1]
    return _reduce(per_row.reshape(x.shape[:-1]), reduction)


def _multi_margin_vjp(g, ans, x, target, reduction, p, margin, weight):
    x2 = x.reshape(-1, x.shape[-1])
    t = target.reshape(-1)
    h, active = _margins(x2, t, margin)
    d = np.where(active, 1 if p == 1 else 2 * h, 0).astype(x.dtype) / x.shape[-1]
    if weight is not None:
        d = d * weight[t][:, None]
    # x_y enters every term with a minus sign: its column gets -(the row's sum). d is 0 there
    # (not active), so subtracting the sum at the one-hot positions writes it in.
    rows = x2.shape[0]
    one_hot = np.zeros(d.shape, dtype=bool)
    one_hot[np.arange(rows), t] = True
    d = d - one_hot * d.sum(axis=-1, keepdims=True)
    seed = _seed(g, reduction, rows)
    seed = np.reshape(seed, (-1, 1)) if reduction == "none" else seed
    return (seed * d).reshape(x.shape)


_multi_margin_prim = define(
    Formula(
        name="multi_margin_loss", title="Multi-class margin (SVM) loss",
        definition=r"L(x, y) = \frac{1}{C}\sum_{j \ne y} \max(0,\ \Delta - x_y + x_j)^p",
        derivative=r"\frac{\partial L}{\partial x_j} = \frac{p}{C}\,h_j^{p-1}\,[h_j > 0] \ (j \ne y),"
                   r" \quad \frac{\partial L}{\partial x_y} = -\sum_{j \ne y}\frac{\partial L}"
                   r"{\partial x_j}, \quad h_j = \Delta - x_y + x_j",
        chain_rule=r"\frac{\partial}{\partial w} L(f(w), y) = \sum_{j} \frac{\partial L}{\partial x_j}"
                   r"\Big|_{x = f(w)}\,\frac{\partial f_j(w)}{\partial w}",
        definition_text="L(x, y) = (1/C)·Σ_{j≠y} max(0, Δ − x_y + x_j)^p",
        derivative_text="∂L/∂x_j = (p/C)·h_j^(p−1)·[h_j > 0] for j ≠ y,  ∂L/∂x_y = −Σ_{j≠y} ∂L/∂x_j,"
                        "  h_j = Δ − x_y + x_j",
        chain_rule_text="∂/∂w L(f(w), y) = Σ_j ∂L/∂x_j (at x = f(w))·∂f_j(w)/∂w",
        sympy=("Sum((1 - KroneckerDelta(k, t))*Max(0, margin - x[t] + x[k]), (k, 1, n))/n",
               "((1 - KroneckerDelta(i, t))*Heaviside(margin - x[t] + x[i])"
               " - KroneckerDelta(i, t)*Sum((1 - KroneckerDelta(k, t))*Heaviside(margin - x[t] + x[k]),"
               " (k, 1, n)))/n"),
        wrt="x[i]", symbols={"margin": "positive", "t": "integer"},
        note="PyTorch's MultiMarginLoss (p = 1 or 2, optional class weights); a term exactly at "
             "the margin (h_j = 0) has subgradient 0. Shown for p = 1 in SymPy, where t is the target "
             "class (y above), margin is Δ (PyTorch's margin, default 1) and n the number of classes.",
    ),
    _multi_margin, _multi_margin_vjp, latex=r"\mathrm{{MultiMargin}}({0}, {1})")


def multi_margin_loss(input: Any, target: Any, *, p: int = 1, margin: float = 1.0,
                      weight: Any = None, reduction: str = "mean") -> Tensor:
    """PyTorch's ``multi_margin_loss``: sum over j != y of max(0, margin - x_y + x_j)^p, over C."""
    name = "multi_margin_loss"
    if p not in (1, 2):
        raise ValueError(f"{name}: p must be 1 or 2, got {p!r}")
    input = _input(input, name)
    scores = _data(input)
    target = _class_indices(name, scores, _data(target))
    return apply(_multi_margin_prim, input, target, reduction=_check_reduction(reduction, name, input),
                 p=p, margin=_number(name, "margin", margin), weight=_class_weight(name, weight, scores))


# --- cosine similarity and the cosine embedding loss -------------------------------------------

# cos(a, b) and d cos / d a_i in SymPy syntax, for the two formulas below.
_NORM_A, _NORM_B = "sqrt(Sum(a[k]**2, (k, 1, n)))", "sqrt(Sum(b[k]**2, (k, 1, n)))"
_COS = f"Sum(a[k]*b[k], (k, 1, n))/({_NORM_A}*{_NORM_B})"
_DCOS_DA = f"b[i]/({_NORM_A}*{_NORM_B}) - a[i]*{_COS}/Sum(a[k]**2, (k, 1, n))"


def _cosine_parts(a, b, axis, eps):
    """Norms clamped below by eps (PyTorch's current cosine_similarity) and the cosine.

    a and b are broadcast first, as PyTorch does: b of shape (1,) against a of shape (2,) is
    the vector (b, b), whose norm is sqrt(2)|b|, not |b|.
    """
    a, b = np.broadcast_arrays(a, b)
    na = np.sqrt(np.sum(a * a, axis=axis, keepdims=True))
    nb = np.sqrt(np.sum(b * b, axis=axis, keepdims=True))
    ca, cb = np.maximum(na, eps), np.maximum(nb, eps)
    cos = np.sum((a / ca) * (b / cb), axis=axis, keepdims=True)
    return na, nb, ca, cb, cos


def _cosine_similarity(a, b, axis, eps):
    return np.squeeze(_cosine_parts(a, b, axis, eps)[-1], axis=axis)


def _cosine_vjp(which):
    def vjp(g, ans, a, b, axis, eps):
        shape = (a, b)[which].shape
        a, b = np.broadcast_arrays(a, b)
        na, nb, ca, cb, cos = _cosine_parts(a, b, axis, eps)
        if which == 1:  # the formula is symmetric: swap the roles of a and b
            a, b, na, nb, ca, cb = b, a, nb, na, cb, ca
        # d cos/d a = b/(|a||b|) - cos a/|a|^2; a norm clamped at eps is a constant (no 2nd term).
        d = b / (ca * cb) - np.where(na > eps, cos / (ca * ca), 0) * a
        return unbroadcast(np.expand_dims(g, axis) * d, shape)  # sum over the broadcast copies
    return vjp


_cosine_prim = define(
    Formula(
        name="cosine_similarity", title="Cosine similarity",
        definition=r"J(y, \hat{y}) = \cos\theta = \frac{\sum_{i=1}^{n} y_i \hat{y}_i}{\sqrt{\sum_{i=1}^{n}"
                   r" y_i^2}\,\sqrt{\sum_{i=1}^{n} \hat{y}_i^2}}",
        derivative=r"\frac{\partial J}{\partial \hat{y}_i} = \frac{y_i}{\lvert y \rvert\,\lvert \hat{y}"
                   r" \rvert} - \frac{\hat{y}_i\,J(y, \hat{y})}{\lvert \hat{y} \rvert^2}",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = \sum_{i=1}^{n} \Bigl(\frac{y_i}{\lvert y"
                   r" \rvert\,\lvert f(w) \rvert} - \frac{f_i(w)\,J(y, f(w))}{\lvert f(w) \rvert^2}\Bigr)"
                   r"\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="J(y, ŷ) = cos θ = Σ_i y_i·ŷ_i / (√(Σ_i y_i²)·√(Σ_i ŷ_i²))",
        derivative_text="∂J/∂ŷ_i = y_i / (|y|·|ŷ|) − ŷ_i·J(y, ŷ) / |ŷ|²",
        chain_rule_text="∂/∂w J(y, f(w)) = Σ_i (y_i / (|y|·|f(w)|) − f_i(w)·J(y, f(w)) / |f(w)|²)"
                        "·∂f_i(w)/∂w",
        sympy=(_COS, f"a[i]/({_NORM_A}*{_NORM_B}) - b[i]*f/Sum(b[k]**2, (k, 1, n))"),
        wrt="b[i]",
        note="cosine_similarity(a, b) with a = y, b = ŷ. Each norm is clamped below by eps, as "
             "PyTorch's current F.cosine_similarity does, so a zero vector gives 0, not NaN.",
    ),
    _cosine_similarity, _cosine_vjp(0), _cosine_vjp(1), latex=r"\cos({0}, {1})")


def cosine_similarity(a: Any, b: Any, axis: int = -1, eps: float = 1e-8) -> Tensor:
    """a.b / (max(|a|, eps) max(|b|, eps)) along ``axis``.

    ``a`` and ``b`` broadcast first, as PyTorch's do, and the norms are those of the broadcast
    vectors (b of shape (1,) against a of shape (2,) is (b, b)); ``axis`` counts in the
    broadcast shape. Each gradient is summed back to its input's own shape.
    """
    a, b = _input(a, "cosine_similarity"), _input(b, "cosine_similarity")
    try:
        shape = np.broadcast_shapes(np.shape(_data(a)), np.shape(_data(b)))
    except ValueError:
        raise ValueError(f"cosine_similarity: shapes {np.shape(_data(a))} and {np.shape(_data(b))} "
                         "do not broadcast") from None
    if not shape or not -len(shape) <= axis < len(shape):
        raise ValueError(f"cosine_similarity: axis {axis} is out of range for shape {shape}")
    if not eps > 0:
        raise ValueError(f"cosine_similarity: eps must be > 0, got {eps}")
    return apply(_cosine_prim, a, b, axis=int(axis), eps=_number("cosine_similarity", "eps", eps))


_EMBED_EPS = 1e-12  # PyTorch's cosine_embedding_loss adds this to each squared norm


def _embedding_parts(a, b):
    a, b = np.broadcast_arrays(a, b)  # (N, D) against an anchor row (1, D)
    sa = np.sum(a * a, axis=-1) + _EMBED_EPS
    sb = np.sum(b * b, axis=-1) + _EMBED_EPS
    denom = np.sqrt(sa * sb)
    return sa, sb, denom, np.sum(a * b, axis=-1) / denom


def _cosine_embedding(a, b, y, reduction, margin):
    cos = _embedding_parts(a, b)[-1]
    return _reduce(np.where(y == 1, 1 - cos, np.maximum(0, cos - margin)), reduction)


def _cosine_embedding_vjp(which):
    def vjp(g, ans, a, b, y, reduction, margin):
        shape = (a, b)[which].shape
        a, b = np.broadcast_arrays(a, b)
        sa, sb, denom, cos = _embedding_parts(a, b)
        dl_dcos = np.where(y == 1, -1, (cos - margin > 0)).astype(a.dtype, copy=False)
        rows = a.shape[0] if a.ndim == 2 else 1
        coef = (_seed(g, reduction, rows) * dl_dcos)[..., None]
        if which == 0:
            d = coef * (b / denom[..., None] - (cos / sa)[..., None] * a)
        else:
            d = coef * (a / denom[..., None] - (cos / sb)[..., None] * b)
        return unbroadcast(d, shape)  # sum over the broadcast copies
    return vjp


_cosine_embedding_prim = define(
    Formula(
        name="cosine_embedding_loss", title="Cosine embedding loss",
        definition=r"L(a, b, y) = \begin{cases} 1 - \cos(a, b) & y = 1 \\ \max(0,\ \cos(a, b) - "
                   r"\mathrm{margin}) & y = -1 \end{cases}",
        derivative=r"\frac{\partial L}{\partial a_i} = \begin{cases} -\frac{\partial \cos}{\partial a_i}"
                   r" & y = 1 \\ [\cos(a, b) > \mathrm{margin}]\,\frac{\partial \cos}{\partial a_i} & "
                   r"y = -1 \end{cases}, \quad \frac{\partial \cos}{\partial a_i} = \frac{b_i}{\lvert a"
                   r" \rvert\,\lvert b \rvert} - \frac{a_i \cos(a, b)}{\lvert a \rvert^2}",
        chain_rule=r"\frac{\partial}{\partial w} L(f(w), b, y) = \sum_{i} \frac{\partial L}{\partial a_i}"
                   r"\Big|_{a = f(w)}\,\frac{\partial f_i(w)}{\partial w}",
        definition_text="L(a, b, y) = 1 − cos(a, b) if y = 1;  max(0, cos(a, b) − margin) if y = −1",
        derivative_text="∂L/∂a_i = −∂cos/∂a_i if y = 1;  [cos > margin]·∂cos/∂a_i if y = −1;"
                        "  ∂cos/∂a_i = b_i/(|a|·|b|) − a_i·cos(a, b)/|a|²",
        chain_rule_text="∂/∂w L(f(w), b, y) = Σ_i ∂L/∂a_i (at a = f(w))·∂f_i(w)/∂w",
        sympy=(f"Piecewise((1 - {_COS}, Eq(t, 1)), (Max(0, {_COS} - margin), True))",
               f"Piecewise((-({_DCOS_DA}), Eq(t, 1)), (Heaviside({_COS} - margin)*({_DCOS_DA}), True))"),
        wrt="a[i]", symbols={"t": "integer", "margin": "real"},
        note="As PyTorch, 1e-12 is added to each squared norm, so a zero vector gives cos = 0 with "
             "a finite gradient.",
    ),
    _cosine_embedding, _cosine_embedding_vjp(0), _cosine_embedding_vjp(1),
    latex=r"\mathrm{{CosEmb}}({0}, {1}, {2})")


def cosine_embedding_loss(a: Any, b: Any, target: Any, *, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """PyTorch's ``cosine_embedding_loss``: 1 - cos for y = 1, max(0, cos - margin) for y = -1.

    ``a`` and ``b`` are (N, D) or (D,), the same number of dimensions; rows broadcast as PyTorch's
    do (an anchor (1, D) against N rows); ``target`` is (N,) or (). The last dimensions must be
    equal: PyTorch also broadcasts (N, 1) against (N, D) but then takes the norm of the
    un-broadcast (N, 1), which is not the cosine of the broadcast vectors.
    """
    name = "cosine_embedding_loss"
    a, b = _input(a, name), _input(b, name)
    sa, sb = np.shape(_data(a)), np.shape(_data(b))
    if len(sa) not in (1, 2) or len(sb) != len(sa) or sa[-1] != sb[-1]:
        raise ValueError(f"{name}: inputs must both be (N, D) or both (D,) with the same D, got "
                         f"shapes {sa} and {sb}")
    try:
        shape = np.broadcast_shapes(sa, sb)
    except ValueError:
        raise ValueError(f"{name}: input shapes {sa} and {sb} do not broadcast") from None
    y = _data(target)
    if y.shape != shape[:-1]:
        raise ValueError(f"{name}: target must have shape {shape[:-1]} for inputs of shape {shape}, "
                         f"got {y.shape}")
    if y.size and not np.all((y == 1) | (y == -1)):
        bad = y[(y != 1) & (y != -1)].ravel()[0].item()
        raise ValueError(f"{name}: target must be 1 or -1, got {bad!r}")
    reduction = _check_reduction(reduction, name, np.broadcast_to(0.0, shape))
    return apply(_cosine_embedding_prim, a, b, y, reduction=reduction,
                 margin=_number("cosine_embedding_loss", "margin", margin))


# --- PyTorch's nll_loss, smooth_l1_loss and kl_div (issue 12) ---------------------------------
# VJPs in plain NumPy calls that chainrule also implements for Tensors (no in-place writes), so
# the same rule runs when the backward pass is recorded.

def _nll_weights(x, target, weight, ignore_index):
    """Each row's class (0 where ignored) and its weight w[y_i] (0 where ignored), in x's dtype."""
    kept = target != ignore_index
    index = np.where(kept, target, 0)
    w = kept.astype(x.dtype) if weight is None else weight[index] * kept
    return index, w


def _nll(x, target, reduction, weight, ignore_index):
    index, w = _nll_weights(x, target, weight, ignore_index)
    per_row = -(w * np.take_along_axis(x, index[..., None], axis=-1)[..., 0])
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 = NaN: nothing counted
            return per_row.sum() / w.sum()  # PyTorch's divisor: the summed weight of the rows
    return _reduce(per_row, reduction)


def _nll_vjp(g, ans, x, target, reduction, weight, ignore_index):
    index, w = _nll_weights(x, target, weight, ignore_index)
    if reduction == "mean":
        total = w.sum()
        w = w / total if total else w * 0  # every row ignored: no gradient, as PyTorch
    picked = np.arange(x.shape[-1]) == index[..., None]  # one-hot rows
    return np.where(picked, np.expand_dims(-(g * w), -1), 0)


_nll_prim = define(
    Formula(
        name="nll_loss", title="Negative log-likelihood",
        definition=r"J(y, x) = -\frac{\sum_{i=1}^{m} w_{y_i}\,x_{i y_i}}{\sum_{i=1}^{m} w_{y_i}}",
        derivative=r"\frac{\partial J}{\partial x_{ij}} = -\frac{w_{j}\,[j = y_i]}"
                   r"{\sum_{k=1}^{m} w_{y_k}}",
        chain_rule=r"\frac{\partial}{\partial w} J(y, f(w)) = -\frac{1}{\sum_k w_{y_k}}\sum_{i=1}^{m}"
                   r" w_{y_i}\,\frac{\partial f_{i y_i}(w)}{\partial w}",
        definition_text="J(y, x) = −Σ_i w_(y_i)·x_(i,y_i) / Σ_i w_(y_i)",
        derivative_text="∂J/∂x_ij = −w_j·[j = y_i] / Σ_k w_(y_k)",
        chain_rule_text="∂/∂w J(y, f(w)) = −(1/Σ_k w_(y_k))·Σ_i w_(y_i)·∂f_(i,y_i)(w)/∂w",
        sympy=("-Sum(y[k]*x[k], (k, 1, n))", "-y[j]"), wrt="x[j]",
        note="x holds log-probabilities (log_softmax's output); y_i is row i's class index, "
             "written as a one-hot row y in the SymPy form. Class weights w default to 1; rows "
             "whose class is ignore_index count nowhere. 'mean' divides by Σ w_(y_i) as PyTorch; "
             "when every row is ignored the loss is NaN and the gradient 0, as PyTorch.",
    ),
    _nll, _nll_vjp, latex=r"\mathrm{{NLL}}({0}, {1})")


def nll_loss(input: Any, target: Any, *, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of class indices under log-probabilities (PyTorch's
    ``F.nll_loss``): -input[i, target[i]], weighted and reduced.

    ``input`` is (N, C) log-probabilities, (C,) for one sample, or (N, C, d1, ..., dK) with
    classes on axis 1; ``target`` holds integer class indices of the input's shape without the
    class axis. ``weight`` (C,) rescales each class; rows whose target is ``ignore_index`` count
    nowhere; 'mean' divides by the summed weight of the counted rows. Raises ValueError for
    shapes that do not fit or indices out of range, TypeError for non-integer targets.
    """
    name = "nll_loss"
    input = _input(input, name)
    x = _data(input)
    raw = np.asarray(_data(target))
    if x.ndim == 0:
        raise ValueError(f"{name}: input must be (N, C) log-probabilities, (C,) for one sample or "
                         f"(N, C, d1, ...), got shape {x.shape}")
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must be integer class indices, got dtype {raw.dtype}")
    positions = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if raw.shape != positions:
        raise ValueError(f"{name}: target must have shape {positions} for input of shape "
                         f"{x.shape} (classes on axis {min(x.ndim - 1, 1)}), got {raw.shape}")
    reduction = _check_reduction(reduction, name, input)  # named by the input's own shape
    if x.ndim > 2:  # classes last: every position is a row
        input = transpose(input, (0, *range(2, x.ndim), 1))
    classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    bad = (raw != ignore_index) & ((raw < 0) | (raw >= classes))
    if np.any(bad):
        raise ValueError(f"{name}: class index {raw[bad].ravel()[0].item()} out of range for "
                         f"{classes} classes (valid: 0 to {classes - 1}, or ignore_index "
                         f"{ignore_index})")
    w = None
    if weight is not None:
        w = np.asarray(_data(weight), dtype=x.dtype)
        if w.shape != (classes,):
            raise ValueError(f"{name}: weight must have shape ({classes},) (one per class), got "
                             f"{w.shape}")
    return apply(_nll_prim, input, raw, reduction=reduction, weight=w,
                 ignore_index=int(ignore_index))


def _smooth_l1(p, y, beta):
    r = p - y
    a = np.abs(r)
    if beta == 0:  # PyTorch: beta = 0 is the L1 loss
        return a
    return np.where(a < beta, (0.5 / beta) * (r * r), a - 0.5 * beta)


def _smooth_l1_d(p, y, beta):
    r = p - y
    if beta == 0:
        return np.sign(r)
    return np.clip(r / beta, -1, 1)  # r/beta inside |r| < beta, its sign outside


_smooth_l1_prim = _elementwise(
    Formula(
        name="smooth_l1_loss", title="Smooth L1 loss",
        definition=r"L_\beta(y_i, \hat{y}_i) = \begin{cases} \frac{(\hat{y}_i - y_i)^2}{2\beta} & "
                   r"\lvert \hat{y}_i - y_i \rvert < \beta \\ \lvert \hat{y}_i - y_i \rvert - "
                   r"\frac{\beta}{2} & \text{else} \end{cases}",
        derivative=r"\frac{\partial L_\beta}{\partial \hat{y}_i} = \begin{cases} "
                   r"\frac{\hat{y}_i - y_i}{\beta} & \lvert \hat{y}_i - y_i \rvert < \beta \\ "
                   r"\operatorname{sign}(\hat{y}_i - y_i) & \text{else} \end{cases}",
        chain_rule=r"\frac{\partial}{\partial w} \sum_{i} L_\beta(y_i, f_i(w)) = \sum_{i} "
                   r"\frac{\partial L_\beta}{\partial \hat{y}_i}\Big|_{\hat{y}_i = f_i(w)}\,"
                   r"\frac{\partial f_i(w)}{\partial w}",
        definition_text="L_β(y_i, ŷ_i) = (ŷ_i − y_i)²/(2β) if |ŷ_i − y_i| < β, else |ŷ_i − y_i| − β/2",
        derivative_text="∂L_β/∂ŷ_i = (ŷ_i − y_i)/β if |ŷ_i − y_i| < β, else sign(ŷ_i − y_i)",
        chain_rule_text="∂/∂w Σ_i L_β(y_i, f_i(w)) = Σ_i ∂L_β/∂ŷ_i (at ŷ_i = f_i(w))·∂f_i(w)/∂w",
        sympy=("Piecewise(((p - y)**2/(2*beta), Abs(p - y) < beta), (Abs(p - y) - beta/2, True))",
               "Piecewise(((p - y)/beta, Abs(p - y) < beta), (sign(p - y), True))"),
        wrt="p", symbols={"beta": "positive"},
        note="PyTorch's smooth_l1_loss (Girshick 2015): huber_loss / β; β = 0 is the L1 loss. "
             + _SUM_NOTE,
    ),
    _smooth_l1, _smooth_l1_d, lambda p, y, beta: -_smooth_l1_d(p, y, beta),
    latex=r"\mathrm{{SmoothL1}}_\beta({0}, {1})")


def smooth_l1_loss(input: Any, target: Any, *, beta: float = 1.0, reduction: str = "mean") -> Tensor:
    """(input - target)^2 / (2 beta) where |input - target| < beta, else |input - target| - beta/2
    (PyTorch's ``F.smooth_l1_loss``). Shapes must be equal; ValueError if beta < 0."""
    beta = _number("smooth_l1_loss", "beta", beta)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    return _regression("smooth_l1_loss", _smooth_l1_prim, input, target, reduction, beta=beta)


KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


def _kl_pointwise(p, y, log_target):
    if log_target:
        return np.exp(y) * (y - p)
    with np.errstate(divide="ignore", invalid="ignore"):  # y log y = 0 at y = 0 (xlogy)
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0) - y * p


def _kl_seed(g, reduction, p):
    if reduction == "mean":
        return g / p.size
    if reduction == "batchmean":
        return g / p.shape[0]
    return g


def _kl_div(p, y, reduction, log_target):
    per = _kl_pointwise(p, y, log_target)
    if reduction == "batchmean":
        return per.sum() / p.shape[0]
    return _reduce(per, reduction)


def _kl_vjp_input(g, ans, p, y, reduction, log_target):
    return -_kl_seed(g, reduction, p) * (np.exp(y) if log_target else y)


def _kl_vjp_target(g, ans, p, y, reduction, log_target):
    if log_target:
        return _kl_seed(g, reduction, p) * (np.exp(y) * (y - p + 1))
    with np.errstate(divide="ignore"):
        return _kl_seed(g, reduction, p) * (np.log(y) + 1 - p)


_kl_div_prim = define(
    Formula(
        name="kl_div", title="Kullback-Leibler divergence",
        definition=r"D(y \,\|\, e^{x}) = \sum_{i=1}^{n} y_i\,(\log y_i - x_i)",
        derivative=r"\frac{\partial D}{\partial x_i} = -y_i",
        chain_rule=r"\frac{\partial}{\partial w} D(y \,\|\, e^{f(w)}) = -\sum_{i=1}^{n} y_i\,"
                   r"\frac{\partial f_i(w)}{\partial w}",
        definition_text="D(y ‖ e^x) = Σ_i y_i·(log y_i − x_i)",
        derivative_text="∂D/∂x_i = −y_i",
        chain_rule_text="∂/∂w D(y ‖ e^f(w)) = −Σ_i y_i·∂f_i(w)/∂w",
        sympy=("y*(log(y) - p)", "-y"), wrt="p", symbols={"y": "positive"},
        note="PyTorch's kl_div: the input x holds log-probabilities, the target y probabilities "
             "(0·log 0 = 0), or log-probabilities with log_target=True (then e^y·(y − x)). "
             "'batchmean' divides the sum by the batch size (the true KL divergence per sample); "
             "'mean' (the default, as PyTorch) divides by the number of elements.",
    ),
    _kl_div, _kl_vjp_input, _kl_vjp_target, latex=r"\mathrm{{KL}}({1} \,\|\, {0})")


def kl_div(input: Any, target: Any, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """PyTorch's ``F.kl_div``: sum of target * (log(target) - input), ``input`` being
    log-probabilities, ``target`` probabilities (or log-probabilities with ``log_target=True``).

    ``reduction`` is 'mean' (over every element, PyTorch's default), 'batchmean' (the sum over
    the first axis's size: the mathematically correct KL per sample), 'sum' or 'none'. Shapes
    must be equal. Raises ValueError for an unknown reduction or 'batchmean' of a 0-d input.
    """
    name = "kl_div"
    input = _input(input, name)
    target = _target(target, input, name)
    _check_same_shape(name, input, target)
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got "
                         f"{reduction!r}")
    shape = _data(input).shape
    if reduction == "batchmean" and (not shape or shape[0] == 0):
        raise ValueError(f"{name}: reduction='batchmean' needs a batch axis of size > 0, got "
                         f"input of shape {shape}")
    if reduction == "mean":
        _check_reduction(reduction, name, input)
    return apply(_kl_div_prim, input, target, reduction=reduction, log_target=bool(log_target))
