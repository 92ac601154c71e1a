"""Every core primitive (src/chainrule/ops.py) against three independent oracles.

Each case is one computation written once in NumPy spelling, ``fn(L, *xs)``, where ``L`` is a
namespace of functions: chainrule's, HIPS autograd's ``autograd.numpy``, or a thin PyTorch
adapter. The same case is checked by central finite differences (``gradcheck``), by
autograd's VJP and by torch's, over shapes that include broadcasting and 0-d tensors, and
once more in float32 to show that nothing is silently upcast, forward or backward.
"""
from __future__ import annotations

import ast
import inspect
import types
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import ops
from chainrule.autodiff import topological_order

NUMPY_NAMES = ("exp", "log", "sqrt", "abs", "maximum", "minimum", "where", "clip", "matmul",
               "sum", "mean", "max", "min", "reshape", "transpose", "swapaxes", "expand_dims",
               "squeeze", "broadcast_to", "concatenate", "stack")


def _identity(value: Any) -> Any:
    return value


def _selection(index: Any, shape: tuple) -> np.ndarray:
    """The 0/1 matrix M with M @ a.ravel() == a[index].ravel(): built by indexing positions,
    so ``M.T @ g`` is the adjoint of indexing (untake) without np.add.at."""
    positions = np.arange(int(np.prod(shape))).reshape(shape)[index].ravel()
    return np.eye(int(np.prod(shape)))[positions]


def _cr_untake(g: Any, index: Any, shape: tuple) -> Any:
    return ops.untake(g, index=index, shape=shape)


def _cr_setitem(a: Any, index: Any, v: Any) -> Any:
    out = a * 1.0  # a non-leaf copy: in-place on a leaf that requires grad is an error
    out[index] = v
    return out


CR_EXTRA = {"untake": _cr_untake, "setitem": _cr_setitem}


CR = types.SimpleNamespace(**{n: getattr(cr, n) for n in NUMPY_NAMES}, const=_identity, **CR_EXTRA)
AG = types.SimpleNamespace(**{n: getattr(anp, n) for n in NUMPY_NAMES}, const=_identity,
                           untake=lambda g, index, shape: anp.reshape(
                               anp.dot(_selection(index, shape).T, anp.ravel(g)), shape))

# autograd's VJPs of broadcast_to (new leading axes) and where (broadcast branches) do not
# reduce back to the input's shape; these spellings compute the same maps and do.
AG.broadcast_to = lambda x, shape: x + np.zeros(shape)
AG.where = lambda c, a, b: c * a + np.logical_not(c) * b


def _float32_const(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32)
    return value


CR32 = types.SimpleNamespace(**vars(CR))
CR32.const = _float32_const


def torch_namespace(torch: Any) -> types.SimpleNamespace:
    """PyTorch under NumPy's names and argument conventions (names only; same semantics)."""

    def const(value: Any) -> Any:
        return torch.from_numpy(value) if isinstance(value, np.ndarray) else value

    def reduction(fn: Callable) -> Callable:
        def reduce(x, axis=None, keepdims=False):
            if axis is None:
                out = fn(x)
                return out.reshape((1,) * x.ndim) if keepdims else out
            return fn(x, dim=axis, keepdim=keepdims)
        return reduce

    def expand_dims(x, axis):
        axes = (axis,) if isinstance(axis, int) else axis
        ndim = x.ndim + len(axes)
        for a in sorted(a % ndim for a in axes):
            x = x.unsqueeze(a)
        return x

    def squeeze(x, axis=None):
        return x.squeeze() if axis is None else x.squeeze(axis)

    def clip(x, lo=None, hi=None):
        if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):  # clamp takes no mix
            lo, hi = (None if v is None else torch.as_tensor(v, dtype=x.dtype) for v in (lo, hi))
        return torch.clamp(x, lo, hi)

    def untake(g, index, shape):
        return (torch.from_numpy(_selection(index, shape)).T @ g.reshape(-1)).reshape(shape)

    return types.SimpleNamespace(
        untake=untake, setitem=_cr_setitem,
        exp=torch.exp, log=torch.log, sqrt=torch.sqrt, abs=torch.abs,
        maximum=lambda a, b: torch.maximum(*_torch_pair(torch, a, b)),
        minimum=lambda a, b: torch.minimum(*_torch_pair(torch, a, b)),
        where=lambda c, a, b: torch.where(const(c), a, b), clip=clip, matmul=torch.matmul,
        sum=reduction(torch.sum), mean=reduction(torch.mean), max=reduction(torch.amax),
        min=reduction(torch.amin), reshape=torch.reshape,
        transpose=lambda x, axes=None: x.permute(*(axes or reversed(range(x.ndim)))),
        swapaxes=torch.swapaxes, expand_dims=expand_dims, squeeze=squeeze,
        broadcast_to=torch.broadcast_to,
        concatenate=lambda xs, axis=0: torch.cat(list(xs), dim=axis),
        stack=lambda xs, axis=0: torch.stack(list(xs), dim=axis), const=const)


