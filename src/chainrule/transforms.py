"""Function transforms: vjp, jvp, jacobian, hessian, hvp and vhp of a Python function.

The semantics are ``torch.autograd.functional``'s: ``func`` takes one Tensor or several (pass
them as a tuple) and returns a Tensor or a tuple of Tensors; each transform returns results in
the same structure, as Tensors. ``create_graph=True`` makes the results differentiable again
(they carry a graph back to ``inputs``); otherwise they are detached. ``strict=True`` raises
``RuntimeError`` when an output does not depend on an input (the derivative would be
identically zero), as PyTorch does; otherwise that derivative is zeros.

Every transform is built from the engine's reverse mode (``chainrule.grad``): ``jvp`` by the
double-VJP trick (J v is the gradient, with respect to u, of u^T J v's transposed partner
v^T (J^T u)), ``hessian`` as the Jacobian of the gradient, ``hvp`` as the gradient of
(gradient . v). A Jacobian takes one backward pass per output element.

Differences from PyTorch: inputs may also be NumPy arrays or nested lists (converted to float
tensors); ``jacobian``/``hessian`` accept ``vectorize=True`` but compute row by row (no
``vmap``), and ``hessian`` has no ``outer_jacobian_strategy``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.tensor import Tensor, grad, stack

TensorOrTuple = Tensor | tuple[Tensor, ...]


def _as_tuple(x: Any, what: str, fn_name: str) -> tuple[bool, tuple]:
    """(was it a tuple, the elements as a tuple)."""
    if isinstance(x, tuple):
        return True, x
    if isinstance(x, list):
        return True, tuple(x)
    return False, (x,)


def _prepare_inputs(inputs: tuple, create_graph: bool, fn_name: str) -> tuple[Tensor, ...]:
    """Fresh tensors that require grad. With ``create_graph`` an input that already carries a
    graph keeps it (the results can then be differentiated with respect to what made it)."""
    prepared = []
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            try:
                x = Tensor(np.asarray(x, dtype=float))
            except (TypeError, ValueError):
                raise TypeError(f"{fn_name}: input {i} must be a Tensor or array-like of numbers, "
                                f"got {type(x).__name__}") from None
        if x.dtype.kind != "f":
            raise TypeError(f"{fn_name}: input {i} must be floating point, got dtype {x.dtype}")
        if create_graph and x.requires_grad:
            prepared.append(x + 0)  # a new node on top of x: the graph back to x stays
        else:
            prepared.append(Tensor._wrap(x.data).requires_grad_(True))
    return tuple(prepared)


def _outputs(out: Any, fn_name: str) -> tuple[bool, tuple[Tensor, ...]]:
    is_tuple, outs = _as_tuple(out, "output", fn_name)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{fn_name}: the function must return a Tensor or a tuple of Tensors, "
                            f"got {type(o).__name__} at output {i}")
    return is_tuple, outs


def _vectors(v: Any, like: tuple[Tensor, ...], name: str, fn_name: str) -> tuple[np.ndarray, ...]:
    """``v`` as one array per tensor of ``like``, each of its shape (None: only for 1-element)."""
    if v is None:
        if any(t.size != 1 for t in like):
            raise ValueError(f"{fn_name}: {name} may be omitted only when every tensor it matches "
                             f"has one element, got shapes {[t.shape for t in like]}")
        return tuple(np.ones(t.shape, dtype=t.dtype) for t in like)
    _, vs = _as_tuple(v, name, fn_name)
    if len(vs) != len(like):
        raise ValueError(f"{fn_name}: {name} has {len(vs)} entries, expected {len(like)}")
    arrays = []
    for i, (a, t) in enumerate(zip(vs, like, strict=False)):
        a = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=t.dtype)
        if a.shape != t.shape:
            raise ValueError(f"{fn_name}: {name}[{i}] has shape {a.shape}, expected {t.shape}")
        arrays.append(a)
    return tuple(arrays)


def _grads(outs: tuple[Tensor, ...], seeds: tuple[Any, ...], inputs: tuple[Tensor, ...],
           create_graph: bool, strict: bool, fn_name: str, what: str) -> tuple[Tensor, ...]:
    """sum_k seeds_k^T d outs_k / d inputs, one Tensor per input (zeros where unused)."""
    total = None
    for o, s in zip(outs, seeds, strict=False):
        if not o.requires_grad:
            if strict:
                raise RuntimeError(f"{fn_name}: an output does not depend on any input "
                                   f"(strict=True: the {what} is identically zero)")
            continue
        term = (o * s).sum()
        total = term if total is None else total + term
    if total is None:
        found: list[Any] = [None] * len(inputs)
    else:
        found = grad(total, inputs, retain_graph=True, create_graph=create_graph,
                     allow_unused=True)
    result = []
    for x, g in zip(inputs, found, strict=False):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn_name}: the output does not depend on an input of shape "
                                   f"{x.shape} (strict=True: the {what} is identically zero)")
            g = Tensor._wrap(np.zeros(x.shape, dtype=x.dtype))
        elif not create_graph:
            g = Tensor._wrap(g.data)
        result.append(g)
    return tuple(result)


def _detach_all(ts: tuple[Tensor, ...], keep: bool) -> tuple[Tensor, ...]:
    return ts if keep else tuple(Tensor._wrap(t.data) for t in ts)


def vjp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), v^T J)``: the vector-Jacobian product (``torch.autograd.functional.vjp``).

    ``v`` has the output's shape (a tuple for a tuple of outputs); it may be omitted for a
    one-element output. The product has each input's shape and dtype. Raises ``ValueError``
    for a ``v`` of the wrong shape, ``TypeError`` for a non-Tensor output.
    """
    fn_name = "vjp"
    is_tuple, xs = _as_tuple(inputs, "inputs", fn_name)
    xs = _prepare_inputs(xs, create_graph, fn_name)
    out_tuple, outs = _outputs(func(*xs), fn_name)
    seeds = _vectors(v, outs, "v", fn_name)
    result = _grads(outs, seeds, xs, create_graph, strict, fn_name, "vector-Jacobian product")
    outs = _detach_all(outs, create_graph)
    return (outs if out_tuple else outs[0]), (result if is_tuple else result[0])


def jvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), J v)``: the Jacobian-vector product (``torch.autograd.functional.jvp``).

    ``v`` has the inputs' shapes (a tuple for a tuple of inputs); it may be omitted for a
    one-element input. Computed by two reverse passes (the double-VJP trick, as PyTorch's
    ``jvp``): u -> J^T u is linear in u, and the gradient of v . (J^T u) with respect to u is J v.
    """
    fn_name = "jvp"
    is_tuple, xs = _as_tuple(inputs, "inputs", fn_name)
    xs = _prepare_inputs(xs, create_graph, fn_name)
    vs = _vectors(v, xs, "v", fn_name)
    out_tuple, outs = _outputs(func(*xs), fn_name)
    us = tuple(Tensor._wrap(np.zeros(o.shape, dtype=o.dtype)).requires_grad_(True) for o in outs)
    vjps = _grads(outs, us, xs, True, strict, fn_name, "Jacobian-vector product")
    total = None
    for g, vi in zip(vjps, vs, strict=False):
        if g.requires_grad:
            term = (g * vi).sum()
            total = term if total is None else total + term
    found = ([None] * len(us) if total is None else
             grad(total, us, retain_graph=True, create_graph=create_graph, allow_unused=True))
    result = []
    for o, g in zip(outs, found, strict=False):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn_name}: an output does not depend on the inputs "
                                   "(strict=True: the Jacobian-vector product is identically zero)")
            g = Tensor._wrap(np.zeros(o.shape, dtype=o.dtype))
        elif not create_graph:
            g = Tensor._wrap(g.data)
        result.append(g)
    outs = _detach_all(outs, create_graph)
    return (outs if out_tuple else outs[0]), (tuple(result) if out_tuple else result[0])


def _jacobian_of(outs: tuple[Tensor, ...], xs: tuple[Tensor, ...], create_graph: bool,
                 strict: bool, fn_name: str) -> list[list[Tensor]]:
    """J[k][i] of shape outs[k].shape + xs[i].shape, one reverse pass per output element."""
    blocks: list[list[Tensor]] = []
    for o in outs:
        rows: list[list[Tensor]] = [[] for _ in xs]
        for j in range(o.size):
            seed = np.zeros(o.shape, dtype=o.dtype)
            seed.flat[j] = 1
            for i, g in enumerate(_grads((o,), (seed,), xs, create_graph, strict, fn_name,
                                         "Jacobian")):
                rows[i].append(g)
        block = []
        for i, x in enumerate(xs):
            if not rows[i]:  # an empty output: an empty Jacobian
                block.append(Tensor._wrap(np.zeros(o.shape + x.shape, dtype=x.dtype)))
            elif create_graph:
                block.append(stack(rows[i]).reshape(o.shape + x.shape))
            else:
                block.append(Tensor._wrap(np.stack([r.data for r in rows[i]]).reshape(o.shape + x.shape)))
        blocks.append(block)
    return blocks


_STRATEGIES = ("reverse-mode", "forward-mode")


def _jacobian_forward_mode(outs: tuple[Tensor, ...], xs: tuple[Tensor, ...],
                           fn_name: str) -> list[list[Tensor]]:
    """J[k][i] one column (input element) at a time, J e_j, by the double-VJP trick: the
    backward pass recorded once as g(u) = J^T u, linear in a stand-in u for the outputs'
    cotangent; then the gradient of e_j . g(u) with respect to u is J e_j."""
    us = tuple(Tensor._wrap(np.zeros(o.shape, dtype=o.dtype)).requires_grad_(True) for o in outs)
    vjps = _grads(outs, us, xs, True, False, fn_name, "Jacobian")
    blocks: list[list[Tensor]] = [[] for _ in outs]
    for x, g in zip(xs, vjps, strict=True):
        columns: list[list[np.ndarray]] = [[] for _ in outs]
        for j in range(x.size):
            found: list[Any] = [None] * len(us)
            if g.requires_grad:
                seed = np.zeros(x.shape, dtype=g.dtype)
                seed.flat[j] = 1
                found = grad(g, us, seed, retain_graph=True, allow_unused=True)
            for k, (o, c) in enumerate(zip(outs, found, strict=True)):
                columns[k].append(np.zeros(o.shape, dtype=o.dtype) if c is None else c.data)
        for k, o in enumerate(outs):
            if x.size == 0:
                block = np.zeros(o.shape + x.shape, dtype=x.dtype)
            else:  # columns stacked first: move their axis behind the output's
                block = np.moveaxis(np.stack(columns[k]), 0, -1).reshape(o.shape + x.shape)
            blocks[k].append(Tensor._wrap(block.astype(x.dtype, copy=False)))
    return blocks


def jacobian(func: Callable[..., Any], inputs: Any, create_graph: bool = False,
             strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode") -> Any:
    """The Jacobian of ``func`` at ``inputs`` (``torch.autograd.functional.jacobian``).

    For one input and one output: a Tensor of shape ``output.shape + input.shape``. For a tuple
    of inputs: a tuple over the inputs; for a tuple of outputs: a tuple over the outputs (of
    tuples over the inputs when both are tuples).

    ``strategy="reverse-mode"`` (the default) takes one reverse pass per output element, over
    one recorded forward pass. ``strategy="forward-mode"`` builds it a column (input element)
    at a time, J e_j, from the backward pass recorded once (the double-VJP trick, as ``jvp``):
    fewer passes when the inputs have fewer elements than the outputs. As in PyTorch,
    forward mode needs ``vectorize=True`` and does not take ``create_graph=True``
    (``NotImplementedError``), and ``vectorize=True`` does not take ``strict=True``
    (``RuntimeError``).

    Differs from PyTorch: ``vectorize=True`` is accepted and gives the same values, but is not
    vectorized. PyTorch batches the rows through ``vmap``; chainrule has no batching transform,
    so the rows (columns in forward mode) are still computed one pass each. Raises
    ``ValueError`` for another ``strategy``.
    """
    fn_name = "jacobian"
    if strategy not in _STRATEGIES:
        raise ValueError(f'{fn_name}: strategy must be "reverse-mode" or "forward-mode", got '
                         f"{strategy!r}")
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError(f'{fn_name}: create_graph=True and strategy="forward-mode" '
                                      "are not supported together (as in PyTorch); use "
                                      'strategy="reverse-mode"')
        if not vectorize:
            raise NotImplementedError(f'{fn_name}: strategy="forward-mode" is only implemented '
                                      "with vectorize=True (as in PyTorch)")
    if vectorize and strict:
        raise RuntimeError(f"{fn_name}: strict=True and vectorize=True are not supported "
                           "together (as in PyTorch); set one of them to False")
    is_tuple, xs = _as_tuple(inputs, "inputs", fn_name)
    xs = _prepare_inputs(xs, create_graph, fn_name)
    out_tuple, outs = _outputs(func(*xs), fn_name)
    if strategy == "forward-mode":
        blocks = _jacobian_forward_mode(outs, xs, fn_name)
    else:
        blocks = _jacobian_of(outs, xs, create_graph, strict, fn_name)
    per_output = [tuple(b) if is_tuple else b[0] for b in blocks]
    return tuple(per_output) if out_tuple else per_output[0]


def hessian(func: Callable[..., Any], inputs: Any, create_graph: bool = False,
            strict: bool = False, vectorize: bool = False) -> Any:
    """The Hessian of a scalar ``func`` at ``inputs`` (``torch.autograd.functional.hessian``).

    For one input of shape s: a Tensor of shape s + s. For a tuple of inputs: a tuple of tuples,
    ``H[i][j]`` of shape ``inputs[i].shape + inputs[j].shape``. ``func`` must return a Tensor with
    one element (``ValueError`` otherwise). ``vectorize`` is accepted as in ``jacobian``: the
    same values, computed row by row (``RuntimeError`` with ``strict=True``, as PyTorch).
    """
    fn_name = "hessian"
    if vectorize and strict:
        raise RuntimeError(f"{fn_name}: strict=True and vectorize=True are not supported "
                           "together (as in PyTorch); set one of them to False")
    is_tuple, xs = _as_tuple(inputs, "inputs", fn_name)
    xs = _prepare_inputs(xs, create_graph, fn_name)
    _, outs = _outputs(func(*xs), fn_name)
    if len(outs) != 1 or outs[0].size != 1:
        raise ValueError(f"{fn_name}: the function must return a Tensor with a single element, "
                         f"got {[tuple(o.shape) for o in outs]}")
    out = outs[0]
    gradient = _grads((out,), (np.ones(out.shape, dtype=out.dtype),), xs, True, strict, fn_name,
                      "Hessian")
    blocks = _jacobian_of(gradient, xs, create_graph, strict, fn_name)
    if is_tuple:
        return tuple(tuple(b) for b in blocks)
    return blocks[0][0]


def _second_order(func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool,
                  strict: bool, fn_name: str) -> tuple[Any, Any]:
    is_tuple, xs = _as_tuple(inputs, "inputs", fn_name)
    xs = _prepare_inputs(xs, create_graph, fn_name)
    vs = _vectors(v, xs, "v", fn_name)
    _, outs = _outputs(func(*xs), fn_name)
    if len(outs) != 1 or outs[0].size != 1:
        raise ValueError(f"{fn_name}: the function must return a Tensor with a single element, "
                         f"got {[tuple(o.shape) for o in outs]}")
    out = outs[0]
    gradient = _grads((out,), (np.ones(out.shape, dtype=out.dtype),), xs, True, strict, fn_name,
                      "Hessian")
    result = _grads(gradient, vs, xs, create_graph, strict, fn_name, "Hessian-vector product")
    out = out if create_graph else Tensor._wrap(out.data)
    return out, (result if is_tuple else result[0])


def hvp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Any]:
    """``(func(*inputs), H v)`` for a scalar ``func`` (``torch.autograd.functional.hvp``).

    Two reverse passes: the gradient recorded (``create_graph``), then the gradient of
    gradient . v. ``v`` has the inputs' shapes. For a twice-differentiable function H is
    symmetric and ``hvp`` equals ``vhp``.
    """
    return _second_order(func, inputs, v, create_graph, strict, "hvp")


def vhp(func: Callable[..., Any], inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple[Tensor, Any]:
    """``(func(*inputs), v^T H)`` for a scalar ``func`` (``torch.autograd.functional.vhp``):
    the gradient of v . gradient. Equal to ``hvp`` where the Hessian is symmetric."""
    return _second_order(func, inputs, v, create_graph, strict, "vhp")
