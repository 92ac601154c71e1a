"""``explain(loss)``: read a forward and backward pass off the engine's own graph.

Three steps, each its own module: ``graph`` reads the engine's graph node by node (values, local
Jacobians from each primitive's VJP, gradients from ``chainrule.grad``); ``layered`` recognises
a layered network in it (``F.linear`` layers, activations, a loss) and names its scalars as a
hand-worked solution does; ``quantities`` builds those named scalars, each chain-rule product
with its factors. Any scalar graph that is not a layered network is explained node by node.
Nothing here knows a derivative formula, so the explanation cannot drift from the engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.autodiff import topological_order
from chainrule.explain.graph import check_loss, generic_update, graph_nodes, unique_names
from chainrule.explain.layered import (
    DELTA_CONVENTIONS,
    LAYOUTS,
    MAX_NAMED,
    NOTATIONS,
    LayeredNetwork,
    double_squashing,
    match_layered,
)
from chainrule.explain.model import Explanation
from chainrule.explain.numbers import DEFAULT_DIGITS
from chainrule.explain.quantities import Builder
from chainrule.tensor import Tensor, grad

__all__ = ["explain", "NOTATIONS", "DELTA_CONVENTIONS", "double_squashing"]


def _check_number(name: str, value: Any, low: float, strict: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, got {value!r}")


def explain(
    loss: Tensor,
    *,
    notation: str = "reference",
    lr: float | None = None,
    digits: int = DEFAULT_DIGITS,
    title: str | None = None,
    delta: str | None = None,
    aliases: dict[str, str] | None = None,
    layout: str | Sequence[str] | None = None,
) -> Explanation:
    """Explain how ``loss`` was computed and how its gradient flows back, step by step.

    Works for any scalar computed with chainrule. Every value, local derivative and gradient is
    read from the engine: values from the graph, gradients from ``chainrule.grad``, local
    derivatives from each primitive's own VJP. The graph is kept (``retain_graph=True``), so
    ``loss.backward()`` still works afterwards.

    When the graph is a layered network (``F.linear`` layers with trainable or constant weights
    and biases, a bias per unit or one shared 0-d bias, each layer optionally followed by an
    activation, ending in a loss or in the scalar output itself), every scalar is named:
    ``notation="reference"`` (w_{ij-l}, B_{j-l}, z_{j-l}, y_{j-l}, yhat; the reference solution's)
    or ``"matrix"`` (W1[j,i]). An input created with ``requires_grad=True`` gets its dL/dx_i. A
    unit that feeds several units shows each path's term before the chain rule sums them:
    ``dL/dy_{1-1}|z_{2-2}`` is the part of dL/dy_{1-1} through z_{2-2} (``dL_2/dy_{1-1}`` where
    each path ends in one output's loss term).

    Args:
        lr: adds one gradient-descent step (w - lr dL/dw) and the loss after it.
        digits: significant digits shown (1 to 15); see ``numbers.fmt``.
        delta: ``"dL/dz"`` or ``"-dL/dz"``: also name each unit's error term delta_{j-l} with that
            sign convention (some courses define delta = -dL/dz).
        aliases: other names for quantities, ``{"net_h1": "z_{1-1}", "w5": "w_{11-2}"}``; an
            alias also works inside derivative names (``dE/dw5``).
        layout: how the reference notation shows each weight matrix's gradient and update,
            ``"in-out"`` (row i = from input i: the reference solution's w_l, the default) or
            ``"out-in"`` (row j = into unit j: PyTorch's ``weight``), one for every layer or a
            list with one per layer. The matrix notation (W1[j,i]) is always out-in.

    Raises:
        TypeError: ``loss`` is not a Tensor. ValueError: not a scalar, no graph, graph freed,
        or an argument out of range.
    """
    if notation not in NOTATIONS:
        raise ValueError(f"unknown notation {notation!r}; expected one of {', '.join(NOTATIONS)}")
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not 1 <= digits <= 15:
        raise ValueError(f"digits must be an integer from 1 to 15 (significant digits), got {digits!r}")
    if lr is not None and (isinstance(lr, bool) or not np.isfinite(lr) or lr <= 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if delta is not None and delta not in DELTA_CONVENTIONS:
        raise ValueError(f"delta must be one of {', '.join(DELTA_CONVENTIONS)}, got {delta!r}")
    given = [layout] if isinstance(layout, str) else list(layout or [])
    if any(g not in LAYOUTS for g in given):
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)} (or a list of them), got {layout!r}")
    check_loss(loss)
    order = topological_order(loss)
    net = match_layered(loss, order)
    if net is not None and net.named_size() > MAX_NAMED:
        net = None  # too many scalars to write out one by one: the node-by-node view
    if net is not None and net.has_loss and net.layers[-1].y is not None:
        reason = double_squashing(net.layers[-1].y._node.prim.name, loss._node.prim.name)
        if reason:
            warnings.warn(reason, UserWarning, stacklevel=2)
    names = unique_names(order, loss, _preferred(net))
    found = grad(loss, order, retain_graph=True, allow_unused=True)
    grads = {id(t): (None if g is None else g.data) for t, g in zip(order, found, strict=False)}
    nodes = graph_nodes(loss, order, names, grads, _constants(net, loss))
    kwargs: dict[str, Any] = {}
    if net is not None:
        builder = Builder(net, notation, grads, _layouts(layout, len(net.layers)))
        builder.forward()
        builder.backward()
        if delta is not None:
            builder.deltas(delta)
        kwargs["arrays"] = builder.arrays()
        if lr is not None:
            kwargs["update_arrays"] = builder.update(float(lr), order)
        kwargs["quantities"] = builder.quantities
        kwargs["network"] = builder.view()
    elif lr is not None:
        kwargs["update_arrays"] = generic_update(order, names, grads, float(lr), loss)
    if title is None:
        if net is not None:
            sizes = [net.input_value.shape[-1]] + [layer.units for layer in net.layers]
            what = f"loss {loss._node.prim.name}" if net.has_loss else "no loss"
            title = f"{'-'.join(map(str, sizes))} network, {what}"
        else:
            title = f"Graph of {len(order)} tensors, output {loss._node.prim.name}"
    e = Explanation(
        title=title,
        loss=float(np.asarray(loss.data).reshape(())),
        nodes=nodes,
        notation=notation,
        digits=int(digits),
        lr=None if lr is None else float(lr),
        **kwargs,
    )
    if net is not None:
        e.aliases.update(builder.builtin_aliases())
    if aliases:
        e.add_aliases(aliases)
    return e


def _layouts(layout: str | Sequence[str] | None, n_layers: int) -> list[str] | None:
    if layout is None:
        return None
    given = [layout] * n_layers if isinstance(layout, str) else list(layout)
    if len(given) != n_layers or any(g not in LAYOUTS for g in given):
        raise ValueError(
            f"layout must be one of {', '.join(LAYOUTS)}, or a list of {n_layers} of them (one per "
            f"layer), got {layout!r}"
        )
    return given


def _preferred(net: LayeredNetwork | None) -> dict[int, str]:
    """The node view's names for a layered network's tensors (W1, b1, z1, y1, yhat)."""
    preferred: dict[int, str] = {}
    if net is None:
        return preferred
    for li, layer in enumerate(net.layers, start=1):
        preferred[id(layer.z)] = f"z{li}"
        if layer.weight_tensor is not None:
            preferred[id(layer.weight_tensor)] = f"W{li}"
        if layer.bias_tensor is not None:
            preferred[id(layer.bias_tensor)] = f"b{li}"
        if layer.y is not None:
            preferred[id(layer.y)] = "yhat" if li == len(net.layers) else f"y{li}"
    return preferred


def _constants(net: LayeredNetwork | None, loss: Tensor) -> dict[tuple[int, int], str]:
    if net is None:
        return {}
    out = {(id(net.layers[0].z), 0): "x"}
    if net.has_loss:
        out[(id(loss), 1)] = "y"
    return out