def _torch_pair(torch: Any, a: Any, b: Any) -> tuple:
    like = a if isinstance(a, torch.Tensor) else b
    return tuple(x if isinstance(x, torch.Tensor) else torch.tensor(x, dtype=like.dtype)
                 for x in (a, b))


class Case(NamedTuple):
    op: str  # the primitive this case exercises (checked against the recorded graph)
    label: str
    fn: Callable[..., Any]  # fn(L, *inputs)
    shapes: tuple  # one shape per differentiable input
    domains: tuple = ()  # per input: "real" (default), "positive" or "nonzero"
    oracles: tuple = ("autograd", "torch")

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}"


BROADCAST_PAIRS = [((), ()), ((3,), ()), ((), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,)),
                   ((2, 1, 4), (3, 1)), ((1, 3), (2, 1))]
UNARY_SHAPES = [(), (3,), (2, 3, 4)]
REDUCTIONS = [((), None, False), ((4,), None, False), ((2, 3, 4), None, True),
              ((2, 3, 4), 1, False), ((2, 3, 4), -1, True), ((2, 3, 4), (0, 2), False)]

_fixed = np.random.default_rng(7)
COND_23 = _fixed.random((2, 3)) > 0.5
COND_13 = np.array([[True, False, True]])
LOWER_3 = np.array([-0.5, 0.0, -1.0])
LOWER_23 = np.array([[-0.5, 0.0, -1.0], [0.2, -0.2, -2.0]])
EXPONENTS = np.array([0.0, 1.0, 2.5])
ROWS_REPEATED = np.array([0, 2, 0, 0, 3])
ROWS, COLS = np.array([1, 1, 3, 0, 1]), np.array([4, 4, 0, 2, 4])  # (1, 4) three times
MASK_45 = _fixed.random((4, 5)) > 0.4
ROW_MASK = np.array([True, False, True, True])


def _binary_cases() -> list[Case]:
    cases = []
    ops_ = [("add", lambda L, a, b: a + b, ("real", "real")),
            ("sub", lambda L, a, b: a - b, ("real", "real")),
            ("mul", lambda L, a, b: a * b, ("real", "real")),
            ("div", lambda L, a, b: a / b, ("real", "nonzero")),
            ("pow", lambda L, a, b: a ** b, ("positive", "real")),
            ("maximum", lambda L, a, b: L.maximum(a, b), ("real", "real")),
            ("minimum", lambda L, a, b: L.minimum(a, b), ("real", "real"))]
    for op, fn, domains in ops_:
        for sa, sb in BROADCAST_PAIRS:
            cases.append(Case(op, f"{sa}x{sb}", fn, (sa, sb), domains))
    return cases


def _scalar_cases() -> list[Case]:
    """Python and NumPy scalars on either side, and constants that are arrays."""
    f64 = np.float64
    c = [("add", "tensor+2.5", lambda L, a: a + 2.5, ()),
         ("add", "2.5+tensor", lambda L, a: 2.5 + a, ()),
         ("add", "np.float64+tensor", lambda L, a: f64(1.5) + a, ()),
         ("sub", "tensor-np.float64", lambda L, a: a - f64(1.5), ()),
         ("sub", "1.5-tensor", lambda L, a: 1.5 - a, ()),
         ("mul", "3*tensor", lambda L, a: 3 * a, ()),
         ("mul", "tensor*np.float64", lambda L, a: a * f64(-0.75), ()),
         ("div", "tensor/4", lambda L, a: a / 4.0, ()),
         ("div", "4/tensor", lambda L, a: 4.0 / a, ("nonzero",)),
         ("div", "np.float64/tensor", lambda L, a: f64(2.0) / a, ("nonzero",)),
         ("neg", "-tensor", lambda L, a: -a, ()),
         ("pow", "tensor**3", lambda L, a: a ** 3, ()),
         ("pow", "tensor**0.5", lambda L, a: a ** 0.5, ("positive",)),
         ("pow", "tensor**0", lambda L, a: a ** 0, ()),
         ("pow", "2**tensor", lambda L, a: 2.0 ** a, ()),
         ("pow", "tensor**array-with-0", lambda L, a: a ** L.const(EXPONENTS), ("positive",)),
         ("mul", "tensor*array", lambda L, a: a * L.const(LOWER_23), ())]
    cases = [Case(op, label, fn, ((2, 3),), doms) for op, label, fn, doms in c]
    # An ndarray on the left dispatches to the Tensor (chainrule's __array_ufunc__).
    cases.append(Case("mul", "ndarray*tensor", lambda L, a: L.const(LOWER_23) * a, ((2, 3),),
                      oracles=()))
    return cases


