"""The backward pass: graph nodes, gradient mode, and the reverse topological walk.

The walk is iterative (no recursion limit), visits each node once, and sums the gradients
a node receives from all of its uses before passing anything on. It works on any object
with ``data``, ``grad``, ``requires_grad`` and ``_node``; ``tensor.py`` builds those.

Two walks share that order and the same VJPs (``ops.py``): ``_walk`` on NumPy arrays, the fast
path; and ``_walk_recorded`` for ``create_graph=True``, which calls each VJP with the incoming
gradient, the output and the saved inputs as Tensors, so that the backward pass is itself a
graph that can be differentiated again (PyTorch's ``create_graph``).

Saved values are guarded by version stamps (PyTorch's version counters): an in-place operation
on a Tensor (``+=``, ``t[i] = v``, an optimizer step) stamps it with a new value of a global
counter, and every node remembers the counter when it was recorded. At backward a node whose
input or output was stamped after it was recorded raises ``RuntimeError``; while no in-place
operation happened the check is one integer comparison per node.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule.ops import Primitive


class _Versions:
    """The in-place counter: bumped by every in-place operation on a Tensor (``bump``)."""

    count = 0


def bump(t: Any) -> None:
    """Record that ``t``'s data was changed in place: nodes recorded before now that saved
    ``t`` will refuse to run their VJPs (``_check_saved``)."""
    _Versions.count += 1
    t._stamp = _Versions.count
    t._version = getattr(t, "_version", 0) + 1


class Node:
    """How a tensor was made: the primitive, its arguments, and the tensors among them.

    ``parents`` gives, per argument, the Tensor it came from (None for a constant). The node
    keeps the first two in slots of its own and only the rest in a tuple: a tuple holding
    tensors would be one more object per op for Python's cyclic garbage collector, whose full
    collections traverse every live node of a graph while it is built (the 100,000-op chain's
    forward spent over half its time there; see benchmarks/README.md).
    """

    __slots__ = ("prim", "arity", "_first", "_second", "_more", "args", "kwargs", "trace",
                 "residual", "stamp")

    def __init__(self, prim: Primitive, parents: Sequence, args: Sequence, kwargs: dict,
                 residual: Any = None):
        self.prim = prim
        self.arity = n = len(args)
        if n == 2:
            self._first, self._second = parents
            self._more = ()
        elif n == 1:
            self._first, self._second, self._more = parents[0], None, ()
        else:
            self._first = parents[0] if n else None
            self._second = parents[1] if n > 1 else None
            self._more = tuple(parents[2:])
        self.args = tuple(args)  # per argument: the NumPy value the forward saw
        self.kwargs = kwargs
        self.trace = None  # under detect_anomaly: where the op was created (an ``AnomalyRecord``)
        self.residual = residual  # what ``prim.fwd`` kept for the VJPs (None: nothing)
        self.stamp = _Versions.count  # in-place operations so far (see ``_check_saved``)

    @property
    def parents(self) -> tuple:
        """Per argument: the Tensor, or None for a constant (all None once released)."""
        n = self.arity
        if n == 2:
            return (self._first, self._second)
        if n == 1:
            return (self._first,)
        return (self._first, self._second, *self._more)[:n]

    @property
    def released(self) -> bool:
        return self.args is None

    def release(self) -> None:
        """Drop the saved inputs, so their memory goes as soon as the backward pass is past."""
        self.args = None
        self.residual = None
        self._first = self._second = None
        if self._more:
            self._more = (None,) * len(self._more)


class _GradModeState(threading.local):
    enabled = True  # per thread, as in PyTorch: a no_grad in one thread leaves others alone


_GradMode = _GradModeState()


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class _SetGradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._saved: list[bool] = []

    def __enter__(self):
        self._saved.append(_GradMode.enabled)
        _GradMode.enabled = self._enabled
        return self

    def __exit__(self, *exc: Any) -> None:
        _GradMode.enabled = self._saved.pop()

    def _recreate_cm(self) -> _SetGradMode:
        # Each call of a decorated function gets its own context: re-entrant and thread-safe.
        return _SetGradMode(self._enabled)


class no_grad(_SetGradMode):
    """Context manager and decorator (``@no_grad()`` or ``@no_grad``): record no graph inside."""

    def __new__(cls, func: Any = None):
        if func is not None:  # used bare, as ``@no_grad``
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func: Any = None) -> None:
        super().__init__(False)


class enable_grad(_SetGradMode):
    """Context manager and decorator: turn graph recording back on inside ``no_grad``."""

    def __new__(cls, func: Any = None):
        if func is not None:
            return cls()(func)
        return super().__new__(cls)

    def __init__(self, func: Any = None) -> None:
        super().__init__(True)


def topological_order(root: Any, *more_roots: Any) -> list:
    """Tensors that ``root`` (and ``more_roots``) depend on, those requiring grad, each placed
    before its users."""
    order: list = []
    visited: set = {root}  # tensors hash by identity
    # Depth-first with an explicit stack of (tensor, its parents still to go through; see
    # ``_pending``): a tensor is placed once all of its parents are, with no recursion and one
    # stack entry per tensor.
    stack: list = [(root, () if root._node is None else _pending(root._node))]
    if more_roots:  # below root: a stand-in for a user of every other root, removed at the end
        stack.insert(0, (None, iter(more_roots)))
    while stack:
        t, parents = stack[-1]
        for p in parents:
            if p is not None and p.requires_grad and p not in visited:
                visited.add(p)
                if p._node is None:  # a leaf has no parents to place first: place it now
                    order.append(p)
                    continue
                # _pending(p._node), inlined: a call per node is measurable
                node, n = p._node, p._node.arity
                stack.append((p, (node._first,) if n == 1 else (node._first, node._second)
                              if n == 2 else iter((node._first, node._second) + node._more)))
                break
        else:
            stack.pop()
            order.append(t)
    if more_roots:
        order.pop()  # the stand-in
    return order


def _pending(node: Node) -> Any:
    """What ``topological_order``'s loop goes through for ``node``: its parents (inlined, no
    property call). With one or two the tuple itself, which the loop may start again from the
    top after placing a parent (the placed ones are skipped); no iterator per stack entry, which
    keeps a million-op chain's walk within its memory bound (tests/test_scale.py)."""
    n = node.arity
    if n == 1:
        return (node._first,)
    if n == 2:
        return (node._first, node._second)
    return iter((node._first, node._second) + node._more)


