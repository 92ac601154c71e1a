"""Tensor: creation, attributes, NumPy interplay, dtype rules and bad input.

Expected values come from NumPy itself (the forward of every op is NumPy's), written out in
each test."""
from __future__ import annotations

import operator

import numpy as np
import pytest

import chainrule as cr

# --- creation ------------------------------------------------------------------------------


def test_tensor_copies_and_infers_dtype_like_numpy() -> None:
    source = np.array([1.0, 2.0], np.float32)
    t = cr.tensor(source, name="t")
    source[0] = 99.0
    assert t.data[0] == 1.0 and t.dtype == np.float32 and t.name == "t"
    assert cr.tensor(1.5).dtype == np.float64 and cr.tensor(1.5).shape == ()
    assert cr.tensor([1, 2]).dtype == np.array([1, 2]).dtype
    assert cr.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert cr.tensor(cr.tensor([3.0])).data.tolist() == [3.0]


def test_from_numpy_shares_memory() -> None:
    a = np.zeros(3)
    t = cr.from_numpy(a, requires_grad=True)
    a[1] = 5.0
    assert t.data[1] == 5.0 and t.requires_grad
    with pytest.raises(TypeError, match="np.ndarray"):
        cr.from_numpy([1.0, 2.0])


@pytest.mark.parametrize("made,expected", [
    (lambda: cr.zeros(2, 3), np.zeros((2, 3))),
    (lambda: cr.zeros((2, 3), dtype=np.float32), np.zeros((2, 3), np.float32)),
    (lambda: cr.ones(4), np.ones(4)),
    (lambda: cr.full((2,), 7.5), np.full((2,), 7.5)),
    (lambda: cr.full(3, 2, dtype=np.float32), np.full(3, 2, np.float32)),
    (lambda: cr.zeros_like(cr.ones(2, 2)), np.zeros((2, 2))),
    (lambda: cr.ones_like(np.zeros(3, np.float32)), np.ones(3, np.float32)),
    (lambda: cr.arange(5), np.arange(5)),
    (lambda: cr.arange(1.0, 2.0, 0.25), np.arange(1.0, 2.0, 0.25)),
    (lambda: cr.randn(2, 3, rng=4), np.random.default_rng(4).standard_normal((2, 3))),
    (lambda: cr.randn(3, rng=np.random.default_rng(9), dtype=np.float32),
     np.random.default_rng(9).standard_normal(3).astype(np.float32)),
    (lambda: cr.rand(2, 2, rng=1), np.random.default_rng(1).random((2, 2))),
], ids=["zeros", "zeros-f32", "ones", "full", "full-f32", "zeros_like", "ones_like",
        "arange", "arange-float", "randn-seed", "randn-generator-f32", "rand-seed"])
def test_creation_matches_numpy(made, expected: np.ndarray) -> None:
    t = made()
    assert isinstance(t, cr.Tensor) and t.dtype == expected.dtype
    np.testing.assert_array_equal(t.data, expected)


def test_creation_with_requires_grad() -> None:
    assert cr.randn(2, rng=0, requires_grad=True).requires_grad
    assert cr.zeros(2, requires_grad=True).requires_grad
    assert 0.0 <= cr.rand(100, rng=2).data.min() and cr.rand(100, rng=2).data.max() < 1.0


@pytest.mark.parametrize("bad,error,match", [
    (lambda: cr.tensor("abc"), TypeError, "numeric"),
    (lambda: cr.tensor(None), TypeError, "numeric"),
    (lambda: cr.tensor([1 + 2j]), TypeError, "numeric"),
    (lambda: cr.tensor([[1.0], [1.0, 2.0]]), TypeError, "array-like"),
    (lambda: cr.zeros(-1), ValueError, "non-negative"),
    (lambda: cr.ones(2.5), ValueError, "integers"),
    (lambda: cr.randn(2, rng="seed"), TypeError, "Generator"),
    (lambda: cr.clip(cr.ones(2)), ValueError, "min, max"),
    (lambda: cr.concatenate([]), ValueError, "at least one"),
    (lambda: cr.stack([]), ValueError, "at least one"),
], ids=["str", "None", "complex", "ragged", "negative-shape", "float-shape", "bad-rng",
        "clip-no-bounds", "concatenate-empty", "stack-empty"])