def _unary_cases() -> list[Case]:
    fns = [("neg", lambda L, a: -a, "real"), ("exp", lambda L, a: L.exp(a), "real"),
           ("log", lambda L, a: L.log(a), "positive"), ("sqrt", lambda L, a: L.sqrt(a), "positive"),
           ("abs", lambda L, a: L.abs(a), "nonzero")]
    return [Case(op, str(shape), fn, (shape,), (dom,)) for op, fn, dom in fns for shape in UNARY_SHAPES]


def _misc_cases() -> list[Case]:
    cases = [
        Case("where", "cond(2,3),a(2,3),b(3,)", lambda L, a, b: L.where(L.const(COND_23), a, b),
             ((2, 3), (3,))),
        Case("where", "cond(1,3),a(),b(2,1)", lambda L, a, b: L.where(L.const(COND_13), a, b),
             ((), (2, 1))),
        Case("where", "scalar-b", lambda L, a: L.where(L.const(COND_23), a, 0.0), ((2, 3),)),
        Case("clip", "both", lambda L, a: L.clip(a, -0.5, 0.5), ((3, 4),)),
        Case("clip", "lower", lambda L, a: L.clip(a, -0.5, None), ((3, 4),)),
        Case("clip", "upper", lambda L, a: L.clip(a, None, 0.3), ((),)),
        Case("clip", "array-bound", lambda L, a: L.clip(a, L.const(LOWER_3), 0.8), ((2, 3),)),
        # autograd's clip VJP does not unbroadcast when a bound widens the output.
        Case("clip", "bound-widens", lambda L, a: L.clip(a, L.const(LOWER_23), 0.8), ((3,),),
             oracles=("torch",)),
    ]
    for sa, sb in [((3, 4), (4, 2)), ((4,), (4,)), ((4,), (4, 2)), ((3, 4), (4,)),
                   ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
                   ((2, 3, 4), (4,))]:
        cases.append(Case("matmul", f"{sa}@{sb}", lambda L, a, b: a @ b, (sa, sb)))
    cases.append(Case("matmul", "function", lambda L, a, b: L.matmul(a, b), ((2, 3), (3,))))
    for op in ("sum", "mean", "max", "min"):
        for shape, axis, keep in REDUCTIONS:
            cases.append(Case(op, f"{shape}-axis={axis}-keepdims={keep}",
                              lambda L, a, op=op, axis=axis, keep=keep:
                              getattr(L, op)(a, axis=axis, keepdims=keep), (shape,)))
    cases += [
        Case("sum", "method", lambda L, a: a.sum(axis=0), ((3, 2),)),
        Case("max", "method", lambda L, a: a.max(axis=-1, keepdims=True), ((3, 2),),
             oracles=("autograd",)),  # torch's Tensor.max(dim) returns (values, indices)
        Case("reshape", "(2,3)->(3,2)", lambda L, a: L.reshape(a, (3, 2)), ((2, 3),)),
        Case("reshape", "(2,3)->(-1,)", lambda L, a: L.reshape(a, (-1,)), ((2, 3),)),
        Case("reshape", "()->(1,1)", lambda L, a: L.reshape(a, (1, 1)), ((),)),
        Case("reshape", "(1,)->()", lambda L, a: L.reshape(a, ()), ((1,),)),
        Case("transpose", "2-d", lambda L, a: L.transpose(a), ((2, 3),)),
        Case("transpose", "axes", lambda L, a: L.transpose(a, (1, 0, 2)), ((2, 3, 4),)),
        # autograd inverts axes with argsort of the raw, negative, axes: wrong shape.
        Case("transpose", "negative-axes", lambda L, a: L.transpose(a, (-1, 0, 1)), ((2, 3, 4),),
             oracles=("torch",)),
        Case("transpose", ".T", lambda L, a: a.T, ((3, 2),)),
        Case("swapaxes", "0,-1", lambda L, a: L.swapaxes(a, 0, -1), ((2, 3, 4),)),
        Case("expand_dims", "0", lambda L, a: L.expand_dims(a, 0), ((3,),)),
        Case("expand_dims", "-1", lambda L, a: L.expand_dims(a, -1), ((2, 3),)),
        Case("expand_dims", "(0,2)", lambda L, a: L.expand_dims(a, (0, 2)), ((2, 3),)),
        Case("expand_dims", "0-d", lambda L, a: L.expand_dims(a, 0), ((),)),
        Case("squeeze", "all", lambda L, a: L.squeeze(a), ((1, 3, 1),)),
        Case("squeeze", "0", lambda L, a: L.squeeze(a, 0), ((1, 3, 1),)),
        Case("squeeze", "(1,3)", lambda L, a: L.squeeze(a, (1, 3)), ((2, 1, 3, 1),)),
        Case("broadcast_to", "(3,)->(2,3)", lambda L, a: L.broadcast_to(a, (2, 3)), ((3,),)),
        Case("broadcast_to", "()->(2,2)", lambda L, a: L.broadcast_to(a, (2, 2)), ((),)),
        Case("broadcast_to", "(2,1)->(3,2,4)", lambda L, a: L.broadcast_to(a, (3, 2, 4)), ((2, 1),)),
        Case("getitem", "int", lambda L, a: a[1], ((4, 5),)),
        Case("getitem", "int-and-slice", lambda L, a: a[-1, 1:4], ((4, 5),)),
        Case("getitem", "step-newaxis-ellipsis", lambda L, a: a[::2, None, ...], ((4, 5),)),
        Case("getitem", "ellipsis-int", lambda L, a: a[..., 1], ((2, 3, 4),)),
        Case("getitem", "0-d", lambda L, a: a[()], ((),)),
        Case("getitem", "repeated-rows", lambda L, a: a[L.const(ROWS_REPEATED)], ((4, 5),)),
        Case("getitem", "repeated-pairs", lambda L, a: a[L.const(ROWS), L.const(COLS)], ((4, 5),)),
        Case("getitem", "slice-and-array", lambda L, a: a[:, L.const(np.array([4, 4, 0]))], ((4, 5),)),
        Case("getitem", "list", lambda L, a: a[[2, 2, 0]], ((3,),)),
        Case("getitem", "bool-mask", lambda L, a: a[L.const(MASK_45)], ((4, 5),)),
        Case("getitem", "bool-rows", lambda L, a: a[L.const(ROW_MASK)], ((4, 5),)),
        Case("getitem", "split-advanced",
             lambda L, a: a[L.const(np.array([1, 0, 1])), :, L.const(np.array([3, 3, 3]))],
             ((2, 3, 4),)),
        Case("concatenate", "axis0", lambda L, a, b: L.concatenate([a, b], axis=0), ((2, 3), (1, 3))),
        Case("concatenate", "axis-1-three", lambda L, a, b, c: L.concatenate([a, b, c], axis=-1),
             ((2, 1), (2, 3), (2, 2))),
        Case("concatenate", "with-constant",
             lambda L, a: L.concatenate([L.const(LOWER_23), a], axis=0), ((1, 3),)),
        # NumPy flattens with axis=None; torch.cat has no such mode and autograd rejects it.
        Case("concatenate", "axis-None", lambda L, a, b: L.concatenate([a, b], axis=None),
             ((2, 2), (3,)), oracles=()),
        Case("stack", "axis0", lambda L, a, b: L.stack([a, b]), ((3,), (3,))),
        Case("stack", "axis-1", lambda L, a, b, c: L.stack([a, b, c], axis=-1), ((2, 3),) * 3),
        Case("stack", "0-d", lambda L, a, b: L.stack([a, b]), ((), ())),
        # untake (getitem's VJP, a primitive so it can be differentiated again): repeated
        # positions accumulate; the oracles multiply by the transposed selection matrix.
        Case("untake", "repeated-rows", lambda L, g: L.untake(g, (ROWS_REPEATED,), (4, 5)),
             ((5, 5),)),
        Case("untake", "slice", lambda L, g: L.untake(g, (slice(1, 3),), (4, 5)), ((2, 5),)),
        Case("untake", "pairs", lambda L, g: L.untake(g, (ROWS, COLS), (4, 5)), ((5,),)),
        # t[index] = v on a copy: torch's setitem is the oracle (autograd has none).
        Case("setitem", "row", lambda L, a, v: L.setitem(a, 1, v), ((3, 4), (4,)),
             oracles=("torch",)),
        Case("setitem", "broadcast-scalar", lambda L, a, v: L.setitem(a, (slice(None), 0), v),
             ((3, 4), ()), oracles=("torch",)),
        Case("setitem", "mask", lambda L, a, v: L.setitem(a, L.const(MASK_45), v), ((4, 5), ()),
             oracles=("torch",)),
        # float64 -> long double and back: exact in both directions, so finite differences work.
        Case("astype", "longdouble", lambda L, a: (a.astype(np.longdouble) * 3).astype(np.float64),
             ((2, 3),), oracles=()),
    ]
    return cases