def _check_saved(order: list) -> None:
    """Before a walk touches anything: RuntimeError if a node's saved values were freed by an
    earlier backward, or an input or the output of a node was changed in place after the node
    was recorded (its VJP would read the new values and give a wrong gradient silently).

    Every saved input counts, not only the ones the VJP reads (PyTorch checks only those): a
    graph edge here is the Tensor itself, so an in-place op that rebases a Tensor's history
    would also re-route the gradient of earlier uses of it. While no in-place operation
    happened since a node was recorded, its check is one comparison."""
    count = _Versions.count
    for t in order:
        node = t._node
        if node is None:
            continue
        if node.args is None:
            raise _released_error(t)
        if node.stamp != count:
            for i, p in enumerate((t, *node.parents)):
                if p is not None and getattr(p, "_stamp", -1) > node.stamp:
                    what = "its output" if i == 0 else f"its input {i - 1}"
                    shape = tuple(p.data.shape)
                    raise RuntimeError(
                        f"one of the tensors needed for gradient computation has been modified by "
                        f"an in-place operation: {what} (shape {shape}, version {p._version}) of op "
                        f"{node.prim.name!r} was changed after the op was recorded. Compute the "
                        "gradient before changing it, or change a copy (PyTorch's check; hint: "
                        "cr.detect_anomaly() names where the op was created)"
                        + (f"\n  created at {node.trace}" if node.trace else ""))
        if node.trace is not None:
            _check_digests(t, node)


def digest(array: Any) -> int | None:
    """A fingerprint of an array's bytes (None for a non-array): under ``detect_anomaly`` each
    node keeps one per saved array, so that a write that bypasses chainrule (``t.data[...] =``,
    a write into the array given to ``from_numpy``) is caught at backward too. O(size): only
    in anomaly mode, never on the fast path."""
    if not isinstance(array, np.ndarray):
        return None
    return hash((array.shape, array.dtype.str, np.ascontiguousarray(array).tobytes()))


