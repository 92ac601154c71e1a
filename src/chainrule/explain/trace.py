"""Read a forward and backward pass off the engine's own graph.

``explain(loss)`` walks the graph that computed ``loss`` (each tensor's ``_node``: primitive,
parents, saved arguments), takes every tensor's gradient from ``chainrule.grad`` and every
local partial derivative from the primitive's own VJP, called with one-hot cotangents. Nothing
here knows a derivative formula: sigmoid' or the L2 loss's gradient come from the functions
that train networks, so the explanation cannot drift from the engine.

When the graph is a multilayer perceptron (``F.linear`` layers, each optionally followed by an
activation, ending in a loss), the explanation also names every scalar in the notation of a
hand-worked solution (``z_{1-1}``, ``dL/dw_{31-1}``) and writes each chain-rule product with
its factors. Any other scalar graph is explained node by node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

import numpy as np

from chainrule.autodiff import no_grad, topological_order
from chainrule.explain.model import (
    ClosedForm,
    Explanation,
    GradientArray,
    GraphNode,
    Layer,
    Lookup,
    NetworkView,
    Quantity,
)
from chainrule.explain.numbers import DEFAULT_DIGITS
from chainrule.functional.formulas import FORMULAS
from chainrule.tensor import Tensor, grad

LINEAR_OPS = frozenset({"linear", "linear_no_bias"})  # the fused affine primitives of F.linear
NOTATIONS = ("reference", "matrix")
MAX_JACOBIAN = 4096  # entries; larger local Jacobians are left out of the node view
MAX_NAMED = 20000  # weights x samples; a larger MLP is explained node by node

_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}


# --- the engine's graph, read node by node ----------------------------------------------------


def one_hot(shape: tuple[int, ...], k: int, dtype: Any) -> np.ndarray:
    g = np.zeros(shape, dtype=dtype)
    g.flat[k] = 1
    return g


def local_row(prim: Any, argnum: int, k: int, ans: np.ndarray, args: tuple, kwargs: dict) -> np.ndarray:
    """d ans.flat[k] / d args[argnum], by the primitive's own VJP with a one-hot cotangent."""
    with np.errstate(under="ignore"):  # as the engine's backward pass runs VJPs
        row = prim.vjp(argnum, one_hot(ans.shape, k, ans.dtype), ans, args, kwargs)
    return np.broadcast_to(np.asarray(row), np.shape(args[argnum]))


def local_jacobian(prim: Any, argnum: int, ans: np.ndarray, args: tuple, kwargs: dict) -> np.ndarray:
    """The full local Jacobian d ans / d args[argnum], shape (ans.size, arg.size)."""
    size = int(np.size(args[argnum]))
    jac = np.empty((ans.size, size), dtype=np.result_type(ans.dtype, np.float64))
    for k in range(ans.size):
        jac[k] = local_row(prim, argnum, k, ans, args, kwargs).ravel()
    return jac


