"""The named scalars of a layered network, read off the engine's graph.

``Builder`` takes what ``layered.match_layered`` found (which tensor is which layer's z, y, W,
b) and writes every scalar a hand-worked solution writes: the givens, each pre-activation as
its sum of products, each activation, each local partial derivative, each chain-rule product.
Every value is the graph's own, every local derivative the primitive's own VJP called with a
one-hot cotangent (``graph.local_row``), every gradient ``chainrule.grad``'s; nothing here
knows a derivative formula. Each quantity also carries ``recompute``: the same value from other
values looked up by name, through the same primitives, which the worksheet checker uses to
follow a sheet's carried rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.autodiff import no_grad
from chainrule.explain.graph import (
    closed_form,
    expression,
    expression_latex,
    local_jacobian,
    local_row,
    replay,
)
from chainrule.explain.layered import DELTA_CONVENTIONS, DenseLayer, LayeredNetwork, Notation, names_array
from chainrule.explain.model import ClosedForm, GradientArray, Layer, Lookup, NetworkView, Quantity
from chainrule.tensor import Tensor


def _short(v: float) -> str:
    return np.format_float_positional(float(v), trim="-")


class Builder:
    """Builds the named quantities of a layered network from the engine's graph."""

    def __init__(
        self,
        net: LayeredNetwork,
        notation: str,
        grads: dict[int, np.ndarray | None],
        layouts: list[str] | None = None,
    ):
        self.net = net
        # per layer, how its weight matrix is shown (layered.LAYOUTS): the matrix notation's
        # W1[j,i] are array indices (out-in); the reference notation's w_l the solution's (in-out)
        n_layers = len(net.layers)
        self.layouts = ["out-in"] * n_layers if notation == "matrix" else (layouts or ["in-out"] * n_layers)
        self.grads = grads
        x = net.input_value
        self.batched = x.ndim == 2
        self.n = x.shape[0] if self.batched else 1
        self.nt = Notation(notation, self.batched, net.layers[-1].units)
        self.quantities: list[Quantity] = []
        self.by_name: dict[str, Quantity] = {}
        # (layer, flat index of z) -> [(flat index of y, name of dy/dz)]: the activation's
        # nonzero local derivatives, which the chain rule for dL/dz sums over
        self.act_terms: dict[tuple[int, int], list[tuple[int, str]]] = {}
        self.loss_terms = False  # whether the loss is named per output (L_1, L_2)
        self.path_aliases: dict[str, str] = {}  # dL/dy_{1-1}|z_{1-2} -> dL_1/dy_{1-1}
        self._names()

    def at(self, s: int, j: int) -> tuple[int, ...]:
        """The index of sample s, unit j in a unit tensor (z, y: shape (U,) or (N, U))."""
        return (s, j) if self.batched else (j,)

    def _shape(self, units: int) -> tuple[int, ...]:
        return (self.n, units) if self.batched else (units,)

    def _per_unit(self, make: Callable[..., tuple[str, str]]) -> Callable[..., tuple[str, str]]:
        return lambda *ix: make(*(ix if self.batched else (0,) + ix))

    # --- names -----------------------------------------------------------------------------------
    def _names(self) -> None:
        nt, net = self.nt, self.net
        self.x_names = names_array(self._shape(net.input_value.shape[-1]), self._per_unit(nt.x))
        self.w_names, self.b_names, self.z_names, self.y_names = [], [], [], []
        last = len(net.layers)
        for li, layer in enumerate(net.layers, start=1):
            self.w_names.append(names_array(layer.weight.shape, lambda j, i, li=li: nt.w(li, j, i)))
            if layer.bias is None:
                self.b_names.append(None)
            elif layer.shared_bias:
                self.b_names.append(names_array((), lambda li=li: nt.b(li)))
            else:
                self.b_names.append(names_array((layer.units,), lambda j, li=li: nt.b(li, j)))
            z = names_array(
                self._shape(layer.units), self._per_unit(lambda s, j, li=li: nt.unit("z", li, s, j))
            )
            if layer.y is None:
                y = z
            elif li == last:
                y = names_array(self._shape(layer.units), self._per_unit(nt.yhat))
            else:
                y = names_array(
                    self._shape(layer.units), self._per_unit(lambda s, j, li=li: nt.unit("y", li, s, j))
                )
            self.z_names.append(z)
            self.y_names.append(y)
        self.pred_names = self.y_names[-1]  # what the loss takes
        # the probabilities a logits loss computes (softmax(z)): shown as yhat
        self.prob_names = (
            names_array(self._shape(net.layers[-1].units), self._per_unit(nt.yhat))
            if net.probabilities
            else None
        )
        node = net.loss_node
        target = np.asarray(node.args[1]) if node is not None and len(node.args) > 1 else None
        self.target_value = target
        self.target_names = None
        if target is not None and target.dtype.kind in "biuf":
            same = target.shape == self.pred_names.shape
            self.target_names = names_array(target.shape, lambda *ix: nt.target(ix, same))
        # class indices are labels, not numbers a sheet could round: never substituted
        self.target_sub = self.target_names if target is not None and target.dtype.kind == "f" else None
        self.loss_name = ("L", "L") if net.has_loss else self.pred_names.flat[0]

    def b_name(self, li: int, j: int) -> tuple[str, str]:
        layer = self.net.layers[li - 1]
        return self.b_names[li - 1][layer.bias_at(j)]

    # --- adding quantities -------------------------------------------------------------------------
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
        self, node: Any, arg_names: list[np.ndarray | None], out_index: tuple[int, ...], **override: Any
    ) -> Callable[[Lookup], float]:
        """This element of the node's output, from looked-up inputs, by the primitive's forward."""

        def recompute(lookup: Lookup) -> float:
            args = [
                self._substituted(a, n, lookup) if n is not None else a
                for a, n in zip(node.args, arg_names, strict=False)
            ]
            return float(np.asarray(node.prim.fn(*args, **{**node.kwargs, **override}))[out_index])

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
    def _chain_recompute(terms: tuple[tuple[str, ...], ...], sign: float = 1.0) -> Callable[[Lookup], float]:
        """A chain-rule sum of products of looked-up factors, multiplied by the engine."""

        def recompute(lookup: Lookup) -> float:
            total = Tensor(0.0)
            with no_grad():
                for term in terms:
                    product = Tensor(sign)
                    for name in term:
                        product = product * lookup(name)
                    total = total + product
            return float(total.data)

        return recompute

    def chain(self, name: tuple[str, str], terms: list[tuple[str, ...]], value: float, layer: int) -> None:
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

    # --- the forward pass --------------------------------------------------------------------------
    def forward(self) -> None:
        net = self.net
        self.given(self.x_names, net.input_value, "input")
        if self.target_names is not None:
            self.given(self.target_names, self.target_value, "target")
        for li, layer in enumerate(net.layers, start=1):
            self.given(self.w_names[li - 1], layer.weight, "parameter", li)
            if layer.bias is not None:
                self.given(self.b_names[li - 1], layer.bias, "parameter", li)
        for li, layer in enumerate(net.layers, start=1):
            self._forward_linear(li, layer)
            if layer.y is not None:
                self._forward_activation(li, layer)
        if self.prob_names is not None:
            self._forward_probabilities()
        if net.has_loss:
            self._forward_loss()

    def _forward_linear(self, li: int, layer: DenseLayer) -> None:
        lin = layer.z._node
        in_names = self.x_names if li == 1 else self.y_names[li - 2]
        wn, zn = self.w_names[li - 1], self.z_names[li - 1]
        arg_names = [in_names, wn, self.b_names[li - 1]][: len(lin.args)]
        for s in range(self.n):
            for j in range(layer.units):
                terms: list[tuple[str, ...]] = [
                    (in_names[self.at(s, i)][0], wn[j, i][0]) for i in range(layer.fan_in)
                ]
                if layer.bias is not None:
                    terms.append((self.b_name(li, j)[0],))
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

    def _forward_activation(self, li: int, layer: DenseLayer) -> None:
        act = layer.y._node
        jac = local_jacobian(act.prim, 0, layer.y.data, act.args, act.kwargs)
        zn, yn = self.z_names[li - 1], self.y_names[li - 1]
        for s in range(self.n):
            for j in range(layer.units):
                k = int(np.ravel_multi_index(self.at(s, j), layer.y.shape))
                deps = [zn.flat[e][0] for e in range(zn.size) if e == k or jac[k, e] != 0]
                name, latex = yn[self.at(s, j)]
                self.add(
                    Quantity(
                        name,
                        latex,
                        "forward",
                        float(layer.y.data[self.at(s, j)]),
                        formula=_applied(act.prim.name, deps, j),
                        formula_latex=expression_latex(act.prim, [zn[self.at(s, j)][1]]),
                        layer=li,
                        uses=tuple(deps),
                        recompute=self._forward_recompute(
                            act, [zn] + [None] * (len(act.args) - 1), self.at(s, j)
                        ),
                    )
                )

    def _probability_node(self) -> Any:
        """The squashing function's own node over the logits (softmax(z)), built by the engine."""
        from chainrule import functional as F

        z = self.net.layers[-1].z
        with_graph = F.get_activation(self.net.probabilities)(Tensor(z.data, requires_grad=True))
        return with_graph

    def _forward_probabilities(self) -> None:
        """yhat = softmax(z) (or sigmoid(z)): the probabilities a logits loss computes inside."""
        top = len(self.net.layers)
        p = self._probability_node()
        node, zn = p._node, self.z_names[-1]
        self.probabilities = p.data
        for idx in np.ndindex(*self.prob_names.shape):
            k = int(np.ravel_multi_index(idx, p.shape))
            deps = [zn.flat[e][0] for e in range(zn.size) if e == k or self._same_row(e, k)]
            name, latex = self.prob_names[idx]
            self.add(
                Quantity(
                    name,
                    latex,
                    "forward",
                    float(p.data[idx]),
                    formula=_applied(node.prim.name, deps, idx[-1]),
                    formula_latex=expression_latex(node.prim, [zn[idx][1]]),
                    layer=top,
                    uses=tuple(deps),
                    recompute=self._forward_recompute(node, [zn] + [None] * (len(node.args) - 1), idx),
                )
            )

    def _same_row(self, e: int, k: int) -> bool:
        units = self.net.layers[-1].units
        return self.net.probabilities == "softmax" and e // units == k // units

    def _loss_terms(self) -> np.ndarray | None:
        """Each output's term of a loss that sums over outputs (by the loss's own forward with
        reduction='none'), or None when the loss has no such terms (one output; class indices)."""
        node = self.net.loss_node
        if node.kwargs.get("reduction") != "sum" or self.pred_names.size < 2 or self.target_sub is None:
            return None
        try:
            terms = np.asarray(node.prim.fn(*node.args, **{**node.kwargs, "reduction": "none"}))
        except (TypeError, ValueError):
            return None
        return terms if terms.shape == self.pred_names.shape else None

    def _forward_loss(self) -> None:
        net = self.net
        node = net.loss_node
        pred = [p[0] for p in self.pred_names.flat]
        target = [] if self.target_names is None else [t[0] for t in self.target_names.flat]
        top = len(net.layers)
        if len(pred) == 1:
            pred_text = pred[0]
        elif net.layers[-1].y is not None:
            pred_text = "yhat"
        else:
            pred_text = ("z_" if self.nt.style == "reference" else "z") + str(top)
        target_text = target[0] if len(target) == 1 else "y"
        arg_names = ([self.pred_names, self.target_sub] + [None] * len(node.args))[: len(node.args)]
        formula = expression(node.prim.name, [pred_text, target_text], node.kwargs)
        terms_t: tuple[tuple[str, ...], ...] = ()
        values = self._loss_terms()
        self.loss_terms = values is not None
        if values is not None:  # L = L_1 + L_2: each output's term named
            for idx in np.ndindex(*values.shape):
                name, latex = self.nt.loss_term(idx)
                self.add(
                    Quantity(
                        name,
                        latex,
                        "loss",
                        float(values[idx]),
                        layer=top,
                        formula=expression(
                            node.prim.name, [self.pred_names[idx][0], self.target_sub[idx][0]], {}
                        ),
                        formula_latex=expression_latex(
                            node.prim, [self.pred_names[idx][1], self.target_sub[idx][1]]
                        ),
                        uses=(self.pred_names[idx][0], self.target_sub[idx][0]),
                        recompute=self._forward_recompute(node, arg_names, idx, reduction="none"),
                    )
                )
                terms_t += ((name,),)
        self.add(
            Quantity(
                "L",
                "L",
                "loss",
                float(net.loss.data),
                layer=top,
                terms=terms_t,
                formula=formula,
                formula_latex=expression_latex(node.prim, [r"\hat{y}", "y"]),
                uses=tuple(pred + target),
                recompute=self._forward_recompute(node, arg_names, ()),
            )
        )

    # --- the backward pass: local derivatives --------------------------------------------------------
    def backward(self) -> None:
        net = self.net
        top = len(net.layers)
        if net.has_loss:
            self._loss_locals()
        for li in range(top, 0, -1):
            layer = net.layers[li - 1]
            self._activation_locals(li, layer)
            self._linear_locals(li, layer)
        for li in range(top, 0, -1):
            self._chain_layer(li, net.layers[li - 1])

    def _logits_closed_form(self, idx: tuple[int, ...]) -> ClosedForm | None:
        """(yhat - y)/m: the local derivative of cross-entropy (softmax) or BCE with logits
        (sigmoid) with respect to a logit (part 2a of the reference solution)."""
        node = self.net.loss_node
        kw = node.kwargs
        if kw.get("weight") is not None or kw.get("pos_weight") is not None or kw.get("label_smoothing", 0.0):
            return None
        p = self.prob_names[idx]
        if self.target_sub is not None and self.target_sub.shape == self.prob_names.shape:
            y_text, y_latex, operands = "$y", "$y", {"p": p[0], "y": self.target_sub[idx][0]}
        elif self.target_value is not None and self.target_value.dtype.kind in "iu":
            label = (
                int(self.target_value[idx[:-1]])
                if idx[:-1] or self.target_value.ndim
                else int(self.target_value)
            )
            y_text = y_latex = "1" if idx[-1] == label else "0"
            operands = {"p": p[0]}
        else:
            return None
        if kw.get("reduction") == "mean":
            m = self.pred_names.size // (
                self.net.layers[-1].units if self.net.probabilities == "softmax" else 1
            )
        else:
            m = 1
        text, latex = f"$p - {y_text}", f"$p - {y_latex}"
        if m != 1:
            text, latex = f"($p - {y_text}) / {m}", rf"\frac{{1}}{{{m}}}\left($p - {y_latex}\right)"
        return ClosedForm(text, latex, operands)

    def _loss_locals(self) -> None:
        node, loss = self.net.loss_node, self.net.loss
        arg_names = ([self.pred_names, self.target_sub] + [None] * len(node.args))[: len(node.args)]
        loss_out = np.empty((), dtype=object)
        loss_out[()] = self.loss_name
        uses_target = tuple(n[0] for n in (self.target_names.flat if self.target_names is not None else ()))
        for idx in np.ndindex(*self.pred_names.shape):
            value = float(local_row(node.prim, 0, 0, loss.data, node.args, node.kwargs)[idx])
            name = self.nt.d(self.loss_name, self.pred_names[idx])
            if self.prob_names is not None:
                cf = self._logits_closed_form(idx)
                uses = tuple(n[0] for n in self.prob_names.flat) + uses_target
            else:
                operands = {"x": self.pred_names[idx][0]}
                if self.target_sub is not None and self.target_sub.shape == self.pred_names.shape:
                    operands["y"] = self.target_sub[idx][0]
                cf = closed_form(node, operands, self.pred_names.size)
                uses = tuple(n[0] for n in self.pred_names.flat) + uses_target
            self.add(
                Quantity(
                    name[0],
                    name[1],
                    "local",
                    value,
                    closed_form=cf,
                    layer=len(self.net.layers),
                    uses=uses,
                    recompute=self._local_recompute(node, arg_names, loss_out, 0, 0, idx),
                )
            )

    def _activation_locals(self, li: int, layer: DenseLayer) -> None:
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

    def _linear_locals(self, li: int, layer: DenseLayer) -> None:
        lin = layer.z._node
        in_names = self.x_names if li == 1 else self.y_names[li - 2]
        wn, zn = self.w_names[li - 1], self.z_names[li - 1]
        arg_names = [in_names, wn, self.b_names[li - 1]][: len(lin.args)]
        for s in range(self.n):
            for j in range(layer.units):
                k = int(np.ravel_multi_index(self.at(s, j), layer.z.shape))
                row_in = local_row(lin.prim, 0, k, layer.z.data, lin.args, lin.kwargs)
                row_w = local_row(lin.prim, 1, k, layer.z.data, lin.args, lin.kwargs)
                z = zn[self.at(s, j)]
                for i in range(layer.fan_in):
                    pairs = [(0, row_in, self.at(s, i), in_names[self.at(s, i)], wn[j, i])]
                    if layer.trains_weight:
                        pairs.insert(0, (1, row_w, (j, i), wn[j, i], in_names[self.at(s, i)]))
                    for argnum, row, at, den, eq in pairs:
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
                if layer.trains_bias:
                    row_b = local_row(lin.prim, 2, k, layer.z.data, lin.args, lin.kwargs)
                    at = layer.bias_at(j)
                    name = self.nt.d(z, self.b_name(li, j))
                    self.add(
                        Quantity(
                            name[0],
                            name[1],
                            "local",
                            float(np.asarray(row_b)[at]),
                            layer=li,
                            recompute=self._local_recompute(lin, arg_names, None, 2, k, at),
                        )
                    )

    # --- the backward pass: the chain rule -----------------------------------------------------------
    def _chain_layer(self, li: int, layer: DenseLayer) -> None:
        nt, L, grads = self.nt, self.loss_name, self.grads
        zn, yn, wn = self.z_names[li - 1], self.y_names[li - 1], self.w_names[li - 1]
        gz = grads[id(layer.z)]
        if layer.y is not None:  # dL/dz = sum_k dL/dy_k dy_k/dz
            for e in range(layer.z.size):
                terms = [(nt.d(L, yn.flat[k])[0], dname) for k, dname in self.act_terms[(li, e)]]
                if yn.flat[e] == L:  # the explained output itself: dL/dL = 1 is not written
                    terms = [(dname,) for k, dname in self.act_terms[(li, e)]]
                vias = [yn.flat[k] for k, _ in self.act_terms[(li, e)]]  # a softmax: every y_k of the row
                self._path_terms(nt.d(L, zn.flat[e]), terms, vias, li)
                self.chain(nt.d(L, zn.flat[e]), terms, float(gz.flat[e]), li)
        if layer.trains_bias:
            gb = np.asarray(grads[id(layer.bias_tensor)])
            bn = self.b_names[li - 1]
            for idx in np.ndindex(*bn.shape):  # a shared bias: one sum over every unit
                units = range(layer.units) if layer.shared_bias else [idx[0]]
                pairs = [(s, j) for s in range(self.n) for j in units]
                terms = [
                    (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], bn[idx])[0]) for s, j in pairs
                ]
                if layer.shared_bias:  # one bias feeding every unit of the layer: a path per unit
                    vias = [zn[self.at(s, j)] for s, j in pairs]
                    self._path_terms(nt.d(L, bn[idx]), self._drop_one(terms, L), vias, li)
                self.chain(nt.d(L, bn[idx]), self._drop_one(terms, L), float(gb[idx]), li)
        if layer.trains_weight:
            gw = grads[id(layer.weight_tensor)]
            for j in range(layer.units):
                for i in range(layer.fan_in):
                    terms = [
                        (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], wn[j, i])[0])
                        for s in range(self.n)
                    ]
                    self.chain(nt.d(L, wn[j, i]), self._drop_one(terms, L), float(gw[j, i]), li)
        if li > 1 or self.net.trains_input:  # dL/d(input of this layer) = sum_j dL/dz_j dz_j/dy_i
            below = self.net.layers[li - 2].out if li > 1 else self.net.input_tensor
            g_in = grads[id(below)]
            in_names = self.y_names[li - 2] if li > 1 else self.x_names
            for s in range(self.n):
                for i in range(layer.fan_in):
                    terms = [
                        (nt.d(L, zn[self.at(s, j)])[0], nt.d(zn[self.at(s, j)], in_names[self.at(s, i)])[0])
                        for j in range(layer.units)
                    ]
                    value = float(np.asarray(g_in)[self.at(s, i)])
                    total = nt.d(L, in_names[self.at(s, i)])
                    vias = [zn[self.at(s, j)] for j in range(layer.units)]
                    per_output = None
                    if self._per_output_paths(li):  # Mazur's dE_o1/dout_h1: one output's share
                        per_output = [
                            nt.d(nt.loss_term(self.at(s, j)), in_names[self.at(s, i)])
                            for j in range(layer.units)
                        ]
                    self._path_terms(total, self._drop_one(terms, L), vias, li, per_output)
                    self.chain(total, self._drop_one(terms, L), value, li)

    def _per_output_paths(self, li: int) -> bool:
        """Does each path out of layer li-1 end in one output's loss term? (The output layer is
        li, its activation elementwise, and the loss a sum of per-output terms L_j.)"""
        if li != len(self.net.layers) or not self.loss_terms:
            return False
        return all(len(v) == 1 for (lj, _), v in self.act_terms.items() if lj == li)

    def _path_terms(
        self,
        total: tuple[str, str],
        terms: list[tuple[str, ...]],
        vias: list[tuple[str, str]],
        li: int,
        names: list[tuple[str, str]] | None = None,
    ) -> None:
        """One named quantity per path of a chain-rule sum, before the sum: a unit that feeds
        several units (a hidden unit, an input, a shared bias, a softmax's logit) gets
        ``dL/dy_{1-1}|z_{1-2}``, the term of dL/dy_{1-1} through z_{1-2}. Where each path ends in
        one output's loss term, the textbook's name ``dL_1/dy_{1-1}`` (Mazur's dE_o1/dout_h1)
        is the quantity's and the ``|`` name an alias of it. Each value is the term's product
        of the graph's own values, multiplied by the engine; nothing for a sum of one term."""
        if len(terms) < 2:
            return
        exact = lambda name: self.by_name[name].value  # noqa: E731
        for k, (term, via) in enumerate(zip(terms, vias, strict=True)):
            path = self.nt.path(total, via)
            name = names[k] if names is not None else path
            if names is not None:
                self.path_aliases[path[0]] = name[0]
            recompute = self._chain_recompute((term,))
            self.add(
                Quantity(
                    name[0],
                    name[1],
                    "chain",
                    recompute(exact),
                    terms=(term,),
                    layer=li,
                    uses=term,
                    recompute=recompute,
                )
            )

    def _drop_one(self, terms: list[tuple[str, str]], L: tuple[str, str]) -> list[tuple[str, ...]]:
        """Without a loss, dL/dz of the output is d(output)/d(output) = 1: not written."""
        own = self.nt.d(L, L)[0]
        return [tuple(f for f in t if f != own) or t for t in terms]

    # --- gradient arrays, the update, the network view ----------------------------------------------
    def _param_names(self, li: int, kind: str) -> np.ndarray:
        return self.w_names[li - 1] if kind == "weight" else self.b_names[li - 1]

    def _inputs(self, li: int) -> str:
        """What unit i of the layer below layer ``li`` is, in words, for a weight matrix's layout."""
        if self.nt.style == "matrix":
            return "input x[i]" if li == 1 else f"hidden unit i of layer {li - 1} (its output y{li - 1}[i])"
        return "input x_i" if li == 1 else f"hidden unit i of layer {li - 1} (its output y_{{i-{li - 1}}})"

    def arrays(self) -> list[GradientArray]:
        out = []
        ref = self.nt.style == "reference"
        Ln, Ll = self.loss_name  # L, or the output itself when there is no loss
        for li, kind, tensor in self.net.parameters():
            g = np.asarray(self.grads[id(tensor)], dtype=np.float64)
            names = self._param_names(li, kind)
            dname = lambda n: self.nt.d(self.loss_name, n)[0]
            layout = ""
            if kind == "weight":
                layout = self.layouts[li - 1]
                grid, values = self._laid_out(names, g, layout, dname)
                if ref:
                    label = (f"d{Ln}/dw_{li}", rf"\frac{{\partial {Ll}}}{{\partial w_{li}}}")
                else:
                    label = (f"d{Ln}/dW{li}", rf"\frac{{\partial {Ll}}}{{\partial W^{{[{li}]}}}}")
            else:
                grid = [[dname(names[idx])] for idx in np.ndindex(*names.shape)]
                values = g.reshape(-1, 1)
                label = (
                    (f"d{Ln}/dB_{li}", rf"\frac{{\partial {Ll}}}{{\partial B_{li}}}")
                    if ref
                    else (f"d{Ln}/db{li}", rf"\frac{{\partial {Ll}}}{{\partial b^{{[{li}]}}}}")
                )
            out.append(
                GradientArray(
                    label[0], label[1], grid, np.asarray(values, dtype=np.float64), layout,
                    self._inputs(li) if layout else "",
                )
            )
        return out

    @staticmethod
    def _laid_out(
        names: np.ndarray, values: np.ndarray, layout: str, name_of: Callable[[tuple[str, str]], str]
    ) -> tuple[list[list[str]], np.ndarray]:
        """A weight-shaped array (units, fan_in) as shown: in-out (row i) or out-in (row j)."""
        units, fan_in = names.shape
        if layout == "in-out":
            return [[name_of(names[j, i]) for j in range(units)] for i in range(fan_in)], values.T.copy()
        return [[name_of(names[j, i]) for i in range(fan_in)] for j in range(units)], values.copy()

    def update(self, lr: float, order: list[Tensor]) -> list[GradientArray]:
        """One gradient-descent step w <- w - lr dL/dw by the engine's ops, and the loss after it.
        Constant parameters (``requires_grad=False``) keep their values."""
        new_values: dict[int, np.ndarray] = {}
        arrays = []
        ref = self.nt.style == "reference"
        for li, kind, param in self.net.parameters():
            names = self._param_names(li, kind)
            with no_grad():
                new = np.asarray((Tensor(param.data) - lr * Tensor(self.grads[id(param)])).data)
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
            if kind == "weight":
                layout = self.layouts[li - 1]
                grid, values = self._laid_out(names, new, layout, lambda n: f"{n[0]}^{{new}}")
                label = (
                    (f"w_{li}^new", rf"w_{li}^{{\text{{new}}}}")
                    if ref
                    else (f"W{li}^new", rf"W^{{[{li}]}}_{{\text{{new}}}}")
                )
                arrays.append(GradientArray(label[0], label[1], grid, values, layout, self._inputs(li)))
            else:
                label = f"B_{li}" if ref else f"b{li}"
                grid = [[f"{names[idx][0]}^{{new}}"] for idx in np.ndindex(*names.shape)]
                arrays.append(
                    GradientArray(
                        f"{label}^new", rf"{label}^{{\text{{new}}}}", grid, new.reshape(-1, 1).copy()
                    )
                )
        values = replay(order, new_values)
        self.add(
            Quantity(
                f"{self.loss_name[0]}^{{new}}",
                rf"{self.loss_name[1]}^{{\text{{new}}}}",
                "update",
                float(np.asarray(values[id(self.net.loss)]).reshape(())),
                formula="L with the new weights and biases",
            )
        )
        return arrays

    def deltas(self, convention: str) -> None:
        """delta_{j-l} = dL/dz_{j-l}, or -dL/dz_{j-l} (the sign some courses use), named."""
        if convention not in DELTA_CONVENTIONS:
            raise ValueError(f"delta must be one of {', '.join(DELTA_CONVENTIONS)}, got {convention!r}")
        sign = -1.0 if convention.startswith("-") else 1.0
        for li, layer in enumerate(self.net.layers, start=1):
            zn = self.z_names[li - 1]
            for s in range(self.n):
                for j in range(layer.units):
                    dz = self.nt.d(self.loss_name, zn[self.at(s, j)])[0]
                    if dz not in self.by_name:
                        continue
                    name, latex = self.nt.delta(li, s, j)
                    q = Quantity(
                        name,
                        latex,
                        "chain",
                        sign * self.by_name[dz].value,
                        formula=("-" if sign < 0 else "") + dz,
                        equals=dz if sign > 0 else "",
                        layer=li,
                        uses=(dz,),
                        recompute=self._chain_recompute(((dz,),), sign),
                    )
                    # right after dL/dz, where a solution writes it
                    self.quantities.insert(self.quantities.index(self.by_name[dz]) + 1, q)
                    self.by_name[name] = q

    def builtin_aliases(self) -> dict[str, str]:
        """A linear output layer's prediction is yhat like any other: yhat (yhat_j) names z_{j-L};
        and each per-output path term's ``|`` name (dL/dy_{1-1}|z_{1-2}) names dL_1/dy_{1-1}."""
        net = self.net
        if self.nt.style != "reference" or net.layers[-1].y is not None or self.prob_names is not None:
            return dict(self.path_aliases)
        units, top = net.layers[-1].units, len(net.layers)
        if units == 1:
            return {"yhat": f"z_{{1-{top}}}", **self.path_aliases}
        return {**{f"yhat_{j + 1}": f"z_{{{j + 1}-{top}}}" for j in range(units)}, **self.path_aliases}

    def view(self) -> NetworkView:
        net = self.net
        layers = []
        for li, layer in enumerate(net.layers, start=1):
            act = layer.y._node.prim.name if layer.y is not None else None
            w_name = layer.weight_tensor.name if layer.weight_tensor is not None else None
            b_name = layer.bias_tensor.name if layer.bias_tensor is not None else None
            layers.append(
                Layer(
                    li,
                    layer.units,
                    act,
                    w_name or f"W{li}",
                    None if layer.bias is None else (b_name or f"b{li}"),
                )
            )
        L = self.loss_name
        at0 = lambda j: self.at(0, j)
        units, edges, biases = [], [], []
        for li, layer in enumerate(net.layers, start=1):
            zn, yn, wn = self.z_names[li - 1], self.y_names[li - 1], self.w_names[li - 1]
            units.append(
                [
                    {"z": zn[at0(j)][0], "y": yn[at0(j)][0], "dz": self.nt.d(L, zn[at0(j)])[0]}
                    for j in range(layer.units)
                ]
            )
            edges.append(
                [
                    [{"w": wn[j, i][0], "dw": self.nt.d(L, wn[j, i])[0]} for j in range(layer.units)]
                    for i in range(layer.fan_in)
                ]
            )
            biases.append(
                [
                    {"b": self.b_name(li, j)[0], "db": self.nt.d(L, self.b_name(li, j))[0]}
                    for j in range(layer.units)
                ]
                if layer.bias is not None
                else []
            )
        outputs = self.prob_names if self.prob_names is not None else self.pred_names
        return NetworkView(
            input_size=net.input_value.shape[-1],
            layers=layers,
            batch=self.n,
            loss=net.loss_node.prim.name if net.has_loss else "none",
            input_names=[self.x_names[at0(i)][0] for i in range(net.input_value.shape[-1])],
            unit_names=units,
            edge_names=edges,
            bias_names=biases,
            output_names=[outputs[at0(j)][0] for j in range(outputs.shape[-1])],
            loss_name=self.loss_name[0],
        )


def _applied(op: str, args: list[str], j: int) -> str:
    """sigmoid(z_{1-1}); softmax(z_{1-2}, z_{2-2})_1 for a function of the whole row."""
    if len(args) == 1:
        return f"{op}({args[0]})"
    return f"{op}({', '.join(args)})_{j + 1}"


def _update_recompute(param: str, grad_name: str, lr: float) -> Callable[[Lookup], float]:
    def recompute(lookup: Lookup) -> float:
        with no_grad():
            return float((Tensor(lookup(param)) - lr * Tensor(lookup(grad_name))).data)

    return recompute
