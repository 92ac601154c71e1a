"""The backward walk's semantics: scale, reuse, accumulation, graph lifetime, grad mode,
gradient ownership and dtypes. Expected values are derived by hand in each test."""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import ops
from chainrule.autodiff import FloatingPointAnomaly

# --- scale: long chains and heavy reuse -------------------------------------------------------


def test_chain_of_100000_ops_backpropagates_without_recursion() -> None:
    n, c = 100_000, 1.000_01
    x = cr.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * c
    y.backward()
    # y = x c^n, so dy/dx = c^n (computed here in one step, not by the engine's n products).
    assert math.isclose(x.grad.item(), c ** n, rel_tol=1e-9)
    assert math.isclose(y.item(), 0.5 * c ** n, rel_tol=1e-9)


def test_long_chain_with_retained_graph_is_freed_and_differentiable_twice() -> None:
    x = cr.tensor([1.0, -2.0], requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y + 1.0
    (dx,) = cr.grad(y.sum(), [x], retain_graph=True)
    (dx2,) = cr.grad(y.sum(), [x])
    np.testing.assert_array_equal(dx.data, [1.0, 1.0])
    np.testing.assert_array_equal(dx2.data, [1.0, 1.0])
    del y  # dropping a deep retained graph must not overflow the C stack


@pytest.fixture
def counting_identity() -> Iterator[tuple[ops.Primitive, list[int]]]:
    """A throwaway primitive whose VJP counts its calls (removed from the registry after)."""
    calls = [0]

    def vjp(g, ans, a):
        calls[0] += 1
        return g

    name = "test_autodiff.counting_identity"
    prim = ops.primitive(name, lambda a: a.copy(), vjp)
    try:
        yield prim, calls
    finally:
        del ops.PRIMITIVES[name]


def test_node_reused_many_times_receives_the_sum_once(counting_identity) -> None:
    from chainrule.tensor import apply

    prim, calls = counting_identity
    x = cr.tensor([0.5, -1.5], requires_grad=True)
    h = apply(prim, x)
    total = h
    for k in range(1, 1000):
        total = total + h * float(k)
    total.sum().backward()
    # d/dh of h (1 + 1 + 2 + ... + 999) = 1 + 999*1000/2, once per element.
    np.testing.assert_array_equal(x.grad, [1 + 999 * 1000 / 2] * 2)
    assert calls[0] == 1


def test_diamond_layers_are_linear_not_exponential(counting_identity) -> None:
    from chainrule.tensor import apply

    prim, calls = counting_identity
    layers, a, b = 60, 0.3, 0.8
    x = cr.tensor(1.25, requires_grad=True)
    y = x
    for _ in range(layers):
        y = apply(prim, y)
        y = y * a + y * b  # two paths per layer: 2**60 paths in all
    y.backward()
    # y = x (a + b)^layers, so dy/dx = (a + b)^layers.
    assert math.isclose(x.grad.item(), (a + b) ** layers, rel_tol=1e-12)
    assert calls[0] == layers


# --- accumulation and graph lifetime -----------------------------------------------------

UNARY_GRAPHS: dict[str, Callable[[cr.Tensor], cr.Tensor]] = {
    "square-sum": lambda x: (x * x).sum(),
    "exp-mean": lambda x: cr.exp(x).mean(),
    "reuse": lambda x: (x * 3.0 + x / 2.0 - x ** 2).sum(),
    "max": lambda x: (x.max() * x).sum(),
    "index": lambda x: x.reshape(-1)[np.array([0, 0, -1])].sum() if x.size else x.sum(),
}


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4),
       graph=st.sampled_from(sorted(UNARY_GRAPHS)), seed=st.integers(0, 2**32 - 1))
def test_two_backward_calls_accumulate_exactly_twice(shape: tuple, graph: str, seed: int) -> None:
    data = np.random.default_rng(seed).standard_normal(shape)
    once = cr.tensor(data, requires_grad=True)
    UNARY_GRAPHS[graph](once).backward()
    twice = cr.tensor(data, requires_grad=True)
    out = UNARY_GRAPHS[graph](twice)
    out.backward(retain_graph=True)
    out.backward()
    assert twice.grad.shape == shape
    np.testing.assert_array_equal(twice.grad, 2 * once.grad)  # g + g == 2g exactly


def test_grad_accumulates_across_graphs_until_cleared() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0 + 2.0, 3.0 + 4.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_second_backward_through_released_graph_is_a_clear_error() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    before = x.grad.copy()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, before)  # the failed call touched nothing


def test_released_shared_subgraph_is_detected_from_another_output() -> None:
    x = cr.tensor(2.0, requires_grad=True)
    h = x * x
    (h * 2.0).backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 3.0).backward()
    assert x.grad.item() == 4.0 * 2.0  # only the first call's d(2x^2)/dx = 4x


def test_retain_graph_allows_a_second_backward() -> None:
    x = cr.tensor([1.0, -3.0], requires_grad=True)
    y = (x ** 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * 3 * np.array([1.0, 9.0]))