def replay(order: Sequence[Tensor], substitute: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Run the recorded forward again with some tensors' values replaced (by ``id``).

    Every value comes from the same primitives' forwards that computed the graph the first time.
    """
    values: dict[int, np.ndarray] = {}
    for t in order:
        if id(t) in substitute:
            values[id(t)] = np.asarray(substitute[id(t)])
        elif t._node is None:
            values[id(t)] = t.data
        else:
            node = t._node
            args = [
                values.get(id(p), a) if p is not None else a
                for p, a in zip(node.parents, node.args, strict=False)
            ]
            values[id(t)] = np.asarray(node.prim.fn(*args, **node.kwargs))
    return values


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise TypeError(f"explain() needs a chainrule Tensor, got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(f"explain() needs a scalar loss, got a tensor of shape {loss.shape}")
    if loss._node is None or not loss.requires_grad:
        raise ValueError(
            "explain() needs a loss computed from tensors with requires_grad=True; "
            "this one has no graph to explain"
        )
    for t in topological_order(loss):
        if t._node is not None and t._node.released:
            raise ValueError(
                "the graph of this loss was freed by backward(); call explain() before "
                "backward(), or call backward(retain_graph=True)"
            )


def _latex_name(name: str) -> str:
    if name == "yhat":
        return r"\hat{y}"
    if re.fullmatch(r"\\?[A-Za-z]+[0-9]*(\{[^{}]*\})?(_(\{[^{}]*\}|\w))?(\^\{[^{}]*\})?", name):
        return name
    return r"\mathtt{" + name.replace("\\", r"\backslash ").replace("_", r"\_") + "}"


def _constant_text(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:
        return np.format_float_positional(arr.item(), trim="-") if arr.dtype.kind == "f" else str(arr.item())
    if arr.size <= 6:
        return np.array2string(arr, separator=", ")
    return f"const{tuple(arr.shape)}"


def _expression(op: str, parts: list[str], kwargs: dict) -> str:
    if op in _BINARY and len(parts) == 2:
        return f"{parts[0]} {_BINARY[op]} {parts[1]}"
    if op == "neg" and len(parts) == 1:
        return f"-{parts[0]}"
    extra = [f"{k}={v!r}" for k, v in kwargs.items() if v is not None and k not in ("dtype",)]
    return f"{op}({', '.join(parts + extra)})"


def closed_form(node: Any, operands: dict[str, str], count: int) -> ClosedForm | None:
    """The local derivative of ``node``'s function in closed form (its ``Formula.local``), with
    the node's keyword parameters written in as numbers; None where the formula has none or a
    parameter it does not name is set (a class weight), which would make it wrong.

    ``operands`` maps the template's ``$x``/``$f``/``$y`` to quantity names; ``count`` is the
    number of elements a 'mean' reduction divides by. The value shown beside it is still the
    VJP's: the tests evaluate every closed form against it."""
    formula = FORMULAS.get(node.prim.name)
    if formula is None or formula.local is None or formula.local_latex is None:
        return None
    text, latex = Template(formula.local), Template(formula.local_latex)
    named = {m.group("named") for m in text.pattern.finditer(formula.local) if m.group("named")}
    constants = {}
    for key, value in node.kwargs.items():
        if key == "reduction" or value is None:
            continue
        if key not in named or not isinstance(value, (int, float)):
            return None
        constants[key] = np.format_float_positional(value, trim="-")
    if not named <= set(constants) | set(operands):
        return None
    text_s, latex_s = text.safe_substitute(constants), latex.safe_substitute(constants)
    reduction = node.kwargs.get("reduction", "sum")
    if reduction == "mean":
        text_s, latex_s = f"({text_s}) / {count}", rf"\frac{{1}}{{{count}}}\left({latex_s}\right)"
    elif reduction != "sum":
        return None
    return ClosedForm(text_s, latex_s, {k: v for k, v in operands.items() if k in named})


def _expression_latex(prim: Any, parts: list[str]) -> str:
    if prim.latex:
        try:
            return prim.latex.format(*parts)
        except (IndexError, KeyError, ValueError):
            pass
    return r"\operatorname{" + prim.name.replace("_", r"\_") + "}(" + ", ".join(parts) + ")"


def _unique_names(order: Sequence[Tensor], loss: Tensor, preferred: dict[int, str]) -> dict[int, str]:
    names: dict[int, str] = {}
    taken: set[str] = set()
    counter = 0
    for t in order:
        name = t.name or preferred.get(id(t))
        if t is loss and not name:
            name = "L"
        if not name:
            counter += 1
            name = f"v{counter}"
            while name in taken:
                counter += 1
                name = f"v{counter}"
        base, n = name, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name)
        names[id(t)] = name
    return names


def graph_nodes(
    loss: Tensor,
    order: list[Tensor],
    names: dict[int, str],
    grads: dict[int, np.ndarray | None],
    constants: dict[tuple[int, int], str] | None = None,
) -> list[GraphNode]:
    """Every tensor of the graph in forward order, with its local Jacobians and gradient.

    ``constants`` names arguments that are not graph tensors, by (id(tensor), argument number).
    """
    constants = constants or {}
    nodes = []
    for t in order:
        name = names[id(t)]
        node = t._node
        if node is None:
            nodes.append(GraphNode(name, None, name, _latex_name(name), t.data, grads.get(id(t))))
            continue
        parts, parts_latex, local = [], [], {}
        for i, (p, a) in enumerate(zip(node.parents, node.args, strict=False)):
            if p is not None and id(p) in names:
                pname = names[id(p)]
                parts.append(pname)
                parts_latex.append(_latex_name(pname))
                big = t.data.size * np.size(a) > MAX_JACOBIAN
                local[pname] = None if big else local_jacobian(node.prim, i, t.data, node.args, node.kwargs)
            elif (id(t), i) in constants:
                parts.append(constants[(id(t), i)])
                parts_latex.append(_latex_name(constants[(id(t), i)]))
            elif isinstance(a, np.ndarray) or np.isscalar(a):
                text = p.name if p is not None and p.name else _constant_text(a)
                parts.append(text)
                parts_latex.append(_latex_name(text) if p is not None and p.name else text)
        nodes.append(
            GraphNode(
                name=name,
                op=node.prim.name,
                expression=_expression(node.prim.name, parts, node.kwargs),
                expression_latex=_expression_latex(node.prim, parts_latex),
                value=t.data,
                gradient=grads.get(id(t)),
                parents=tuple(parts),
                local=local,
            )
        )
    return nodes


# --- the multilayer-perceptron view --------------------------------------------------------------


@dataclass
class _MlpLayer:
    z: Tensor  # the linear output
    y: Tensor | None  # the activation output (None: no activation)
    weight: Tensor
    bias: Tensor | None

    @property
    def out(self) -> Tensor:
        return self.y if self.y is not None else self.z


@dataclass
class _Mlp:
    layers: list[_MlpLayer]
    loss: Tensor
    input_value: np.ndarray
    input_tensor: Tensor | None