def test_bad_input_is_a_clear_error(bad, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        bad()


@pytest.mark.parametrize("make", [
    lambda: cr.tensor([1, 2], requires_grad=True),
    lambda: cr.tensor([True], requires_grad=True),
    lambda: cr.zeros(2, dtype=np.int32, requires_grad=True),
    lambda: cr.arange(3, requires_grad=True),
    lambda: cr.tensor([1, 2]).requires_grad_(),
], ids=["int-list", "bool", "zeros-int32", "arange-int", "requires_grad_"])
def test_requires_grad_on_integer_tensor_is_a_type_error(make) -> None:
    with pytest.raises(TypeError, match="floating-point"):
        make()


def test_requires_grad_cannot_be_turned_off_on_a_non_leaf() -> None:
    y = cr.tensor(1.0, requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="detach"):
        y.requires_grad_(False)


# --- attributes and conversions -------------------------------------------------------------

def test_attributes() -> None:
    t = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="w")
    assert (t.shape, t.ndim, t.dtype, t.size, len(t)) == ((2, 3), 2, np.float64, 6, 2)
    assert t.is_leaf and t.op is None and t.grad is None
    assert t.numpy() is t.data and t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert cr.tensor(2.5).item() == 2.5 and float(cr.tensor(2.5)) == 2.5 and int(cr.tensor(3.0)) == 3
    y = t * 2.0
    assert y.op == "mul" and not y.is_leaf and y.requires_grad
    assert {t, y} == {y, t}  # hashed by identity, though == is elementwise


def test_numpy_conversion_and_iteration() -> None:
    t = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert np.asarray(t) is t.data
    copy = np.array(t, copy=True)
    copy[0, 0] = -1.0
    assert t.data[0, 0] == 1.0
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    rows = list(t)
    assert len(rows) == 2 and all(isinstance(r, cr.Tensor) for r in rows)
    np.testing.assert_array_equal(rows[1].data, [3.0, 4.0])
    with pytest.raises(TypeError, match="0-d"):
        iter(cr.tensor(1.0))


def test_repr_says_dtype_op_and_name() -> None:
    assert "dtype=float32" in repr(cr.tensor([1.0], dtype=np.float32))
    assert "requires_grad=True" in repr(cr.tensor([1.0], requires_grad=True, name="b"))
    assert "name='b'" in repr(cr.tensor([1.0], name="b"))
    assert "op=add" in repr(cr.tensor([1.0], requires_grad=True) + 1.0)


# --- operators: scalars and arrays on either side, NumPy's results and dtypes ---------------

BINARY_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "**": operator.pow}
SCALARS = {"int": 2, "float": 2.5, "np.float64": np.float64(2.5), "np.float32": np.float32(2.5),
           "np.int64": np.int64(2), "bool": True}


@pytest.mark.parametrize("op", BINARY_OPS, ids=BINARY_OPS.keys())
@pytest.mark.parametrize("scalar", SCALARS.values(), ids=SCALARS.keys())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_on_either_side_keeps_the_tensor_dtype(op: str, scalar, dtype: type) -> None:
    data = np.array([0.5, 1.5, 3.0], dtype)
    python_scalar = scalar.item() if isinstance(scalar, np.generic) else scalar
    fn = BINARY_OPS[op]
    for got, want in [(fn(cr.tensor(data), scalar), fn(data, python_scalar)),
                      (fn(scalar, cr.tensor(data)), fn(python_scalar, data))]:
        assert isinstance(got, cr.Tensor)
        assert got.dtype == dtype, f"{scalar!r} {op} {dtype.__name__} gave {got.dtype}"
        np.testing.assert_array_equal(got.data, want)


@pytest.mark.parametrize("op", BINARY_OPS, ids=BINARY_OPS.keys())
def test_ndarray_on_either_side_follows_numpy_promotion(op: str) -> None:
    fn = BINARY_OPS[op]
    t32, a64 = np.array([1.0, 2.0], np.float32), np.array([0.5, 3.0])
    left, right = fn(a64, cr.tensor(t32)), fn(cr.tensor(t32), a64)
    assert isinstance(left, cr.Tensor) and isinstance(right, cr.Tensor)
    np.testing.assert_array_equal(left.data, fn(a64, t32))
    np.testing.assert_array_equal(right.data, fn(t32, a64))
    assert left.dtype == fn(a64, t32).dtype == np.float64