def test_backward_on_non_scalar_needs_a_gradient() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))
    (x * 2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_backward_on_a_one_element_tensor_of_any_rank() -> None:
    x = cr.tensor([[3.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[6.0]])


def test_backward_without_a_graph_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor(1.0).backward()


def test_backward_on_a_leaf_seeds_its_own_grad() -> None:
    x = cr.tensor(4.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


# --- gradient mode -------------------------------------------------------------------------

def test_no_grad_context_records_nothing() -> None:
    x = cr.tensor(1.0, requires_grad=True)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 2.0
    assert cr.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y.op is None


@pytest.mark.parametrize("bare", [False, True], ids=["@no_grad()", "@no_grad"])
def test_no_grad_decorator_is_reentrant(bare: bool) -> None:
    def depth_first(x: cr.Tensor, depth: int) -> list[bool]:
        seen = [cr.is_grad_enabled(), (x * 1.0).requires_grad]
        return seen + (decorated(x, depth - 1) if depth else [])

    decorated = cr.no_grad(depth_first) if bare else cr.no_grad()(depth_first)
    x = cr.tensor(1.0, requires_grad=True)
    assert decorated(x, 3) == [False] * 8  # the same decorator, entered four times nested
    assert cr.is_grad_enabled()
    assert decorated.__name__ == "depth_first"


def test_no_grad_nesting_and_enable_grad() -> None:
    x = cr.tensor(1.0, requires_grad=True)
    ctx = cr.no_grad()
    with ctx:
        with ctx:  # one instance entered twice
            with cr.enable_grad():
                assert (x * 2.0).requires_grad
            assert not cr.is_grad_enabled()
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()


def test_grad_mode_is_per_thread() -> None:
    import threading

    inside, other = threading.Event(), []

    def worker() -> None:
        inside.wait()
        other.append(cr.is_grad_enabled())

    thread = threading.Thread(target=worker)
    thread.start()
    with cr.no_grad():
        inside.set()
        thread.join()
    assert other == [True]


def test_no_grad_restores_the_mode_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError), cr.no_grad():
        1 / 0  # noqa: B018
    assert cr.is_grad_enabled()


def test_detach_shares_data_and_cuts_the_graph() -> None:
    x = cr.tensor([2.0, 3.0], requires_grad=True)
    d = (x * 1.0).detach()
    assert not d.requires_grad and d.is_leaf
    (x * x.detach()).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])  # d(x c)/dx = c, not 2x
    assert np.shares_memory(x.detach().data, x.data)


def test_retain_grad_keeps_an_intermediate_gradient() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3.0).retain_grad()
    plain = x * 5.0
    (h * h + plain).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * np.array([3.0, 6.0]))
    assert plain.grad is None


# --- grad(): gradients of intermediates, .grad untouched -------------------------------------