def _match_mlp(loss: Tensor, order: list[Tensor]) -> _Mlp | None:
    """The layers of ``loss`` if its graph is linear (+ activation) layers ending in a loss."""
    node = loss._node
    if not node.parents or node.parents[0] is None:
        return None
    if any(p is not None and p.requires_grad for p in node.parents[1:]):
        return None
    layers: list[_MlpLayer] = []
    t = node.parents[0]
    while True:
        n = t._node
        if n is None:
            return None
        act = None
        if n.prim.name not in LINEAR_OPS:
            tensor_args = [i for i, p in enumerate(n.parents) if p is not None and p.requires_grad]
            inner = n.parents[0] if tensor_args == [0] else None
            if inner is None or inner._node is None or inner._node.prim.name not in LINEAR_OPS:
                return None
            if inner.shape != t.shape:
                return None
            act, t = t, inner
            n = t._node
        if len(n.parents) < 2 or n.parents[1] is None:
            return None
        weight = n.parents[1]
        bias = n.parents[2] if len(n.parents) > 2 else None
        if weight._node is not None or weight.ndim != 2 or (bias is not None and bias._node is not None):
            return None
        layers.append(_MlpLayer(z=t, y=act, weight=weight, bias=bias))
        inp = n.parents[0]
        if inp is None or not inp.requires_grad or inp._node is None:
            input_value, input_tensor = n.args[0], inp
            break
        t = inp
    layers.reverse()
    members = {id(loss)}
    for layer in layers:
        members.update({id(layer.z), id(layer.weight)})
        if layer.y is not None:
            members.add(id(layer.y))
        if layer.bias is not None:
            members.add(id(layer.bias))
    if input_tensor is not None:
        members.add(id(input_tensor))
    if any(id(t) not in members for t in order):
        return None  # something else feeds the loss (a skip connection, a penalty): generic view
    x = np.asarray(input_value)
    if x.ndim not in (1, 2) or x.shape[-1] != layers[0].weight.shape[1]:
        return None
    return _Mlp(layers, loss, x, input_tensor)


def _named_size(mlp: _Mlp) -> int:
    samples = mlp.input_value.shape[0] if mlp.input_value.ndim == 2 else 1
    return samples * sum(layer.weight.size + layer.z.shape[-1] ** 2 for layer in mlp.layers)


class Notation:
    """Names of an MLP's scalars: the reference solution's (w_{ij-l}) or matrix indices (W1[j,i])."""

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

    def x(self, s: int, i: int) -> tuple[str, str]:
        if self.style == "matrix":
            name = f"x{self._index(s, i)}"
            return name, name
        name = f"x_{i + 1}" if i < 9 else f"x_{{{i + 1}}}"
        return self._sample(name, name, s)

    def w(self, layer: int, j: int, i: int) -> tuple[str, str]:
        if self.style == "matrix":
            name = f"W{layer}[{j},{i}]"
            return name, rf"W^{{[{layer}]}}_{{{j},{i}}}"
        name = f"w_{{{self._sub(i + 1, j + 1)}-{layer}}}"
        return name, name

    def b(self, layer: int, j: int) -> tuple[str, str]:
        if self.style == "matrix":
            return f"b{layer}[{j}]", rf"b^{{[{layer}]}}_{{{j}}}"
        name = f"B_{{{j + 1}-{layer}}}"
        return name, name

    def unit(self, letter: str, layer: int, s: int, j: int) -> tuple[str, str]:
        if self.style == "matrix":
            return f"{letter}{layer}{self._index(s, j)}", rf"{letter}^{{[{layer}]}}_{{{self._li(s, j)}}}"
        name = f"{letter}_{{{j + 1}-{layer}}}"
        return self._sample(name, name, s)

    def _li(self, s: int, j: int) -> str:
        return f"{s},{j}" if self.batched else f"{j}"

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

    @staticmethod
    def d(num: tuple[str, str], den: tuple[str, str]) -> tuple[str, str]:
        return f"d{num[0]}/d{den[0]}", rf"\frac{{\partial {num[1]}}}{{\partial {den[1]}}}"


