"""The pattern of a layered network, and the textbook names of its scalars.

``match_layered`` recognises, in the engine's graph, the shape of a hand-worked exercise: dense
layers made by ``F.linear`` (weights and biases trainable tensors or constants; a bias per unit
or one shared by the layer), each optionally followed by an activation, ending in a loss or in
the scalar output itself. It returns a ``LayeredNetwork``: which tensors play which role. It
computes nothing; ``quantities.py`` builds the named values from it and from the engine.

A new shape is one addition here: say how to find it in the graph (a new field of
``DenseLayer`` or ``LayeredNetwork``) and how to name it (a method of ``Notation``).

``Notation`` names the scalars as the reference solution does (``w_{ij-l}``: from unit i to
unit j of layer l; ``B_{j-l}``; ``z_{j-l}``; ``y_{j-l}``; ``yhat``) or by array index (``W1[j,i]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

LINEAR_OPS = frozenset({"linear", "linear_no_bias"})  # the fused affine primitives of F.linear
NOTATIONS = ("reference", "matrix")
MAX_NAMED = 20000  # weights x samples; a larger network is explained node by node

# Losses that take logits and apply a squashing function themselves (PyTorch's convention):
# the probabilities they compute are shown as named quantities ŷ (computed by that function's
# own primitive), and an activation of the same family in front of them is a double squashing.
LOGIT_LOSSES = {"cross_entropy": "softmax", "binary_cross_entropy_with_logits": "sigmoid"}
SQUASHING = frozenset({"softmax", "log_softmax", "sigmoid"})
DELTA_CONVENTIONS = ("dL/dz", "-dL/dz")  # delta_{j-l} = dL/dz_{j-l}, or its negative
# How a weight matrix is laid out when shown: "in-out" (row i = the weights from input i, as the
# reference solution's w_l and many textbooks), "out-in" (row j = the weights into unit j: PyTorch's
# nn.Linear.weight, a network file's default). The reference notation shows w_l in-out unless a
# network file says otherwise; the matrix notation (W1[j,i], array indices) always out-in.
LAYOUTS = ("in-out", "out-in")


def double_squashing(activation: str | None, loss: str) -> str | None:
    """Why an output activation cannot go before ``loss`` (softmax before cross_entropy, which
    applies softmax itself), or None when the pairing is sound."""
    inner = LOGIT_LOSSES.get(loss)
    if inner is None or activation not in SQUASHING:
        return None
    return (
        f"{loss} takes logits and applies {inner} itself (as PyTorch's), so a {activation} "
        f'output layer would squash twice; give the output layer activation = "none" (the '
        f"explanation then shows the probabilities yhat = {inner}(z) as named quantities)"
    )


@dataclass
class DenseLayer:
    """One ``F.linear`` layer (and its activation) as found in the graph."""

    z: Tensor  # F.linear's output
    y: Tensor | None  # the activation's output (None: no activation)
    weight: np.ndarray  # (units, fan_in), PyTorch's layout
    weight_tensor: Tensor | None  # None: a constant array
    bias: np.ndarray | None  # (units,), or () for one bias shared by the layer's units
    bias_tensor: Tensor | None

    @property
    def out(self) -> Tensor:
        return self.y if self.y is not None else self.z

    @property
    def units(self) -> int:
        return int(self.weight.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def trains_weight(self) -> bool:
        return self.weight_tensor is not None and self.weight_tensor.requires_grad

    @property
    def trains_bias(self) -> bool:
        return self.bias_tensor is not None and self.bias_tensor.requires_grad

    @property
    def shared_bias(self) -> bool:
        return self.bias is not None and self.bias.ndim == 0

    def bias_at(self, j: int) -> tuple[int, ...]:
        """The index of unit j's bias in the bias array."""
        return () if self.shared_bias else (j,)