def test_grad_wrt_intermediates_and_leaves() -> None:
    x = cr.tensor([0.5, -1.0], requires_grad=True)
    w = cr.tensor([2.0, 3.0], requires_grad=True)
    h = x * w
    out = cr.exp(h).sum()
    dh, dx, dw = cr.grad(out, [h, x, w])
    e = np.exp(np.array([1.0, -3.0]))
    np.testing.assert_allclose(dh.data, e, rtol=1e-15)
    np.testing.assert_allclose(dx.data, e * [2.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(dw.data, e * [0.5, -1.0], rtol=1e-15)
    assert x.grad is None and w.grad is None and h.grad is None
    assert not dx.requires_grad


def test_grad_errors_and_options() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    unused = cr.tensor(1.0, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(ValueError, match="allow_unused"):
        cr.grad(y, [unused], retain_graph=True)
    assert cr.grad(y, [x, unused], retain_graph=True, allow_unused=True)[1] is None
    with pytest.raises(ValueError, match="require grad"):
        cr.grad(y, [cr.tensor(1.0)], retain_graph=True)
    (single,) = cr.grad(y, x, retain_graph=True)  # one tensor, not a sequence of rows
    np.testing.assert_array_equal(single.data, [2.0, 4.0])
    (seeded,) = cr.grad(x * 2.0, [x], grad_output=np.array([1.0, -1.0]))
    np.testing.assert_array_equal(seeded.data, [2.0, -2.0])
    with pytest.raises(ValueError, match="scalar"):
        cr.grad(x * 2.0, [x])


# --- gradient ownership: no .grad aliases another, the seed, or an internal buffer ---------

def _cast_graph(a: cr.Tensor, b: cr.Tensor) -> cr.Tensor:
    h = (a + 0.0).retain_grad()  # a is float32 here
    # float32 * float64: the gradient reaching h is cast back to float32, a new array that
    # h keeps as h.grad and that add's VJP hands on, unchanged, towards a.
    return h * b


OWNERSHIP_GRAPHS: dict[str, tuple[Callable[[cr.Tensor, cr.Tensor], cr.Tensor], type]] = {
    "add": (lambda a, b: a + b, np.float64),
    "sub": (lambda a, b: a - b, np.float64),
    "retained-add": (lambda a, b: (a + b).retain_grad() + b, np.float64),
    "reshape": (lambda a, b: a.reshape(6).reshape(2, 3) + b, np.float64),
    "broadcast-views": (lambda a, b: cr.broadcast_to(a.sum(), (2, 3)) + b.sum(axis=0), np.float64),
    "concatenate-views": (lambda a, b: cr.concatenate([a, b], axis=0)[1:3], np.float64),
    "stack": (lambda a, b: cr.stack([a, b]).sum(axis=0), np.float64),
    "dtype-cast": (_cast_graph, np.float32),
    "dtype-cast-leaf": (lambda a, b: a * b + a, np.float32),
    "same-leaf-twice": (lambda a, b: a + a + b, np.float64),
}


@pytest.mark.parametrize("build,a_dtype", OWNERSHIP_GRAPHS.values(), ids=OWNERSHIP_GRAPHS.keys())
def test_gradients_never_alias(build: Callable, a_dtype: type) -> None:
    a = cr.tensor(np.arange(6.0, dtype=a_dtype).reshape(2, 3), requires_grad=True)
    b = cr.tensor(np.ones((2, 3)), requires_grad=True)
    retained: list[cr.Tensor] = []
    out = build(a, b)
    retained += [t for t in _graph_tensors(out) if t._retains_grad]
    seed = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(seed, retain_graph=True)
    arrays = [a.grad, b.grad] + [t.grad for t in retained]
    for x, y in itertools.combinations(arrays, 2):
        assert not np.shares_memory(x, y)
    for g in arrays:
        assert g.flags.writeable and not np.shares_memory(g, seed)
        for t in (a, b, out):
            assert not np.shares_memory(g, t.data)
    # Mutating one gradient in place leaves every other untouched, then a second backward
    # accumulates into each separately.
    copies = [g.copy() for g in arrays]
    a.grad += 100.0
    for g, c in zip(arrays[1:], copies[1:], strict=True):
        np.testing.assert_array_equal(g, c)
    out.backward(seed)
    np.testing.assert_array_equal(b.grad, 2 * copies[1])


def _graph_tensors(t: cr.Tensor) -> list[cr.Tensor]:
    from chainrule.autodiff import topological_order
    return topological_order(t)


def test_add_then_mutate_one_leaf_grad() -> None:
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    g = np.array([0.5, -0.5])
    (a + b).backward(g)
    a.grad += 1.0
    g[:] = 7.0
    np.testing.assert_array_equal(b.grad, [0.5, -0.5])
    np.testing.assert_array_equal(a.grad, [1.5, 0.5])


def test_grad_results_are_independent_arrays() -> None:
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    h = a + b
    dh, da, db = cr.grad(h.sum(), [h, a, b])
    for x, y in itertools.combinations([dh.data, da.data, db.data], 2):
        assert not np.shares_memory(x, y)


# --- dtypes --------------------------------------------------------------------------------

def test_gradient_is_cast_to_the_leaf_dtype() -> None:
    x = cr.tensor(np.array([1.5, -2.0], np.float32), requires_grad=True)
    w = cr.tensor(np.array([1 / 3, 0.1]), requires_grad=True)
    out = x * w
    assert out.dtype == np.float64  # NumPy's promotion for float32 * float64
    out.backward(np.array([1.0, 1.0]))
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, np.array([1 / 3, 0.1]).astype(np.float32))
    np.testing.assert_array_equal(w.grad, np.array([1.5, -2.0]))


def test_float32_network_stays_float32_end_to_end() -> None:
    rng = np.random.default_rng(3)
    x = cr.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = cr.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    b = cr.tensor(np.zeros(2, np.float32), requires_grad=True)
    z = x @ w + b
    h = cr.maximum(z, 0.0) + 0.01 * cr.minimum(z, 0.0)
    loss = ((h - np.float64(0.5)) ** 2).mean() + 1e-3 * cr.sqrt((w * w).sum() + 1e-8)
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_integer_inputs_are_promoted_as_numpy_does() -> None:
    n = cr.tensor([1, 2, 3])
    w = cr.tensor([0.5, 0.25, 2.0], requires_grad=True)
    out = n * w
    assert out.dtype == np.result_type(np.int64, np.float64)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    assert (n / 2).dtype == np.float64 and (n + 1).dtype == n.dtype


# --- anomaly detection ------------------------------------------------------------------------

def test_detect_anomaly_names_the_op_and_the_user_line() -> None:
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointAnomaly, match=r"(?s)'log'.*test_autodiff"), \
            np.errstate(invalid="ignore"):
        cr.log(x)
    # sqrt(0) is finite; its gradient 0.5 / sqrt(0) is not, and the backward pass says where.
    with cr.detect_anomaly(), pytest.raises(FloatingPointAnomaly, match="backward.*'sqrt'"), \
            np.errstate(divide="ignore"):
        cr.sqrt(x * 0.0).sum().backward()
