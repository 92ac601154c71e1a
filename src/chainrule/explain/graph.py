"""The engine's graph, read node by node: values, local Jacobians, gradients, names.

Nothing here knows a derivative formula: each local partial derivative is the primitive's own
VJP called with a one-hot cotangent, each value is the graph's own (or the primitives' forwards
run again by ``replay``). Every explanation, whatever the graph's shape, starts here; the
layered-network view (``layered.py``, ``quantities.py``) adds textbook names on top.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from string import Template
from typing import Any

import numpy as np

from chainrule.autodiff import no_grad, topological_order
from chainrule.explain.model import ClosedForm, GradientArray, GraphNode
from chainrule.explain.tex import tex_mono
from chainrule.functional.formulas import FORMULAS
from chainrule.tensor import Tensor

MAX_JACOBIAN = 4096  # entries; larger local Jacobians are left out of the node view

_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}


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


def check_loss(loss: Any) -> None:
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


_GREEK = set(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi "
    "varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega".split()
)


def latex_name(name: str) -> str:
    if name == "yhat":
        return r"\hat{y}"
    m = re.fullmatch(r"(\\?)([A-Za-z]+)[0-9]*(\{[^{}]*\})?(_(\{[^{}]*\}|\w))?(\^\{[^{}]*\})?", name)
    if m and (not m.group(1) or m.group(2).lower() in _GREEK) and not re.search(r"[\\$%&#~]", name[1:]):
        return name  # a math name as written: x, w_1, \sigma_{2}, W^{[1]}
    return tex_mono(name)  # any other text in typewriter type, every special character escaped


def constant_text(value: Any) -> str:
    arr = np.asarray(value)
    if arr.size == 1:
        return np.format_float_positional(arr.item(), trim="-") if arr.dtype.kind == "f" else str(arr.item())
    if arr.size <= 6:
        return np.array2string(arr, separator=", ")
    return f"const{tuple(arr.shape)}"


def expression(op: str, parts: list[str], kwargs: dict) -> str:
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


def expression_latex(prim: Any, parts: list[str]) -> str:
    if prim.latex:
        try:
            return prim.latex.format(*parts)
        except (IndexError, KeyError, ValueError):
            pass
    return r"\operatorname{" + prim.name.replace("_", r"\_") + "}(" + ", ".join(parts) + ")"


def unique_names(order: Sequence[Tensor], loss: Tensor, preferred: dict[int, str]) -> dict[int, str]:
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
            nodes.append(GraphNode(name, None, name, latex_name(name), t.data, grads.get(id(t))))
            continue
        parts, parts_latex, local = [], [], {}
        for i, (p, a) in enumerate(zip(node.parents, node.args, strict=False)):
            if p is not None and id(p) in names:
                pname = names[id(p)]
                parts.append(pname)
                parts_latex.append(latex_name(pname))
                big = t.data.size * np.size(a) > MAX_JACOBIAN
                local[pname] = None if big else local_jacobian(node.prim, i, t.data, node.args, node.kwargs)
            elif (id(t), i) in constants:
                parts.append(constants[(id(t), i)])
                parts_latex.append(latex_name(constants[(id(t), i)]))
            elif isinstance(a, np.ndarray) or np.isscalar(a):
                text = p.name if p is not None and p.name else constant_text(a)
                parts.append(text)
                parts_latex.append(latex_name(text) if p is not None and p.name else text)
        nodes.append(
            GraphNode(
                name=name,
                op=node.prim.name,
                expression=expression(node.prim.name, parts, node.kwargs),
                expression_latex=expression_latex(node.prim, parts_latex),
                value=t.data,
                gradient=grads.get(id(t)),
                parents=tuple(parts),
                local=local,
            )
        )
    return nodes


def generic_update(
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
                    latex_name(names[id(t)]) + r"^{\text{new}}",
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