@dataclass
class LayeredNetwork:
    layers: list[DenseLayer]
    loss: Tensor  # the explained scalar: a loss, or the network's own output
    input_value: np.ndarray
    input_tensor: Tensor | None  # a graph leaf that requires grad: dL/dx is shown

    @property
    def has_loss(self) -> bool:
        return self.loss is not self.layers[-1].out

    @property
    def loss_node(self) -> Any:
        return self.loss._node if self.has_loss else None

    @property
    def trains_input(self) -> bool:
        return self.input_tensor is not None and self.input_tensor.requires_grad

    @property
    def probabilities(self) -> str | None:
        """The squashing function a logits loss applies to the output (softmax), else None."""
        if not self.has_loss or self.layers[-1].y is not None:
            return None
        return LOGIT_LOSSES.get(self.loss._node.prim.name)

    def parameters(self) -> list[tuple[int, str, Tensor]]:
        """(layer, "weight"/"bias", tensor) of every trainable parameter, in layer order."""
        out = []
        for li, layer in enumerate(self.layers, start=1):
            if layer.trains_weight:
                out.append((li, "weight", layer.weight_tensor))
            if layer.trains_bias:
                out.append((li, "bias", layer.bias_tensor))
        return out

    def named_size(self) -> int:
        samples = self.input_value.shape[0] if self.input_value.ndim == 2 else 1
        return samples * sum(layer.weight.size + layer.units**2 for layer in self.layers)


def _operand(node: Any, i: int) -> tuple[np.ndarray, Tensor | None] | None:
    """Argument i of a node: its value and its tensor (None for a constant); None when it is
    computed by the graph (not a leaf), which no layered network has."""
    if i >= len(node.args):
        return None
    parent = node.parents[i] if i < len(node.parents) else None
    if parent is not None and parent._node is not None:
        return None
    return np.asarray(node.args[i]), parent


def _linear_below(t: Tensor) -> Tensor | None:
    """``t`` if it is F.linear's output, its input if ``t`` is an activation of one, else None."""
    n = t._node
    if n is None:
        return None
    if n.prim.name in LINEAR_OPS:
        return t
    grad_args = [i for i, p in enumerate(n.parents) if p is not None and p.requires_grad]
    inner = n.parents[0] if grad_args == [0] else None
    if inner is None or inner._node is None or inner._node.prim.name not in LINEAR_OPS:
        return None
    return inner if inner.shape == t.shape else None


def match_layered(loss: Tensor, order: list[Tensor]) -> LayeredNetwork | None:
    """The layers of ``loss``'s graph if it is a layered network, else None (generic view)."""
    node = loss._node
    top = loss
    if _linear_below(loss) is None:  # a loss over the network's output
        if not node.parents or node.parents[0] is None:
            return None
        if any(p is not None and p.requires_grad for p in node.parents[1:]):
            return None
        top = node.parents[0]
    layers: list[DenseLayer] = []
    t = top
    while True:
        z = _linear_below(t)
        if z is None:
            return None
        act = t if z is not t else None
        n = z._node
        w = _operand(n, 1)
        b = _operand(n, 2) if n.prim.name == "linear" else (None, None)
        if w is None or b is None or w[0].ndim != 2 or (b[0] is not None and b[0].ndim > 1):
            return None
        layers.append(DenseLayer(z, act, w[0], w[1], b[0], b[1]))
        inp = n.parents[0]
        if inp is None or inp._node is None:
            input_value, input_tensor = np.asarray(n.args[0]), inp
            break
        t = inp
    layers.reverse()
    members = {id(loss), id(top)}
    for layer in layers:
        members.update({id(layer.z), id(layer.out)})
        members.update(id(p) for p in (layer.weight_tensor, layer.bias_tensor) if p is not None)
    if input_tensor is not None:
        members.add(id(input_tensor))
    if any(id(t) not in members for t in order):
        return None  # something else feeds the loss (a skip connection, a penalty): generic view
    x = input_value
    if x.ndim not in (1, 2) or x.shape[-1] != layers[0].fan_in:
        return None
    net = LayeredNetwork(layers, loss, x, input_tensor)
    if not net.has_loss and loss.size != 1:
        return None
    return net