CASES = _binary_cases() + _scalar_cases() + _unary_cases() + _misc_cases()


def _inputs(case: Case, dtype: Any = np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    arrays = []
    for k, shape in enumerate(case.shapes):
        domain = case.domains[k] if k < len(case.domains) else "real"
        if domain == "positive":
            x = rng.uniform(0.5, 2.0, shape)
        elif domain == "nonzero":
            x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        else:
            x = rng.standard_normal(shape)
        arrays.append(np.asarray(x, dtype=dtype))
    return arrays


def _cotangent(shape: tuple, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(np.random.default_rng(1).standard_normal(shape), dtype=dtype)


def _ops_in_graph(t: cr.Tensor) -> set[str]:
    return {s._node.prim.name for s in topological_order(t) if s._node is not None}


def core_primitive_names() -> set[str]:
    """Names registered by ``primitive("name", ...)`` calls in src/chainrule/ops.py itself."""
    tree = ast.parse(inspect.getsource(ops))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "primitive"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_every_core_primitive_has_a_case() -> None:
    names = core_primitive_names()
    assert names <= set(ops.PRIMITIVES), names - set(ops.PRIMITIVES)
    assert len(names) >= 25  # the parse found the registry, not nothing
    untested = names - {case.op for case in CASES}
    assert not untested, f"core primitives without a test case in CASES: {sorted(untested)}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradcheck(case: Case) -> None:
    xs = [cr.tensor(x, requires_grad=True) for x in _inputs(case)]
    out = case.fn(CR, *xs)
    assert case.op in _ops_in_graph(out), f"case does not exercise {case.op!r}"
    assert cr.gradcheck(lambda *ts: case.fn(CR, *ts), *xs)


def _chainrule_vjp(case: Case, arrays: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    xs = [cr.tensor(x, requires_grad=True) for x in arrays]
    out = case.fn(CR, *xs)
    out.backward(_cotangent(out.shape))
    return out.data, [x.grad for x in xs]


@pytest.mark.parametrize("case", [c for c in CASES if "autograd" in c.oracles], ids=lambda c: c.id)
def test_matches_autograd(case: Case) -> None:
    arrays = _inputs(case)
    value, grads = _chainrule_vjp(case, arrays)
    expected_value = case.fn(AG, *arrays)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0)
    w = _cotangent(np.shape(expected_value))
    for i, (x, g) in enumerate(zip(arrays, grads, strict=True)):
        expected = autograd.grad(lambda *a: anp.sum(case.fn(AG, *a) * w), i)(*arrays)
        assert g.shape == x.shape and g.dtype == np.float64
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-300, err_msg=f"input {i}")


@pytest.mark.parametrize("case", [c for c in CASES if "torch" in c.oracles], ids=lambda c: c.id)
def test_matches_torch(case: Case) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    arrays = _inputs(case)
    value, grads = _chainrule_vjp(case, arrays)
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in arrays]
    out = case.fn(torch_namespace(torch), *ts)
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=1e-12, atol=0)
    out.backward(torch.from_numpy(_cotangent(tuple(out.shape))))
    for i, (t, g) in enumerate(zip(ts, grads, strict=True)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-300, err_msg=f"input {i}")


