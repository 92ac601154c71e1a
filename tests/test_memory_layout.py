"""Every VJP is independent of memory layout and never writes into what it was given.

The kind of fault this guards against: ``F.cross_entropy`` once subtracted its one-hot target
in place through ``reshape`` of a transposed array; ``reshape`` copied, the write was lost and
the gradient was 0.5 off. Any backward that writes through a view can fail the same way, and a
backward that writes into its cotangent or into a saved input corrupts another node's data.

For every case of the first-order tables (``test_ops``, ``test_numpy_api``,
``test_activations``, ``test_losses``; each checked there against autograd, PyTorch and
finite differences) the gradient is computed twice: once from C-contiguous inputs and
cotangent, once from the same values laid out as strided, non-contiguous views (every other
element of a larger buffer) and, for matrices, Fortran order. The two must agree to rounding,
and neither the inputs nor the cotangent may change.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import test_activations as acts
import test_losses as losses
import test_numpy_api as numpy_api
import test_ops as core

import chainrule as cr


def _strided(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view: every other element of a larger buffer."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a.copy()
    buffer = np.full(a.shape[:-1] + (2 * a.shape[-1],), np.nan, dtype=a.dtype)
    view = buffer[..., ::2]
    view[...] = a
    return view


def _fortran(a: np.ndarray) -> np.ndarray:
    return np.asfortranarray(a) if np.ndim(a) >= 2 else _strided(a)


def _gradients(fn: Callable, arrays: list, wrt: tuple, g: np.ndarray, layout: Callable | None
               ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """fn's VJP with cotangent g, inputs (and g) laid out by ``layout``; also what was given."""
    given = [layout(a) if layout and isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
             for a in arrays]
    g_given = layout(g) if layout else g
    kept = [a.copy() if isinstance(a, np.ndarray) else a for a in given]
    g_kept = np.array(g_given, copy=True)
    xs = [cr.tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(given)]
    out = fn(*xs)
    grads = cr.grad(out, [xs[i] for i in wrt], grad_outputs=cr.tensor(g_given), allow_unused=True)
    for i, (a, k) in enumerate(zip(given, kept, strict=True)):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, k, err_msg=f"input {i} was written into")
    np.testing.assert_array_equal(g_given, g_kept, err_msg="the cotangent was written into")
    values = [np.zeros(np.shape(arrays[i])) if t is None else np.asarray(t.data)
              for i, t in zip(wrt, grads, strict=True)]
    return values, given, g_given


def _check(fn: Callable, arrays: list, wrt: tuple, label: str) -> None:
    out = fn(*[cr.tensor(a) if isinstance(a, np.ndarray) else a for a in arrays])
    shape = np.shape(out.data)
    g = np.random.default_rng(1).standard_normal(shape).astype(out.data.dtype)
    expected, _, _ = _gradients(fn, arrays, wrt, g, None)
    for layout in (_strided, _fortran):
        actual, _, _ = _gradients(fn, arrays, wrt, g, layout)
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-13,
                                       err_msg=f"{label}, {layout.__name__} layout, input {k}")


@pytest.mark.parametrize("case", core.CASES, ids=lambda c: c.id)
def test_core_primitives(case: core.Case) -> None:
    arrays = core._inputs(case)
    _check(lambda *xs: case.fn(core.CR, *xs), arrays, tuple(range(len(arrays))), case.id)


@pytest.mark.parametrize("case", numpy_api.CASES, ids=lambda c: c.id)
def test_numpy_operations(case: numpy_api.Case) -> None:
    arrays = numpy_api._inputs(case)
    _check(lambda *xs: case.fn(numpy_api.CR, *xs), arrays, tuple(range(len(arrays))), case.id)


@pytest.mark.parametrize("case", acts.CASES, ids=acts.IDS)
def test_activations(case: acts.Activation) -> None:
    x = np.random.default_rng(5).normal(scale=2.0, size=(3, 4))
    _check(case.ours, [x], (0,), repr(case))


@pytest.mark.parametrize("case, reduction", losses.PARAMS)
def test_losses(case: losses.Loss, reduction: Any) -> None:
    args = case.make(np.random.default_rng(13))

    def fn(*a):
        return case.ours(*a, reduction=reduction)

    _check(fn, args, case.diff, f"{case.label}-{reduction}")


# The layers of issue 12, each in its forward's own terms (oracles in test_conv, test_pooling,
# test_padding, test_normalization, test_embedding, test_gather).
LAYERS = [
    ("conv1d-stride-padding", lambda x, w, b: cr.functional.conv1d(x, w, b, stride=2, padding=1),
     [(2, 3, 7), (4, 3, 3), (4,)]),
    ("conv2d-groups-dilation", lambda x, w: cr.functional.conv2d(x, w, padding=1, dilation=2, groups=2),
     [(1, 4, 6, 6), (4, 2, 2, 2)]),
    ("conv3d", lambda x, w: cr.functional.conv3d(x, w, stride=(1, 2, 1)), [(1, 2, 4, 5, 4), (3, 2, 2, 2, 2)]),
    ("max_pool2d", lambda x: cr.functional.max_pool2d(x, 2, stride=1), [(2, 3, 5, 5)]),
    ("max_pool1d-padding", lambda x: cr.functional.max_pool1d(x, 3, stride=2, padding=1), [(2, 3, 8)]),
    ("avg_pool2d", lambda x: cr.functional.avg_pool2d(x, 3, stride=2, padding=1), [(1, 2, 6, 6)]),
    ("pad-reflect", lambda x: cr.functional.pad(x, (1, 2), mode="reflect"), [(2, 3, 4)]),
    ("pad-constant", lambda x: cr.functional.pad(x, (1, 2, 0, 1)), [(2, 3, 4)]),
    ("batch_norm", lambda x, w, b: cr.functional.batch_norm(x, None, None, w, b, training=True),
     [(4, 3, 5), (3,), (3,)]),
    ("layer_norm", lambda x, w, b: cr.functional.layer_norm(x, (5,), w, b), [(4, 3, 5), (5,), (5,)]),
    ("linear", lambda x, w, b: cr.functional.linear(x, w, b), [(4, 3), (2, 3), (2,)]),
    ("embedding", lambda w: cr.functional.embedding(np.array([[0, 2, 0], [3, 3, 1]]), w), [(4, 5)]),
    ("softmax-axis0", lambda x: cr.functional.softmax(x, axis=0), [(3, 4)]),
    ("log_softmax", lambda x: cr.functional.log_softmax(x, axis=-1), [(3, 4)]),
]


@pytest.mark.parametrize("label, fn, shapes", LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layers(label: str, fn: Callable, shapes: list) -> None:
    rng = np.random.default_rng(17)
    arrays = [rng.standard_normal(s) for s in shapes]
    _check(fn, arrays, tuple(range(len(arrays))), label)