def test_integer_tensor_arithmetic_promotes_like_numpy() -> None:
    n = np.array([1, 2, 3])
    for got, want in [(cr.tensor(n) + 0.5, n + 0.5), (cr.tensor(n) * 2, n * 2),
                      (cr.tensor(n) / 2, n / 2), (cr.tensor(n) ** 2, n ** 2),
                      (cr.tensor(n) + cr.tensor(np.float32(1.0)), n + np.array(np.float32(1.0)))]:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.data, want)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4,)), ((4,), (4, 2)), ((3, 4), (4,)),
                                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3))])
def test_matmul_forward_has_numpy_semantics(sa: tuple, sb: tuple) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    for got in (cr.tensor(a) @ cr.tensor(b), cr.matmul(a, b), a @ cr.tensor(b), cr.tensor(a).matmul(b)):
        assert got.shape == np.matmul(a, b).shape
        np.testing.assert_allclose(got.data, np.matmul(a, b), rtol=1e-14)
    with pytest.raises(ValueError):
        cr.tensor(np.ones(3)) @ cr.tensor(np.ones(4))


def test_unary_operators_and_functions_accept_plain_arrays() -> None:
    x = np.array([-1.0, 0.25])
    t = cr.tensor(x)
    assert +t is t
    np.testing.assert_array_equal((-t).data, -x)
    np.testing.assert_array_equal(abs(t).data, np.abs(x))
    for fn, ref in [(cr.exp, np.exp), (cr.abs, np.abs)]:
        got = fn(x)
        assert isinstance(got, cr.Tensor)
        np.testing.assert_array_equal(got.data, ref(x))


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge, operator.eq,
                                operator.ne], ids=lambda f: f.__name__)
def test_comparisons_give_boolean_tensors_without_gradient(op) -> None:
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    other = np.array([2.0, 2.0, 2.0])
    for got, want in [(op(x, 2.0), op(x.data, 2.0)), (op(x, cr.tensor(other)), op(x.data, other)),
                      (op(other, x), op(other, x.data))]:
        assert isinstance(got, cr.Tensor) and got.dtype == np.bool_
        assert not got.requires_grad and got.is_leaf
        np.testing.assert_array_equal(got.data, want)


def test_comparison_drives_where_and_indexing() -> None:
    x = cr.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    y = cr.where(x > 0, x, x * 0.1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [0.1, 1.0, 0.1], rtol=1e-15)
    np.testing.assert_array_equal(x[x > 0].data, [2.0])


def test_shape_methods_match_numpy() -> None:
    a = np.arange(24.0).reshape(2, 3, 4)
    t = cr.tensor(a)
    cases = [(t.reshape(6, 4), a.reshape(6, 4)), (t.reshape((4, 6)), a.reshape(4, 6)),
             (cr.reshape(t, [24]), a.reshape(24)), (t.transpose(2, 0, 1), a.transpose(2, 0, 1)),
             (t.transpose((1, 0, 2)), a.transpose(1, 0, 2)), (t.T, a.T),
             (cr.transpose(t, [0, 2, 1]), np.transpose(a, (0, 2, 1))),
             (t.swapaxes(0, 2), a.swapaxes(0, 2)), (t.expand_dims([0, -1]), np.expand_dims(a, (0, -1))),
             (cr.squeeze(t[:1]), np.squeeze(a[:1])), (t.sum(axis=[0, 2]), a.sum(axis=(0, 2))),
             (t.mean(axis=-1, keepdims=True), a.mean(axis=-1, keepdims=True)),
             (t.max(axis=1), a.max(axis=1)), (cr.min(t), a.min()),
             (t.clip(3.0, 9.5), np.clip(a, 3.0, 9.5)), (t.maximum(5.0), np.maximum(a, 5.0)),
             (t.minimum(a[::-1]), np.minimum(a, a[::-1])),
             (cr.concatenate([t, a], axis=1), np.concatenate([a, a], axis=1)),
             (cr.stack([t, t], axis=-1), np.stack([a, a], axis=-1)),
             (t[0, ..., [1, 1]], a[0, ..., [1, 1]]), (t[cr.tensor([1, 0])], a[[1, 0]])]
    for got, want in cases:
        assert isinstance(got, cr.Tensor)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.data, want)


def test_astype() -> None:
    x = cr.tensor([1.7, -2.2], requires_grad=True)
    as_int = x.astype(np.int64)
    assert as_int.dtype == np.int64 and not as_int.requires_grad  # integers carry no gradient
    np.testing.assert_array_equal(as_int.data, [1, -2])
    as_f32 = x.astype("float32")
    assert as_f32.dtype == np.float32 and as_f32.op == "astype"