class AnomalyRecord(str):
    """What ``detect_anomaly`` keeps on a node: where the op was created (the string itself)
    and a digest of each array it saved (``digests``: the output's, then one per argument)."""

    def __new__(cls, where: str, digests: tuple) -> AnomalyRecord:
        record = super().__new__(cls, where)
        record.digests = digests
        return record


def _check_digests(t: Any, node: Node) -> None:
    digests = getattr(node.trace, "digests", None)
    if digests is None:
        return
    arrays = (t.data, *(a if p is None else p.data
                        for p, a in zip(node.parents, node.args, strict=True)))
    for i, (saved, a) in enumerate(zip(digests, arrays, strict=True)):
        if saved is not None and digest(a) != saved:
            what = "its output" if i == 0 else f"its input {i - 1}"
            raise RuntimeError(
                f"{what} (shape {np.shape(a)}) of op {node.prim.name!r} was changed after the op "
                "was recorded, by a write that bypassed chainrule (t.data[...] = ..., or into the "
                "NumPy array given to from_numpy); its gradient would be wrong (found by "
                "detect_anomaly's check of saved values)"
                + (f"\n  created at {node.trace}" if node.trace else ""))


# NumPy's floating-point error state for the backward pass: every warning off. A VJP computes
# what the forward's values imply (0 * inf at a singular point, an overflow to inf), and NaN and
# inf propagate silently, as in PyTorch: none of it is the user's NumPy code to warn about.
# Entering np.errstate costs ~2 us; setting the context variable it sets costs ~0.2 us.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _np_errstate_var

    with np.errstate(all="ignore"):
        _QUIET = _np_errstate_var.get()
except (ImportError, AttributeError):  # pragma: no cover - another NumPy's internals
    _np_errstate_var = None


def _released_error(t: Any) -> RuntimeError:
    return RuntimeError(
        f"backward through the graph a second time (at op {t._node.prim.name!r}): its saved "
        "values were freed by the first backward(); pass retain_graph=True to the first call")


def backprop(roots: tuple, seeds: tuple, retain_graph: bool = False,
             capture: Iterable[Any] | None = None, create_graph: bool = False) -> dict[int, Any]:
    """Propagate each of ``seeds`` (dL/droot) back from its root of ``roots`` through the graph
    (see ``_walk``; with ``create_graph``, ``_walk_recorded``, which also retains the graph).
    Several roots give the sum of their vector-Jacobian products (``torch.autograd.backward``).

    Python's cyclic garbage collector is paused meanwhile: the walk makes no reference cycles,
    yet the collections its allocations trigger would each traverse every live tensor of the
    graph. Measured on the 100,000-op chain: backward 0.42 s with it running, 0.21 s paused.

    NumPy's floating-point warnings are off for the whole walk (``_QUIET``): a gradient
    that underflows to 0, such as the slope of a saturated float32 sigmoid, is the right value,
    and an inf or NaN at a singular point (the backward of sqrt at 0) propagates silently, as
    in PyTorch; ``detect_anomaly`` is the way to find where one appeared.
    """
    paused = gc.isenabled()
    gc.disable()
    token = None if _np_errstate_var is None else _np_errstate_var.set(_QUIET)
    try:
        if token is None:  # pragma: no cover - a NumPy without the context variable
            with np.errstate(all="ignore"):
                return (_walk_recorded(roots, seeds, capture) if create_graph
                        else _walk(roots, seeds, retain_graph, capture))
        if create_graph:
            return _walk_recorded(roots, seeds, capture)
        return _walk(roots, seeds, retain_graph, capture)
    finally:
        if token is not None:
            _np_errstate_var.reset(token)
        if paused:
            gc.enable()