def _names_array(shape: tuple[int, ...], make: Callable[..., tuple[str, str]]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = make(*idx)
    return out


class _Builder:
    """Builds the named quantities of an MLP from the engine's graph (values never recomputed)."""

    def __init__(self, mlp: _Mlp, notation: str, grads: dict[int, np.ndarray]):
        self.mlp = mlp
        self.grads = grads
        x = mlp.input_value
        self.batched = x.ndim == 2
        self.n = x.shape[0] if self.batched else 1
        out = mlp.layers[-1].out
        self.nt = Notation(notation, self.batched, out.shape[-1])
        self.quantities: list[Quantity] = []
        self.by_name: dict[str, Quantity] = {}
        # (layer, flat index of z) -> [(flat index of y, name of dy/dz)]: the activation's
        # nonzero local derivatives, which the chain rule for dL/dz sums over
        self.act_terms: dict[tuple[int, int], list[tuple[int, str]]] = {}
        self._names()

    # indices into a unit tensor (z, y: shape (U,) or (N, U)) and the input
    def at(self, s: int, j: int) -> tuple[int, ...]:
        return (s, j) if self.batched else (j,)

    def _names(self) -> None:
        nt, mlp = self.nt, self.mlp
        n_in = mlp.input_value.shape[-1]
        shape = lambda units: (self.n, units) if self.batched else (units,)
        self.x_names = _names_array(shape(n_in), lambda *ix: nt.x(*(ix if self.batched else (0,) + ix)))
        self.w_names, self.b_names, self.z_names, self.y_names = [], [], [], []
        last = len(mlp.layers)
        for li, layer in enumerate(mlp.layers, start=1):
            units, fan_in = layer.weight.shape
            self.w_names.append(_names_array((units, fan_in), lambda j, i, li=li: nt.w(li, j, i)))
            self.b_names.append(_names_array((units,), lambda j, li=li: nt.b(li, j)))

            def unit(letter, li=li):
                return lambda *ix: nt.unit(letter, li, *(ix if self.batched else (0,) + ix))

            z = _names_array(shape(units), unit("z"))
            if layer.y is None:
                y = z
            elif li == last:
                y = _names_array(shape(units), lambda *ix: nt.yhat(*(ix if self.batched else (0,) + ix)))
            else:
                y = _names_array(shape(units), unit("y"))
            self.z_names.append(z)
            self.y_names.append(y)
        self.pred_names = self.y_names[-1]
        node = mlp.loss._node
        target = np.asarray(node.args[1]) if len(node.args) > 1 else None
        self.target_value = target
        self.target_names = None
        if target is not None and target.dtype.kind in "biuf":
            same = target.shape == self.pred_names.shape
            self.target_names = _names_array(target.shape, lambda *ix: nt.target(ix, same))
        # class indices are labels, not numbers a sheet could round: never substituted
        self.target_sub = self.target_names if target is not None and target.dtype.kind == "f" else None
        self.loss_name = ("L", "L")

    # --- adding quantities ---------------------------------------------------------------------
    def add(self, q: Quantity) -> Quantity:
        if q.name in self.by_name:
            return self.by_name[q.name]
        self.quantities.append(q)
        self.by_name[q.name] = q
        return q

    def given(self, names: np.ndarray, values: np.ndarray, kind: str, layer: int | None = None) -> None:
        for idx in np.ndindex(*names.shape):
            name, latex = names[idx]
            self.add(Quantity(name, latex, kind, float(values[idx]), layer=layer))

    @staticmethod
    def _substituted(value: Any, names: np.ndarray | None, lookup: Lookup) -> np.ndarray:
        arr = np.array(value, dtype=np.result_type(np.asarray(value).dtype, np.float64))
        if names is not None:
            for idx in np.ndindex(*names.shape):
                arr[idx] = lookup(names[idx][0])
        return arr

    def _forward_recompute(
        self, node: Any, arg_names: list[np.ndarray | None], out_index: tuple[int, ...]
    ) -> Callable[[Lookup], float]:
        """This element of the node's output, from looked-up inputs, by the primitive's forward."""

        def recompute(lookup: Lookup) -> float:
            args = [
                self._substituted(a, n, lookup) if n is not None else a
                for a, n in zip(node.args, arg_names, strict=False)
            ]
            return float(np.asarray(node.prim.fn(*args, **node.kwargs))[out_index])

        return recompute

    def _local_recompute(
        self,
        node: Any,
        arg_names: list[np.ndarray | None],
        out_names: np.ndarray | None,
        argnum: int,
        k: int,
        in_index: tuple[int, ...],
    ) -> Callable[[Lookup], float]:
        """A local derivative from looked-up values, by the primitive's own VJP."""

        def recompute(lookup: Lookup) -> float:
            args = tuple(
                self._substituted(a, n, lookup) if n is not None else a
                for a, n in zip(node.args, arg_names, strict=False)
            )
            ans = np.asarray(node.prim.fn(*args, **node.kwargs), dtype=np.float64)
            if out_names is not None:
                ans = self._substituted(ans, out_names, lookup)
            return float(local_row(node.prim, argnum, k, ans, args, node.kwargs)[in_index])

        return recompute

    @staticmethod
    def _chain_recompute(terms: tuple[tuple[str, ...], ...]) -> Callable[[Lookup], float]:
        """A chain-rule sum of products of looked-up factors, multiplied by the engine."""

        def recompute(lookup: Lookup) -> float:
            total = Tensor(0.0)
            with no_grad():
                for term in terms:
                    product = Tensor(1.0)
                    for name in term:
                        product = product * lookup(name)
                    total = total + product
            return float(total.data)

        return recompute

    def chain(self, name: tuple[str, str], terms: list[tuple[str, str]], value: float, layer: int) -> None:
        terms_t = tuple(terms)
        self.add(
            Quantity(
                name[0],
                name[1],
                "chain",
                value,
                terms=terms_t,
                layer=layer,
                uses=tuple(n for t in terms_t for n in t),
                recompute=self._chain_recompute(terms_t),
            )
        )

    # --- the passes ----------------------------------------------------------------------------
    def forward(self) -> None:
        mlp = self.mlp
        self.given(self.x_names, mlp.input_value, "input")
        if self.target_names is not None:
            self.given(self.target_names, self.target_value, "target")
        for li, layer in enumerate(mlp.layers, start=1):
            self.given(self.w_names[li - 1], layer.weight.data, "parameter", li)
            if layer.bias is not None:
                self.given(self.b_names[li - 1], layer.bias.data, "parameter", li)
        for li, layer in enumerate(mlp.layers, start=1):
            lin = layer.z._node
            in_names = self.x_names if li == 1 else self.y_names[li - 2]
            wn, bn, zn = self.w_names[li - 1], self.b_names[li - 1], self.z_names[li - 1]
            arg_names = [in_names, wn, bn if layer.bias is not None else None]
            units, fan_in = layer.weight.shape
            for s in range(self.n):
                for j in range(units):
                    terms = [(in_names[self.at(s, i)][0], wn[j, i][0]) for i in range(fan_in)]
                    if layer.bias is not None:
                        terms.append((bn[j][0],))
                    name, latex = zn[self.at(s, j)]
                    self.add(
                        Quantity(
                            name,
                            latex,
                            "forward",
                            float(layer.z.data[self.at(s, j)]),
                            terms=tuple(terms),
                            layer=li,
                            uses=tuple(n for t in terms for n in t),
                            recompute=self._forward_recompute(lin, arg_names, self.at(s, j)),
                        )
                    )
            if layer.y is not None:
                act = layer.y._node
                jac = local_jacobian(act.prim, 0, layer.y.data, act.args, act.kwargs)
                yn = self.y_names[li - 1]
                for s in range(self.n):
                    for j in range(units):
                        k = int(np.ravel_multi_index(self.at(s, j), layer.y.shape))
                        deps = [zn.flat[e][0] for e in range(zn.size) if e == k or jac[k, e] != 0]
                        name, latex = yn[self.at(s, j)]
                        self.add(
                            Quantity(
                                name,
                                latex,
                                "forward",
                                float(layer.y.data[self.at(s, j)]),
                                formula=f"{act.prim.name}({zn[self.at(s, j)][0]})",
                                formula_latex=_expression_latex(act.prim, [zn[self.at(s, j)][1]]),
                                layer=li,
                                uses=tuple(deps),
                                recompute=self._forward_recompute(
                                    act, [zn] + [None] * (len(act.args) - 1), self.at(s, j)
                                ),
                            )
                        )
        node = mlp.loss._node
        pred = [p[0] for p in self.pred_names.flat]
        target = [] if self.target_names is None else [t[0] for t in self.target_names.flat]
        top = len(mlp.layers)
        pred_text = (
            pred[0]
            if len(pred) == 1
            else (
                "yhat"
                if mlp.layers[-1].y is not None
                else ("z_" if self.nt.style == "reference" else "z") + str(top)
            )
        )
        target_text = target[0] if len(target) == 1 else "y"
        arg_names = [self.pred_names, self.target_sub] + [None] * (len(node.args) - 2)
        self.add(
            Quantity(
                "L",
                "L",
                "loss",
                float(mlp.loss.data),
                layer=len(mlp.layers),
                formula=_expression(node.prim.name, [pred_text, target_text], node.kwargs),
                formula_latex=_expression_latex(node.prim, [r"\hat{y}", "y"]),
                uses=tuple(pred + target),
                recompute=self._forward_recompute(node, arg_names[: len(node.args)], ()),
            )
        )

    def backward(self) -> None:
        mlp, grads = self.mlp, self.grads
        loss_node = mlp.loss._node
        loss_arg_names = ([self.pred_names, self.target_sub] + [None] * len(loss_node.args))[
            : len(loss_node.args)
        ]
        top = len(mlp.layers)
        loss_out = np.empty((), dtype=object)
        loss_out[()] = self.loss_name
        # dL/dyhat: the loss's own local derivative
        for idx in np.ndindex(*self.pred_names.shape):
            value = float(
                local_row(loss_node.prim, 0, 0, mlp.loss.data, loss_node.args, loss_node.kwargs)[idx]
            )
            name = self.nt.d(self.loss_name, self.pred_names[idx])
            operands = {"x": self.pred_names[idx][0]}
            if self.target_sub is not None and self.target_sub.shape == self.pred_names.shape:
                operands["y"] = self.target_sub[idx][0]
            self.add(
                Quantity(
                    name[0],
                    name[1],
                    "local",
                    value,
                    closed_form=closed_form(loss_node, operands, self.pred_names.size),
                    layer=top,
                    uses=tuple(n[0] for n in self.pred_names.flat)
                    + tuple(n[0] for n in (self.target_names.flat if self.target_names is not None else ())),
                    recompute=self._local_recompute(loss_node, loss_arg_names, loss_out, 0, 0, idx),
                )
            )
        for li in range(top, 0, -1):
            layer = mlp.layers[li - 1]
            self._activation_locals(li, layer)
            self._linear_locals(li, layer)
        for li in range(top, 0, -1):
            self._chain_layer(li, mlp.layers[li - 1], grads)

    def _activation_locals(self, li: int, layer: _MlpLayer) -> None:
        if layer.y is None:
            return
        act = layer.y._node
        zn, yn = self.z_names[li - 1], self.y_names[li - 1]
        jac = local_jacobian(act.prim, 0, layer.y.data, act.args, act.kwargs)
        op_latex = act.prim.name.replace("_", r"\_")
        for k in range(layer.y.size):
            for e in range(layer.z.size):
                if e != k and jac[k, e] == 0:
                    continue
                name = self.nt.d(yn.flat[k], zn.flat[e])
                self.act_terms.setdefault((li, e), []).append((k, name[0]))
                self.add(
                    Quantity(
                        name[0],
                        name[1],
                        "local",
                        float(jac[k, e]),
                        layer=li,
                        formula=f"{act.prim.name}'({zn.flat[e][0]})" if e == k else "",
                        closed_form=closed_form(act, {"x": zn.flat[e][0], "f": yn.flat[k][0]}, 1)
                        if e == k
                        else None,
                        formula_latex=rf"\operatorname{{{op_latex}}}'({zn.flat[e][1]})" if e == k else "",
                        uses=(zn.flat[e][0], yn.flat[k][0]),
                        recompute=self._local_recompute(
                            act,
                            [zn] + [None] * (len(act.args) - 1),
                            yn,
                            0,
                            k,
                            np.unravel_index(e, layer.z.shape),
                        ),
                    )
                )

    def _linear_locals(self, li: int, layer: _MlpLayer) -> None:
        lin = layer.z._node
        in_names = self.x_names if li == 1 else self.y_names[li - 2]
        wn, bn, zn = self.w_names[li - 1], self.b_names[li - 1], self.z_names[li - 1]
        has_bias = layer.bias is not None
        arg_names = [in_names, wn, bn if has_bias else None][: len(lin.args)]
        units, fan_in = layer.weight.shape
        for s in range(self.n):
            for j in range(units):
                k = int(np.ravel_multi_index(self.at(s, j), layer.z.shape))
                row_in = local_row(lin.prim, 0, k, layer.z.data, lin.args, lin.kwargs)
                row_w = local_row(lin.prim, 1, k, layer.z.data, lin.args, lin.kwargs)
                z = zn[self.at(s, j)]
                for i in range(fan_in):
                    for argnum, row, at, den, eq in (
                        (1, row_w, (j, i), wn[j, i], in_names[self.at(s, i)]),
                        (0, row_in, self.at(s, i), in_names[self.at(s, i)], wn[j, i]),
                    ):
                        name = self.nt.d(z, den)
                        self.add(
                            Quantity(
                                name[0],
                                name[1],
                                "local",
                                float(row[at]),
                                layer=li,
                                equals=eq[0],
                                uses=(eq[0],),
                                recompute=self._local_recompute(lin, arg_names, None, argnum, k, at),
                            )
                        )
                if has_bias:
                    row_b = local_row(lin.prim, 2, k, layer.z.data, lin.args, lin.kwargs)
                    name = self.nt.d(z, bn[j])
                    self.add(
                        Quantity(
                            name[0],
                            name[1],
                            "local",
                            float(row_b[j]),
                            layer=li,
                            recompute=self._local_recompute(lin, arg_names, None, 2, k, (j,)),
                        )
                    )

    def _chain_layer(self, li: int, layer: _MlpLayer, grads: dict[int, np.ndarray]) -> None:
        nt, L = self.nt, self.loss_name
        zn, yn = self.z_names[li - 1], self.y_names[li - 1]
        wn, bn = self.w_names[li - 1], self.b_names[li - 1]
        units, fan_in = layer.weight.shape
        gz = grads[id(layer.z)]
        if layer.y is not None:  # dL/dz = sum_k dL/dy_k dy_k/dz
            for e in range(layer.z.size):
                terms = [(nt.d(L, yn.flat[k])[0], dname) for k, dname in self.act_terms[(li, e)]]
                self.chain(nt.d(L, zn.flat[e]), terms, float(gz.flat[e]), li)
        if layer.bias is not None:
            gb = grads[id(layer.bias)]
            for j in range(units):
                terms = [
                    (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], bn[j])[0]) for s in range(self.n)
                ]
                self.chain(nt.d(L, bn[j]), terms, float(gb[j]), li)
        gw = grads[id(layer.weight)]
        for j in range(units):
            for i in range(fan_in):
                terms = [
                    (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], wn[j, i])[0])
                    for s in range(self.n)
                ]
                self.chain(nt.d(L, wn[j, i]), terms, float(gw[j, i]), li)
        if li > 1:  # dL/d(input of this layer) = sum_j dL/dz_j dz_j/dy_i
            below = self.mlp.layers[li - 2].out
            g_in = grads[id(below)]
            in_names = self.y_names[li - 2]
            for s in range(self.n):
                for i in range(fan_in):
                    terms = [
                        (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], in_names[self.at(s, i)])[0])
                        for j in range(units)
                    ]
                    self.chain(nt.d(L, in_names[self.at(s, i)]), terms, float(g_in[self.at(s, i)]), li)

    # --- arrays, update, network view ------------------------------------------------------------
    def arrays(self) -> list[GradientArray]:
        out = []
        for li, layer in enumerate(self.mlp.layers, start=1):
            gw = self.grads[id(layer.weight)]
            wn = self.w_names[li - 1]
            if self.nt.style == "reference":  # the solution writes w_l with rows i (from), columns j (to)
                names = [
                    [self.nt.d(self.loss_name, wn[j, i])[0] for j in range(wn.shape[0])]
                    for i in range(wn.shape[1])
                ]
                values = gw.T
                label = (f"dL/dw_{li}", rf"\frac{{\partial L}}{{\partial w_{li}}}")
            else:
                names = [
                    [self.nt.d(self.loss_name, wn[j, i])[0] for i in range(wn.shape[1])]
                    for j in range(wn.shape[0])
                ]
                values = gw
                label = (f"dL/dW{li}", rf"\frac{{\partial L}}{{\partial W^{{[{li}]}}}}")
            out.append(GradientArray(label[0], label[1], names, np.asarray(values, dtype=np.float64)))
            if layer.bias is not None:
                gb = self.grads[id(layer.bias)]
                bn = self.b_names[li - 1]
                names = [[self.nt.d(self.loss_name, bn[j])[0]] for j in range(bn.shape[0])]
                label = (
                    (f"dL/dB_{li}", rf"\frac{{\partial L}}{{\partial B_{li}}}")
                    if self.nt.style == "reference"
                    else (f"dL/db{li}", rf"\frac{{\partial L}}{{\partial b^{{[{li}]}}}}")
                )
                out.append(
                    GradientArray(label[0], label[1], names, np.asarray(gb, dtype=np.float64)[:, None])
                )
        return out

    def update(self, lr: float, order: list[Tensor]) -> list[GradientArray]:
        """One gradient-descent step w <- w - lr dL/dw by the engine's ops, and the loss after it."""
        new_values: dict[int, np.ndarray] = {}
        arrays = []
        for li, layer in enumerate(self.mlp.layers, start=1):
            for param, names in ((layer.weight, self.w_names[li - 1]), (layer.bias, self.b_names[li - 1])):
                if param is None:
                    continue
                with no_grad():
                    new = (Tensor(param.data) - lr * Tensor(self.grads[id(param)])).data
                new_values[id(param)] = new
                for idx in np.ndindex(*names.shape):
                    old = names[idx]
                    grad_name = self.nt.d(self.loss_name, old)[0]
                    self.add(
                        Quantity(
                            f"{old[0]}^{{new}}",
                            rf"{old[1]}^{{\text{{new}}}}",
                            "update",
                            float(new[idx]),
                            layer=li,
                            formula=f"{old[0]} - {_short(lr)} * {grad_name}",
                            uses=(old[0], grad_name),
                            recompute=_update_recompute(old[0], grad_name, lr),
                        )
                    )
                new_names = names.copy()
                for idx in np.ndindex(*names.shape):
                    new_names[idx] = (f"{names[idx][0]}^{{new}}",)
                if names.ndim == 2 and self.nt.style == "reference":
                    grid = [
                        [new_names[j, i][0] for j in range(names.shape[0])] for i in range(names.shape[1])
                    ]
                    arrays.append(
                        GradientArray(f"w_{li}^new", rf"w_{li}^{{\text{{new}}}}", grid, new.T.copy())
                    )
                elif names.ndim == 2:
                    grid = [
                        [new_names[j, i][0] for i in range(names.shape[1])] for j in range(names.shape[0])
                    ]
                    arrays.append(
                        GradientArray(f"W{li}^new", rf"W^{{[{li}]}}_{{\text{{new}}}}", grid, new.copy())
                    )
                else:
                    label = f"B_{li}" if self.nt.style == "reference" else f"b{li}"
                    arrays.append(
                        GradientArray(
                            f"{label}^new",
                            rf"{label}^{{\text{{new}}}}",
                            [[n[0]] for n in new_names],
                            new[:, None].copy(),
                        )
                    )
        values = replay(order, new_values)
        self.add(
            Quantity(
                "L^{new}",
                r"L^{\text{new}}",
                "update",
                float(values[id(self.mlp.loss)]),
                formula="L with the new weights and biases",
            )
        )
        return arrays

    def view(self) -> NetworkView:
        mlp = self.mlp
        layers = []
        for li, layer in enumerate(mlp.layers, start=1):
            act = layer.y._node.prim.name if layer.y is not None else None
            layers.append(
                Layer(
                    li,
                    layer.weight.shape[0],
                    act,
                    layer.weight.name or f"W{li}",
                    None if layer.bias is None else (layer.bias.name or f"b{li}"),
                )
            )
        L = self.loss_name
        at0 = lambda j: self.at(0, j)
        units, edges, biases = [], [], []
        for li, layer in enumerate(mlp.layers, start=1):
            zn, yn, wn, bn = (
                self.z_names[li - 1],
                self.y_names[li - 1],
                self.w_names[li - 1],
                self.b_names[li - 1],
            )
            n_units, fan_in = layer.weight.shape
            units.append(
                [
                    {"z": zn[at0(j)][0], "y": yn[at0(j)][0], "dz": self.nt.d(L, zn[at0(j)])[0]}
                    for j in range(n_units)
                ]
            )
            edges.append(
                [
                    [{"w": wn[j, i][0], "dw": self.nt.d(L, wn[j, i])[0]} for j in range(n_units)]
                    for i in range(fan_in)
                ]
            )
            biases.append(
                [{"b": bn[j][0], "db": self.nt.d(L, bn[j])[0]} for j in range(n_units)]
                if layer.bias is not None
                else []
            )
        return NetworkView(
            input_size=mlp.input_value.shape[-1],
            layers=layers,
            batch=self.n,
            loss=mlp.loss._node.prim.name,
            input_names=[self.x_names[at0(i)][0] for i in range(mlp.input_value.shape[-1])],
            unit_names=units,
            edge_names=edges,
            bias_names=biases,
            output_names=[self.pred_names[at0(j)][0] for j in range(self.pred_names.shape[-1])],
        )