def test_clip_keeps_float32_with_numpy_scalar_bounds() -> None:
    x = cr.tensor(np.array([-2.0, 0.5, 2.0], np.float32))
    got = cr.clip(x, np.float64(-1.0), np.float64(1.0))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, np.array([-1.0, 0.5, 1.0], np.float32))


# --- lists and tuples holding tensors: stacked differentiably, never dropped -------------------

def test_list_of_tensors_in_an_op_is_stacked_differentiably_as_autograd() -> None:
    import autograd
    import autograd.numpy as anp

    x0 = np.array([0.5, -1.0, 2.0])
    cases = [
        (lambda x: cr.mean([x, 2 * x]), lambda x: anp.mean(anp.array([x, 2 * x]))),
        (lambda x: (x + [x]).sum(), lambda x: anp.sum(x + anp.array([x]))),
        (lambda x: (x * (x, 3 * x)).sum(), lambda x: anp.sum(x * anp.array([x, 3 * x]))),
        (lambda x: cr.sum([[x[0], x[1]], [x[2], 1.0]]),
         lambda x: anp.sum(anp.array([[x[0], x[1]], [x[2], 1.0]]))),
        (lambda x: cr.maximum([x[0], x[1]], 0.0).sum(),
         lambda x: anp.sum(anp.maximum(anp.array([x[0], x[1]]), 0.0))),
    ]
    for ours, theirs in cases:
        t = cr.tensor(x0, requires_grad=True)
        ours(t).backward()
        np.testing.assert_allclose(t.grad, autograd.grad(theirs)(x0), rtol=1e-15)


def test_tensor_of_a_list_holding_a_tensor_that_requires_grad_is_a_type_error() -> None:
    x = cr.tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match="cr.stack"):
        cr.tensor([x, 2 * x])
    with pytest.raises(TypeError, match="cr.stack"):
        cr.Tensor([[x]])
    np.testing.assert_array_equal(cr.tensor([cr.tensor(1.0), 2.0]).data, [1.0, 2.0])  # no grad: a copy
    np.testing.assert_array_equal(cr.stack([x, 2 * x]).data, [1.0, 2.0])


# --- NumPy's functions on Tensors (NEP 13/18 dispatch) ------------------------------------------

def test_numpy_functions_and_ufuncs_dispatch_to_chainrule() -> None:
    x = cr.tensor([1.0, 4.0], requires_grad=True)
    outs = [np.exp(x), np.log(x), np.sqrt(x), np.abs(-x), np.maximum(x, 2.0), np.sum(x * x),
            np.mean(x), np.max(x), np.where(np.array([True, False]), x, 0.0), np.clip(x, 0, 2),
            np.concatenate([x, x]), np.stack([x, x]), np.reshape(x, (2, 1)), np.transpose(x),
            np.array([1.0, 2.0]) + x, np.array([1.0, 2.0]) @ x, np.power(x, 2), np.negative(x)]
    for out in outs:
        assert isinstance(out, cr.Tensor) and out.requires_grad, out
    np.sum(np.exp(x) + np.array([1.0, 2.0]) * x).backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 4.0]) + [1.0, 2.0])


def test_numpy_queries_and_comparisons_on_tensors() -> None:
    x = cr.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
    assert np.result_type(x, 1.0) == np.float32
    less = np.array([[0.0, 2.0, 1.0]]) < x
    assert isinstance(less, cr.Tensor) and not less.requires_grad
    np.testing.assert_array_equal(less.data, [[True, False, False]] * 2)
    assert isinstance(np.zeros_like(x), cr.Tensor) and not np.zeros_like(x).requires_grad


def test_numpy_function_without_a_chainrule_version_is_a_type_error_naming_it() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="numpy.unwrap is not supported"):
        np.unwrap(x)
    with pytest.raises(TypeError, match="numpy.spacing is not supported"):
        np.spacing(x)
    with pytest.raises(TypeError, match="numpy.add.reduce is not supported"):
        np.add.reduce(x)


def test_ndarray_on_the_left_keeps_numpy_dtype_rules() -> None:
    t32 = cr.tensor(np.array([1.0, 2.0], np.float32))
    assert (np.float64(2.0) * t32).dtype == np.float32  # a scalar never upcasts (as PyTorch)
    assert (np.array([1.0, 2.0]) + t32).dtype == np.float64  # an array promotes (as NumPy)
    assert (np.array([1, 2]) * cr.tensor([1, 2])).dtype == np.int64