def _walk(roots: tuple, seeds: tuple, retain_graph: bool,
          capture: Iterable[Any] | None) -> dict[int, np.ndarray]:
    """Propagate ``seeds`` (dL/droot for each of ``roots``) back through the graph.

    Without ``capture``: accumulate into the ``.grad`` of leaves (and of tensors that asked
    ``retain_grad()``), as ``Tensor.backward`` does. With ``capture``: touch no ``.grad`` and
    return ``{id(t): dL/dt}`` for the captured tensors (the functional ``grad``).

    A tensor used several times receives the sum of its gradients. The sum is taken in place
    in a buffer only the engine holds (``owned``: a VJP's new array, or an earlier sum), never
    in one that may be shared: the incoming gradient passed on, a view, a saved input.
    """
    wanted = None if capture is None else set(capture)
    order = topological_order(*roots)
    # In anomaly mode every gradient is checked, also for a graph recorded outside it (PyTorch).
    check_all = _Anomaly.enabled
    _check_saved(order)  # fail before any .grad is touched, not halfway through the walk
    # tensor -> dL/dtensor so far (tensors hash by identity)
    grads: dict = {roots[0]: seeds[0]} if len(roots) == 1 else _seed_grads(roots, seeds)
    owned: set = set()  # tensors whose gradient buffer the engine may write into
    result: dict[int, np.ndarray] = {}
    while order:
        t = order.pop()  # users before what they use; popped: intermediates go once passed
        g = grads.pop(t, None)
        if g is None:
            continue
        mine = t in owned
        if mine:
            owned.remove(t)  # the walk is past t: holding it would keep its data alive to the end
        data = t.data
        if g.dtype is not data.dtype and g.dtype != data.dtype:  # dtypes are mostly singletons
            g, mine = g.astype(data.dtype), True
        node = t._node
        if wanted is not None:
            if t in wanted:
                result[id(t)] = g if mine else g.copy()
                mine = False  # handed out: never written into from here on
        elif node is None or t._retains_grad:
            _store_grad(t, g, mine)
            mine = False
        if node is None:
            continue
        prim, args, kwargs, residual = node.prim, node.args, node.kwargs, node.residual
        # node.parents, inlined (a recorded node has at least one argument)
        parents = ((node._first,) if node.arity == 1
                   else (node._first, node._second) + node._more)
        # The VJP rules are looked up here rather than through ``prim.vjp`` (one call less per
        # gradient; ``Primitive.vjp`` is the same lookup, for everyone else).
        vjps = prim.vjps if prim.vjp_argnum is None else ()
        check = check_all or node.trace is not None
        given = None  # what earlier parents of this node got: the engine must not write into it
        for i, p in enumerate(parents):
            if p is None or not p.requires_grad:
                continue
            rule = vjps[i] if i < len(vjps) else None
            if rule is None:
                gi = prim.vjp(i, g, data, args, kwargs)  # variadic, or the error it raises
            elif residual is None:
                gi = rule(g, data, *args, **kwargs)
            else:
                gi = rule(g, data, *args, residual=residual, **kwargs)
            if type(gi) is not np.ndarray:
                gi = np.asarray(gi)
            if check:
                _check_finite(gi, t, f"backward (gradient for argument {i})")
            # A new array the VJP made (not g, the output, a saved input or what another parent
            # got) is the engine's to sum into in place.
            fresh = gi.base is None and gi is not g and gi is not data and gi.flags.writeable
            if fresh:  # by identity (``in`` would compare arrays), without a call per gradient
                for a in args if given is None else (*args, *given):
                    if a is gi:
                        fresh = False
                        break
            if given is None:
                given = [gi]
            else:
                given.append(gi)
            prev = grads.get(p)
            if prev is None:
                grads[p] = gi
                if fresh:
                    owned.add(p)
            elif p in owned and prev.shape == gi.shape and prev.dtype == gi.dtype:
                prev += gi
            elif fresh and prev.shape == gi.shape and prev.dtype == gi.dtype:
                gi += prev
                grads[p] = gi
                owned.add(p)
            else:
                grads[p] = np.asarray(prev + gi)  # 0-d + 0-d gives a NumPy scalar, not an array
                owned.add(p)
        if not retain_graph:  # Node.release, inlined (one call less per node)
            node.args = node.residual = node._first = node._second = None
            if node._more:
                node._more = (None,) * len(node._more)
    return result


class _Recording(threading.local):
    active = False  # inside a recorded backward pass: Tensor.__array__ refuses to drop a graph