# astype changes the dtype on purpose: test_astype_gradient_dtype covers it.
@pytest.mark.parametrize("case", [c for c in CASES if c.op != "astype"], ids=lambda c: c.id)
def test_float32_stays_float32(case: Case) -> None:
    """float32 in, float32 out: every forward value, every VJP result and every .grad."""
    xs = [cr.tensor(x, requires_grad=True) for x in _inputs(case, np.float32)]
    out = case.fn(CR32, *xs)
    for t in topological_order(out):
        assert t.dtype == np.float32, f"{t.op or 'leaf'} made {t.dtype}"
        node = t._node
        if node is None:
            continue
        g = np.ones(t.shape, np.float32)
        for i, parent in enumerate(node.parents):
            if parent is not None and parent.requires_grad:
                gi = np.asarray(node.prim.vjp(i, g, t.data, node.args, node.kwargs))
                assert gi.dtype == np.float32, f"VJP of {node.prim.name} for argument {i}: {gi.dtype}"
    out.backward(np.ones(out.shape, np.float32))
    for x in xs:
        assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_astype_gradient_dtype() -> None:
    """The gradient of a cast comes back in the source dtype, with the cast's values."""
    x = cr.tensor(np.array([0.1, 2.5, -3.0], np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and y.op == "astype"
    g = np.array([1 / 3, 1e-9, 7.0])
    y.backward(g)
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, g.astype(np.float32))
    assert x.astype(np.float32) is x  # a no-op cast records nothing


# --- ties and edges, with values derived by hand from the definitions ----------------------

def _grad_of(fn: Callable, x: np.ndarray) -> np.ndarray:
    t = cr.tensor(x, requires_grad=True)
    fn(t).backward()
    return t.grad


TIES = [
    # max over [1, 3, 3, 2]: the two maxima share the gradient equally.
    ("max-ties", lambda t: t.max(), [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
    ("min-ties-axis", lambda t: t.min(axis=1).sum(), [[2.0, 2.0, 2.0], [1.0, 0.0, 5.0]],
     [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]),
    ("maximum-ties", lambda t: cr.maximum(t, 1.0).sum(), [0.0, 1.0, 2.0], [0.0, 0.5, 1.0]),
    ("minimum-ties", lambda t: cr.minimum(t, 1.0).sum(), [0.0, 1.0, 2.0], [1.0, 0.5, 0.0]),
    # clip passes the gradient on the bounds themselves, as torch.clamp does.
    ("clip-bounds", lambda t: t.clip(-1.0, 1.0).sum(), [-2.0, -1.0, 0.0, 1.0, 2.0],
     [0.0, 1.0, 1.0, 1.0, 0.0]),
    ("abs-at-0", lambda t: abs(t).sum(), [-2.0, 0.0, 3.0], [-1.0, 0.0, 1.0]),
    ("pow-base-0", lambda t: (t ** 2).sum(), [0.0, 3.0], [0.0, 6.0]),
    ("pow-exponent-0", lambda t: (t ** 0).sum(), [0.0, 3.0], [0.0, 0.0]),
    ("sqrt-x-squared", lambda t: cr.sqrt(t * t).sum(), [-4.0], [-1.0]),
]


@pytest.mark.parametrize("name,fn,x,expected", TIES, ids=[t[0] for t in TIES])
def test_ties_and_edges(name: str, fn: Callable, x: list, expected: list) -> None:
    np.testing.assert_allclose(_grad_of(fn, np.array(x)), np.array(expected), rtol=1e-15)


@pytest.mark.parametrize("name,fn,x,expected", TIES[:5], ids=[t[0] for t in TIES[:5]])
def test_ties_match_torch(name: str, fn: Callable, x: list, expected: list) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch_fns = {"max-ties": lambda t: t.amax(), "min-ties-axis": lambda t: t.amin(dim=1).sum(),
                 "maximum-ties": lambda t: torch.maximum(t, torch.tensor(1.0, dtype=t.dtype)).sum(),
                 "minimum-ties": lambda t: torch.minimum(t, torch.tensor(1.0, dtype=t.dtype)).sum(),
                 "clip-bounds": lambda t: torch.clamp(t, -1.0, 1.0).sum()}
    torch_fns[name](t).backward()
    np.testing.assert_allclose(_grad_of(fn, np.array(x)), t.grad.numpy(), rtol=1e-15)


def test_exponent_gradient_at_zero_base() -> None:
    """d(a^b)/db = a^b log a, taken as 0 at a = 0 (the limit for b > 0), as autograd does."""
    b = cr.tensor([2.0, 0.5], requires_grad=True)
    (cr.tensor([0.0, 4.0]) ** b).sum().backward()
    np.testing.assert_allclose(b.grad, [0.0, 4.0 ** 0.5 * np.log(4.0)], rtol=1e-15)


def test_getitem_tensor_index_and_empty_list() -> None:
    x = cr.tensor(np.arange(5.0), requires_grad=True)
    x[cr.tensor([1, 1, 4])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0, 0.0, 1.0])
    empty = x[[]]
    assert empty.shape == (0,)


# --- property tests: broadcasting ---------------------------------------------------------

BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b}


def _reduce_to(values: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast array back to ``shape`` by counting where each input element went.

    An independent route to the answer: label each input element, broadcast the labels,
    and add every output value into its label's bin.
    """
    labels = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), values.shape)
    size = int(np.prod(shape))
    return np.bincount(labels.ravel(), weights=values.ravel(), minlength=size).reshape(shape)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**32 - 1))
def test_broadcast_gradients_reduce_to_input_shape(shapes: Any, op: str, seed: int) -> None:
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    a_np, b_np = rng.standard_normal(sa), rng.uniform(0.5, 2.0, sb)
    w = rng.standard_normal(out_shape)
    a, b = cr.tensor(a_np, requires_grad=True), cr.tensor(b_np, requires_grad=True)
    out = BINARY[op](a, b)
    assert out.shape == out_shape
    out.backward(w)
    assert a.grad.shape == sa and b.grad.shape == sb
    a_full, b_full = np.broadcast_to(a_np, out_shape), np.broadcast_to(b_np, out_shape)
    local = {"add": (1.0, 1.0), "sub": (1.0, -1.0), "mul": (b_full, a_full),
             "div": (1.0 / b_full, -a_full / b_full ** 2)}[op]
    np.testing.assert_allclose(a.grad, _reduce_to(w * local[0], sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, _reduce_to(w * local[1], sb), rtol=1e-12, atol=1e-12)


# --- every NumPy index form accumulates repeated positions (np.add.at's rule) ---------------

INDEX_FORMS = [
    ("int", 1),
    ("negative-int", -1),
    ("slice", slice(None, None, 2)),
    ("list", [0, 2, 0]),
    ("nested-list", [[0, 2], [2, 2]]),
    ("tuple-of-lists", ([0, 0, 2], [1, 1, 3])),
    ("nested-tuple", ((0, 0, 2), (1, 1, 3))),
    ("array", np.array([2, 2, 1, 2])),
    ("2-d-array", np.array([[0, 0], [1, 0]])),
    ("bool-mask", np.array([[True, False, True, False], [False, False, True, True],
                            [True, True, False, False]])),
    ("bool-rows", np.array([True, False, True])),
    ("list-and-slice", ([0, 0, 2], slice(1, 3))),
    ("slice-and-array", (slice(None), np.array([3, 3, 0]))),
    ("ellipsis-and-list", (Ellipsis, [1, 1])),
    ("none-and-array", (None, np.array([1, 1]))),
    ("array-none-array", (np.array([0, 0]), None, np.array([2, 2]))),
    ("int-and-list", (2, [0, 0, 3])),
    ("0-d-array", np.array(1)),
    ("tensor-index", "tensor"),
]


@pytest.mark.parametrize("name,index", INDEX_FORMS, ids=[f[0] for f in INDEX_FORMS])
def test_every_index_form_accumulates_like_np_add_at(name: str, index: Any) -> None:
    x = np.arange(12.0).reshape(3, 4)
    if name == "tensor-index":  # an integer Tensor as the index, with a repeat
        ours_index, np_index = cr.tensor([1, 1, 0]), np.array([1, 1, 0])
    else:
        ours_index, np_index = index, (tuple(np.asarray(i) if isinstance(i, (list, tuple)) else i
                                             for i in index) if isinstance(index, tuple) else
                                       np.asarray(index) if isinstance(index, list) else index)
    t = cr.tensor(x, requires_grad=True)
    out = t[ours_index]
    np.testing.assert_array_equal(out.data, x[np_index])
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(g)
    expected = np.zeros_like(x)
    np.add.at(expected, np_index, g)  # the definition of the adjoint, repeats summed
    np.testing.assert_array_equal(t.grad, expected)
    tt = torch.tensor(x, requires_grad=True) if (torch := _torch_or_none()) else None
    if tt is not None and name not in ("nested-tuple", "none-and-array", "array-none-array"):
        tidx = (torch.from_numpy(np.asarray(np_index)) if isinstance(np_index, np.ndarray)
                else tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i
                           for i in np_index) if isinstance(np_index, tuple) else np_index)
        tt[tidx].backward(torch.from_numpy(g))
        np.testing.assert_array_equal(t.grad, tt.grad.numpy())


def _torch_or_none() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional oracle
        return None
    return torch


# --- 0-d tensors wherever NumPy takes them ---------------------------------------------------

ZERO_D = [
    ("sum-axis0", lambda L, a: L.sum(a, axis=0), lambda a: a.sum(0)),
    ("sum-axis-1", lambda L, a: L.sum(a, axis=-1, keepdims=True), lambda a: a.sum(-1, keepdim=True)),
    ("max-axis0", lambda L, a: L.max(a, axis=0), lambda a: a.amax(0)),
    ("min-axis-1", lambda L, a: L.min(a, axis=-1), lambda a: a.amin(-1)),
    ("expand_dims", lambda L, a: L.expand_dims(a, 0), lambda a: a.unsqueeze(0)),
    ("squeeze", lambda L, a: L.squeeze(a), lambda a: a.squeeze()),
    ("transpose", lambda L, a: L.transpose(a), lambda a: a),
    ("stack", lambda L, a: L.stack([a, a * 2]), lambda a: torch_stack(a)),
    ("concatenate-None", lambda L, a: L.concatenate([a, a], axis=None), None),
    ("reshape", lambda L, a: L.reshape(a, (1, 1)), lambda a: a.reshape(1, 1)),
    ("broadcast_to", lambda L, a: L.broadcast_to(a, (2,)), lambda a: a.broadcast_to((2,))),
    ("getitem-()", lambda L, a: a[()], lambda a: a[()]),
    ("getitem-None", lambda L, a: a[None], lambda a: a[None]),
    ("mean", lambda L, a: L.mean(a), lambda a: a.mean()),
    ("matmul-with-1d", lambda L, a: L.matmul(L.reshape(a, (1,)), L.reshape(a, (1,))),
     lambda a: a.reshape(1) @ a.reshape(1)),
]


def torch_stack(a: Any) -> Any:
    import torch
    return torch.stack([a, a * 2])


@pytest.mark.parametrize("name,fn,th", ZERO_D, ids=[z[0] for z in ZERO_D])
def test_zero_d_inputs_forward_and_backward(name: str, fn: Callable, th: Callable | None) -> None:
    x = np.array(1.75)
    t = cr.tensor(x, requires_grad=True)
    out = fn(CR, t)
    np.testing.assert_array_equal(out.data, fn(np, x))  # NumPy's own result for a 0-d array
    g = np.full(out.shape, 0.5)
    out.backward(g)
    assert t.grad.shape == ()
    torch = _torch_or_none()
    if torch is not None and th is not None:
        tt = torch.tensor(x, requires_grad=True)
        th(tt).backward(torch.from_numpy(g))
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-15)
    else:  # by hand: concatenate of [a, a] gives each copy's g back: 0.5 + 0.5
        assert float(t.grad) == 1.0


# --- singular points follow PyTorch -------------------------------------------------------------

# (base, exponent, d/dbase, d/dexponent) from torch 2.13's pow backward (values checked below
# against torch when it is importable): 0**b for b < 0 gives -inf for both, as PyTorch.
POW_SINGULAR = [(0.0, -1.0, -np.inf, -np.inf), (0.0, -0.5, -np.inf, -np.inf), (0.0, 0.0, 0.0, 0.0),
                (0.0, 0.5, np.inf, 0.0), (0.0, 2.0, 0.0, 0.0), (0.0, 1.0, 1.0, 0.0),
                (-2.0, 0.5, np.nan, np.nan), (-2.0, 2.0, -4.0, np.nan)]


@pytest.mark.parametrize("a,b,da,db", POW_SINGULAR)
def test_pow_at_singular_points_follows_torch(a: float, b: float, da: float, db: float) -> None:
    import warnings
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    with np.errstate(all="ignore"):  # the forward is NumPy's (0 ** -1 warns there too)
        out = x ** y
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backward pass never warns
        out.backward()
    np.testing.assert_array_equal([x.grad, y.grad], [da, db])
    torch = _torch_or_none()
    if torch is not None:
        tx = torch.tensor(a, dtype=torch.float64, requires_grad=True)
        ty = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        (tx ** ty).backward()
        np.testing.assert_array_equal([x.grad, y.grad], [tx.grad.item(), ty.grad.item()])