class Notation:
    """Names of a layered network's scalars: the reference solution's (w_{ij-l}) or matrix
    indices (W1[j,i]). Each method returns (text name, LaTeX)."""

    def __init__(self, style: str, batched: bool, n_out: int):
        if style not in NOTATIONS:
            raise ValueError(f"unknown notation {style!r}; expected one of {', '.join(NOTATIONS)}")
        self.style, self.batched, self.n_out = style, batched, n_out

    def _sample(self, name: str, latex: str, s: int) -> tuple[str, str]:
        if not self.batched:
            return name, latex
        return f"{name}^{{({s + 1})}}", f"{latex}^{{({s + 1})}}"

    @staticmethod
    def _sub(*indices: int) -> str:
        return ("," if any(i >= 10 for i in indices) else "").join(str(i) for i in indices)

    def _index(self, s: int, j: int) -> str:
        return f"[{s},{j}]" if self.batched else f"[{j}]"

    def _li(self, s: int, j: int) -> str:
        return f"{s},{j}" if self.batched else f"{j}"

    def x(self, s: int, i: int) -> tuple[str, str]:
        if self.style == "matrix":
            name = f"x{self._index(s, i)}"
            return name, name
        name = f"x_{i + 1}" if i < 9 else f"x_{{{i + 1}}}"
        return self._sample(name, name, s)

    def w(self, layer: int, j: int, i: int) -> tuple[str, str]:
        if self.style == "matrix":
            return f"W{layer}[{j},{i}]", rf"W^{{[{layer}]}}_{{{j},{i}}}"
        name = f"w_{{{self._sub(i + 1, j + 1)}-{layer}}}"
        return name, name

    def b(self, layer: int, *j: int) -> tuple[str, str]:
        """Unit j's bias; without j, the one bias the layer's units share."""
        if self.style == "matrix":
            if not j:
                return f"b{layer}", rf"b^{{[{layer}]}}"
            return f"b{layer}[{j[0]}]", rf"b^{{[{layer}]}}_{{{j[0]}}}"
        name = f"B_{{{j[0] + 1}-{layer}}}" if j else f"B_{{{layer}}}"
        return name, name

    def unit(self, letter: str, layer: int, s: int, j: int) -> tuple[str, str]:
        if self.style == "matrix":
            return f"{letter}{layer}{self._index(s, j)}", rf"{letter}^{{[{layer}]}}_{{{self._li(s, j)}}}"
        name = f"{letter}_{{{j + 1}-{layer}}}"
        return self._sample(name, name, s)

    def yhat(self, s: int, j: int) -> tuple[str, str]:
        if self.style == "matrix":
            return f"yhat{self._index(s, j)}", rf"\hat{{y}}_{{{self._li(s, j)}}}"
        if self.n_out == 1:
            return self._sample("yhat", r"\hat{y}", s)
        return self._sample(f"yhat_{j + 1}", rf"\hat{{y}}_{{{j + 1}}}", s)

    def target(self, index: tuple[int, ...], same_as_output: bool) -> tuple[str, str]:
        if self.style == "matrix" or not same_as_output:
            name = "y[" + ",".join(str(i) for i in index) + "]" if index else "y"
            return name, name
        s, j = (index if self.batched else (0,) + index) if index else (0, 0)
        if self.n_out == 1:
            return self._sample("y", "y", s)
        return self._sample(f"y_{j + 1}", f"y_{{{j + 1}}}", s)

    def loss_term(self, index: tuple[int, ...]) -> tuple[str, str]:
        """One output's (and sample's) term of a loss that sums over them: L_1, L_2."""
        if self.style == "matrix":
            name = "L[" + ",".join(str(i) for i in index) + "]"
            return name, name
        s, j = index if self.batched else (0,) + index
        return self._sample(f"L_{j + 1}", f"L_{{{j + 1}}}", s)

    def delta(self, layer: int, s: int, j: int) -> tuple[str, str]:
        """The error term of a unit (dL/dz, or -dL/dz by a course's sign convention)."""
        if self.style == "matrix":
            return f"delta{layer}{self._index(s, j)}", rf"\delta^{{[{layer}]}}_{{{self._li(s, j)}}}"
        return self._sample(f"delta_{{{j + 1}-{layer}}}", rf"\delta_{{{j + 1}-{layer}}}", s)

    @staticmethod
    def path(total: tuple[str, str], via: tuple[str, str]) -> tuple[str, str]:
        """One path's term of a chain-rule sum: ``dL/dy_{1-1}|z_{1-2}`` is the part of
        dL/dy_{1-1} that flows through z_{1-2} (dL/dz_{1-2} * dz_{1-2}/dy_{1-1})."""
        return f"{total[0]}|{via[0]}", rf"\left.{total[1]}\right|_{{\text{{via }} {via[1]}}}"

    @staticmethod
    def d(num: tuple[str, str], den: tuple[str, str]) -> tuple[str, str]:
        return f"d{num[0]}/d{den[0]}", rf"\frac{{\partial {num[1]}}}{{\partial {den[1]}}}"


def names_array(shape: tuple[int, ...], make: Callable[..., tuple[str, str]]) -> np.ndarray:
    """An object array of (name, latex) pairs, one per element of ``shape``."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = make(*idx)
    return out