def recording_backward() -> bool:
    return _Recording.active


def _walk_recorded(roots: tuple, seeds: tuple, capture: Iterable[Any] | None) -> dict[int, Any]:
    """``_walk`` with every gradient a Tensor and every VJP run on Tensors, under grad mode.

    The VJPs are the same functions as on the fast path: called with the incoming gradient,
    the node's output tensor as ``ans`` and the saved inputs (their Tensors; constants as they
    were), their NumPy calls dispatch to chainrule's ops and are recorded. Residuals (``fwd``)
    are not used: they are arrays, constant to the graph, so each VJP works from its inputs.
    Sums are out of place (``+``): a recorded gradient is never written into. The graph is
    retained, as ``create_graph`` implies ``retain_graph`` in PyTorch.
    """
    wanted = None if capture is None else set(capture)
    order = topological_order(*roots)
    _check_saved(order)
    tensor_type = type(roots[0])
    check_all = _Anomaly.enabled
    grads: dict = _seed_grads(roots, seeds)
    result: dict[int, Any] = {}
    saved_mode, saved_recording = _GradMode.enabled, _Recording.active
    _GradMode.enabled, _Recording.active = True, True
    try:
        while order:
            t = order.pop()
            g = grads.pop(t, None)
            if g is None:
                continue
            if g.dtype != t.data.dtype:
                g = g.astype(t.data.dtype)
            node = t._node
            if wanted is not None:
                if t in wanted:
                    result[id(t)] = g
            elif node is None or t._retains_grad:
                t.grad = g if t.grad is None else g + t.grad  # a Tensor, with its graph
            if node is None:
                continue
            prim = node.prim
            args = tuple(a if p is None else p for p, a in zip(node.parents, node.args, strict=False))
            for i, p in enumerate(node.parents):
                if p is None or not p.requires_grad:
                    continue
                gi = prim.vjp(i, g, t, args, node.kwargs)
                if not isinstance(gi, tensor_type):  # a gradient that depends on nothing
                    gi = tensor_type._wrap(np.asarray(gi))
                if check_all or node.trace is not None:
                    _check_finite(gi.data, t, f"backward (gradient for argument {i})")
                prev = grads.get(p)
                grads[p] = gi if prev is None else prev + gi
    finally:
        _GradMode.enabled, _Recording.active = saved_mode, saved_recording
    return result


def _seed_grads(roots: tuple, seeds: tuple) -> dict:
    """The walk's starting gradients: a root given more than once gets the sum of its seeds
    (out of place: a seed may be the caller's)."""
    grads: dict = {}
    for r, s in zip(roots, seeds, strict=True):
        grads[r] = s if r not in grads else grads[r] + s
    return grads


def _store_grad(t: Any, g: np.ndarray, mine: bool) -> None:
    if t.grad is None:
        t.grad = g if mine else g.copy()
    elif t.grad.flags.writeable and t.grad.shape == g.shape and t.grad.dtype == g.dtype:
        t.grad += g
    else:
        t.grad = np.asarray(t.grad + g)


# --- anomaly detection: hooks used by tensor.py and the walk above ----------------------

class _Anomaly:
    enabled = False


class FloatingPointAnomaly(FloatingPointError):
    """A NaN or Inf appeared in a forward value or a gradient under ``detect_anomaly``."""


@contextlib.contextmanager
def detect_anomaly():
    """Raise at the first op whose output or gradient holds a NaN or Inf, naming where it was made."""
    saved = _Anomaly.enabled
    _Anomaly.enabled = True
    try:
        yield
    finally:
        _Anomaly.enabled = saved


def anomaly_enabled() -> bool:
    return _Anomaly.enabled


def _check_finite(values: np.ndarray, t: Any, what: str) -> None:
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        node = t._node
        bad = "NaN" if np.isnan(values).any() else "Inf"
        shapes = ", ".join(str(np.shape(a)) for a in (node.args or ()))
        where = f"\n  created at {node.trace}" if node.trace else ""
        raise FloatingPointAnomaly(
            f"{bad} in the {what} of op {node.prim.name!r} (inputs of shapes {shapes}; "
            f"output shape {t.data.shape}){where}")