def _short(v: float) -> str:
    return np.format_float_positional(float(v), trim="-")


def _update_recompute(param: str, grad_name: str, lr: float) -> Callable[[Lookup], float]:
    def recompute(lookup: Lookup) -> float:
        with no_grad():
            return float((Tensor(lookup(param)) - lr * Tensor(lookup(grad_name))).data)

    return recompute


# --- the entry point -------------------------------------------------------------------------------


def explain(
    loss: Tensor,
    *,
    notation: str = "reference",
    lr: float | None = None,
    digits: int = DEFAULT_DIGITS,
    title: str | None = None,
) -> Explanation:
    """Explain how ``loss`` was computed and how its gradient flows back, step by step.

    Works for any scalar computed with chainrule. Every value, local derivative and gradient is
    read from the engine: values from the graph, gradients from ``chainrule.grad``, local
    derivatives from each primitive's own VJP. The graph is kept (``retain_graph=True``), so
    ``loss.backward()`` still works afterwards.

    ``notation`` names an MLP's scalars as the reference solution does (``"reference"``:
    w_{ij-l}, B_{j-l}, z_{j-l}, y_{j-l}) or by array index (``"matrix"``: W1[j,i]). ``lr``
    adds one gradient-descent step. ``digits`` is the default display precision.
    """
    if notation not in NOTATIONS:
        raise ValueError(f"unknown notation {notation!r}; expected one of {', '.join(NOTATIONS)}")
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) or not 0 <= digits <= 15:
        raise ValueError(f"digits must be an integer from 0 to 15, got {digits!r}")
    if lr is not None and (isinstance(lr, bool) or not np.isfinite(lr) or lr <= 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    _check_loss(loss)
    order = topological_order(loss)
    mlp = _match_mlp(loss, order)
    if mlp is not None and _named_size(mlp) > MAX_NAMED:
        mlp = None  # too many scalars to write out one by one: the node-by-node view
    preferred: dict[int, str] = {}
    constants: dict[tuple[int, int], str] = {}
    if mlp is not None:
        for li, layer in enumerate(mlp.layers, start=1):
            preferred[id(layer.weight)] = f"W{li}"
            preferred[id(layer.z)] = f"z{li}"
            if layer.bias is not None:
                preferred[id(layer.bias)] = f"b{li}"
            if layer.y is not None:
                preferred[id(layer.y)] = "yhat" if li == len(mlp.layers) else f"y{li}"
        constants[(id(mlp.layers[0].z), 0)] = "x"
        constants[(id(loss), 1)] = "y"
    names = _unique_names(order, loss, preferred)
    found = grad(loss, order, retain_graph=True, allow_unused=True)
    grads = {id(t): (None if g is None else g.data) for t, g in zip(order, found, strict=False)}
    nodes = graph_nodes(loss, order, names, grads, constants)
    explanation_kwargs: dict[str, Any] = {}
    if mlp is not None:
        builder = _Builder(mlp, notation, grads)
        builder.forward()
        builder.backward()
        explanation_kwargs["arrays"] = builder.arrays()
        if lr is not None:
            explanation_kwargs["update_arrays"] = builder.update(float(lr), order)
        explanation_kwargs["quantities"] = builder.quantities
        explanation_kwargs["network"] = builder.view()
    elif lr is not None:
        explanation_kwargs["update_arrays"] = _generic_update(order, names, grads, float(lr), loss)
    if title is None:
        if mlp is not None:
            sizes = [mlp.input_value.shape[-1]] + [layer.weight.shape[0] for layer in mlp.layers]
            title = f"{'-'.join(map(str, sizes))} network, loss {loss._node.prim.name}"
        else:
            title = f"Graph of {len(order)} tensors, output {loss._node.prim.name}"
    return Explanation(
        title=title,
        loss=float(loss.data),
        nodes=nodes,
        notation=notation,
        digits=int(digits),
        lr=None if lr is None else float(lr),
        **explanation_kwargs,
    )


def _generic_update(
    order: list[Tensor], names: dict[int, str], grads: dict[int, Any], lr: float, loss: Tensor
) -> list[GradientArray]:
    """For a graph that is not an MLP: every leaf that requires grad takes one step."""
    arrays, new_values = [], {}
    for t in order:
        if t._node is None and grads.get(id(t)) is not None:
            with no_grad():
                new = (Tensor(t.data) - lr * Tensor(grads[id(t)])).data
            new_values[id(t)] = new
            grid = np.atleast_2d(new)
            if grid.ndim > 2:
                grid = grid.reshape(-1, grid.shape[-1])
            label = f"{names[id(t)]}^new"
            arrays.append(
                GradientArray(
                    label,
                    _latex_name(names[id(t)]) + r"^{\text{new}}",
                    [[label for _ in row] for row in grid],
                    np.asarray(grid, dtype=np.float64),
                )
            )
    values = replay(order, new_values)
    arrays.append(
        GradientArray(
            "L^new",
            r"L^{\text{new}}",
            [["L^new"]],
            np.asarray(values[id(loss)], dtype=np.float64).reshape(1, 1),
        )
    )
    return arrays
