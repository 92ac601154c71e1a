"""NumPy's operations on Tensors (chainrule.numpy_api and the primitives of ops_elementwise,
ops_reduce and ops_linalg) against independent oracles.

Each case is one computation written once in NumPy spelling, ``fn(L, *xs)``, where ``L`` is a
namespace of functions: chainrule's, NumPy's own (the forward values: same semantics for
axis, keepdims, ddof, broadcasting, 0-d inputs), HIPS autograd's ``autograd.numpy``, or a thin
PyTorch adapter. Gradients are checked by central finite differences (``gradcheck``) always,
and by autograd's and torch's VJPs where they have the function, to 1e-10 in float64; and once
more in float32 to show that nothing is silently upcast, forward or backward.
"""
from __future__ import annotations

import ast
import inspect
import re
import types
import warnings
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np
import pytest
import scipy.special

import chainrule as cr
from chainrule import ops_elementwise, ops_linalg, ops_reduce
from chainrule.autodiff import topological_order


def _identity(value: Any) -> Any:
    return value


CR = types.SimpleNamespace(**{n: getattr(cr, n) for n in cr.numpy_api.__all__},
                           sum=cr.sum, const=_identity)
NP = types.SimpleNamespace(**{n: getattr(np, n) for n in cr.numpy_api.__all__
                              if n not in ("erf", "logsumexp")},
                           erf=scipy.special.erf, logsumexp=scipy.special.logsumexp, sum=np.sum,
                           const=_identity)
AG = types.SimpleNamespace(**{n: getattr(anp, n) for n in cr.numpy_api.__all__
                              if hasattr(anp, n) and n not in ("erf", "logsumexp")},
                           erf=asp.erf, logsumexp=asp.logsumexp, sum=anp.sum, const=_identity)


def _float32_const(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float32)
    return value


CR32 = types.SimpleNamespace(**vars(CR))
CR32.const = _float32_const


class TorchNamespace:
    """PyTorch under NumPy's names and argument conventions (names only; same semantics)."""

    def __init__(self, torch: Any):
        self.torch = torch
        self.F = __import__("torch.nn.functional", fromlist=["pad"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self.torch, name)

    def const(self, value: Any) -> Any:
        return self.torch.from_numpy(value) if isinstance(value, np.ndarray) else value

    def _pair(self, a, b):
        like = a if isinstance(a, self.torch.Tensor) else b
        return tuple(x if isinstance(x, self.torch.Tensor) else self.torch.tensor(x, dtype=like.dtype)
                     for x in (a, b))

    def mod(self, a, b):
        return self.torch.remainder(a, b)

    def arctan2(self, a, b):
        return self.torch.arctan2(*self._pair(a, b))

    def hypot(self, a, b):
        return self.torch.hypot(*self._pair(a, b))

    def fmax(self, a, b):
        return self.torch.fmax(*self._pair(a, b))

    def fmin(self, a, b):
        return self.torch.fmin(*self._pair(a, b))

    def logaddexp(self, a, b):
        return self.torch.logaddexp(*self._pair(a, b))

    def tile(self, x, reps):
        return self.torch.tile(x, (reps,) if isinstance(reps, int) else reps)

    def round(self, x, decimals=0):
        return self.torch.round(x, decimals=decimals)

    def _dims(self, x, axis):
        return tuple(range(x.ndim)) if axis is None else axis

    def prod(self, x, axis=None, keepdims=False):
        if axis is None:
            out = self.torch.prod(x)
            return out.reshape((1,) * x.ndim) if keepdims else out
        return self.torch.prod(x, dim=axis, keepdim=keepdims)

    def cumsum(self, x, axis=None):
        return self.torch.cumsum(x.reshape(-1) if axis is None else x, dim=0 if axis is None else axis)

    def cumprod(self, x, axis=None):
        return self.torch.cumprod(x.reshape(-1) if axis is None else x, dim=0 if axis is None else axis)

    def logsumexp(self, x, axis=None, keepdims=False):
        return self.torch.logsumexp(x, dim=self._dims(x, axis), keepdim=keepdims)

    def var(self, x, axis=None, ddof=0, keepdims=False):
        return self.torch.var(x, dim=axis, correction=ddof, keepdim=keepdims)

    def std(self, x, axis=None, ddof=0, keepdims=False):
        return self.torch.std(x, dim=axis, correction=ddof, keepdim=keepdims)

    def flip(self, x, axis=None):
        axes = self._dims(x, axis)
        return self.torch.flip(x, (axes,) if isinstance(axes, int) else axes)

    def roll(self, x, shift, axis=None):
        return self.torch.roll(x, shift) if axis is None else self.torch.roll(x, shift, axis)

    def repeat(self, x, repeats, axis=None):
        reps = self.torch.as_tensor(repeats) if not isinstance(repeats, int) else repeats
        return self.torch.repeat_interleave(x, reps, dim=axis)

    def pad(self, x, pad_width, mode="constant", constant_values=0):
        pairs = np.broadcast_to(np.asarray(pad_width), (x.ndim, 2)).tolist()
        flat = [w for pair in reversed(pairs) for w in pair]
        assert mode == "constant"
        return self.F.pad(x, flat, value=float(constant_values))

    def sort(self, x, axis=-1):
        return self.torch.sort(x, dim=axis).values

    def take_along_axis(self, x, idx, axis):
        return self.torch.take_along_dim(x, idx, dim=axis)

    def split(self, x, n, axis=0):
        return self.torch.tensor_split(x, n, dim=axis)

    array_split = split

    def dot(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            return a * b
        if a.ndim <= 2 and b.ndim <= 2:
            return self.torch.matmul(a, b)
        return self.torch.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 1 if b.ndim == 1 else b.ndim - 2]))

    def trace(self, x, offset=0, axis1=0, axis2=1):
        return self.torch.diagonal(x, offset, axis1, axis2).sum(-1)

    def tril(self, x, k=0):
        return self.torch.tril(x, k)

    def triu(self, x, k=0):
        return self.torch.triu(x, k)

    def tensordot(self, a, b, axes=2):
        return self.torch.tensordot(a, b, dims=axes)

    def sum(self, x, axis=None):
        return self.torch.sum(x) if axis is None else self.torch.sum(x, dim=axis)


class Case(NamedTuple):
    op: str  # the primitive this case exercises (checked against the recorded graph)
    label: str
    fn: Callable[..., Any]  # fn(L, *inputs)
    shapes: tuple  # one shape per differentiable input
    domains: tuple = ()  # per input: "real", "positive", "nonzero", "unit", "above1", "small"
    oracles: tuple = ("autograd", "torch")

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}"


BROADCAST_PAIRS = [((), ()), ((3,), ()), ((2, 3), (3,)), ((2, 1, 4), (3, 1))]
UNARY_SHAPES = [(), (3,), (2, 3, 4)]
REDUCTIONS = [((), None, False), ((4,), None, False), ((2, 3, 4), None, True),
              ((2, 3, 4), 1, False), ((2, 3, 4), -1, True), ((2, 3, 4), (0, 2), False)]
AXES_1 = [((), None), ((), 0), ((5,), None), ((2, 3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), None)]
NO_AG = ("torch",)
NO_TH = ("autograd",)

_fixed = np.random.default_rng(11)
TAKE_IDX = np.array([[2, 0, 2, 1], [1, 1, 0, 0]])  # repeated positions: must accumulate
SORT_TIES = np.array([0.5, -1.0, 0.5, 2.0])


def _unary_cases() -> list[Case]:
    table = [("sin", "real", ()), ("cos", "real", ()), ("tan", "small", ()),
             ("arcsin", "unit", ()), ("arccos", "unit", ()), ("arctan", "real", ()),
             ("sinh", "real", ()), ("cosh", "real", ()), ("arcsinh", "real", ()),
             ("arccosh", "above1", ()), ("arctanh", "unit", ()), ("exp2", "real", ()),
             ("log2", "positive", ()), ("log10", "positive", ()), ("expm1", "real", ()),
             ("log1p", "positive", ()), ("square", "real", ()), ("reciprocal", "nonzero", ()),
             ("erf", "real", ()), ("sign", "nonzero", ()), ("floor", "real", ()),
             ("ceil", "real", ()), ("trunc", "real", ())]
    cases = []
    for name, dom, _ in table:
        oracles = NO_TH if name in ("erf",) and False else ("autograd", "torch")
        for shape in UNARY_SHAPES:
            cases.append(Case(name, str(shape), lambda L, a, n=name: getattr(L, n)(a), (shape,),
                              (dom,), oracles))
    cases += [Case("round", "decimals=0", lambda L, a: L.round(a), ((2, 3),)),
              Case("round", "decimals=1", lambda L, a: L.round(a, 1) * a, ((2, 3),), oracles=NO_AG),
              Case("tanh", "np-name", lambda L, a: L.tanh(a), ((2, 3),))]
    return cases


def _binary_cases() -> list[Case]:
    table = [("arctan2", ("real", "nonzero"), ("autograd", "torch")),
             ("hypot", ("nonzero", "nonzero"), ("autograd", "torch")),
             ("mod", ("real", "nonzero"), ("autograd", "torch")),
             ("fmod", ("real", "nonzero"), NO_AG),
             ("fmax", ("real", "real"), ("autograd", "torch")),
             ("fmin", ("real", "real"), ("autograd", "torch")),
             ("logaddexp", ("real", "real"), ("autograd", "torch"))]
    cases = []
    for name, doms, oracles in table:
        for sa, sb in BROADCAST_PAIRS:
            cases.append(Case(name, f"{sa}x{sb}", lambda L, a, b, n=name: getattr(L, n)(a, b),
                              (sa, sb), doms, oracles))
        cases.append(Case(name, "tensor-and-scalar", lambda L, a, n=name: getattr(L, n)(a, 1.25),
                          ((3,),), doms[:1], oracles))
    cases.append(Case("mod", "remainder-alias", lambda L, a: L.remainder(a, 0.7), ((4,),), (),
                      NO_AG))
    return cases


def _reduction_cases() -> list[Case]:
    cases = []
    for op in ("prod", "logsumexp"):
        for shape, axis, keep in REDUCTIONS:
            oracles = NO_TH if isinstance(axis, tuple) and op == "prod" else ("autograd", "torch")
            cases.append(Case(op, f"{shape}-axis={axis}-keepdims={keep}",
                              lambda L, a, op=op, axis=axis, keep=keep:
                              getattr(L, op)(a, axis=axis, keepdims=keep), (shape,), (), oracles))
    for op in ("cumsum", "cumprod"):
        for shape, axis in AXES_1:
            oracles = NO_AG if op == "cumprod" else ("autograd", "torch")
            if shape == () and axis is not None:
                oracles = ()  # NumPy's axis 0 on a 0-d input: torch and autograd differ
            cases.append(Case(op, f"{shape}-axis={axis}", lambda L, a, op=op, axis=axis:
                              getattr(L, op)(a, axis=axis), (shape,), (), oracles))
    for op in ("var", "std"):
        for shape, axis, keep in REDUCTIONS[1:]:
            for ddof in (0, 1):
                cases.append(Case("sqrt" if op == "std" else "mean",
                                  f"{op}-{shape}-axis={axis}-keepdims={keep}-ddof={ddof}",
                                  lambda L, a, op=op, axis=axis, keep=keep, ddof=ddof:
                                  getattr(L, op)(a, axis=axis, ddof=ddof, keepdims=keep),
                                  (shape,)))
    cases.append(Case("mean", "var-0-d", lambda L, a: L.var(a), ((),), (), NO_TH))
    return cases


def _linalg_cases() -> list[Case]:
    es = [("ij,jk->ik", ((2, 3), (3, 4))), ("ij,jk", ((2, 3), (3, 4))), ("ii->i", ((3, 3),)),
          ("ii", ((3, 3),)), ("i,j->ij", ((2,), (3,))), ("bij,bjk->bik", ((2, 3, 4), (2, 4, 5))),
          ("ij->", ((2, 3),)), ("ij->ji", ((2, 3),)), ("i,i,i->", ((4,), (4,), (4,))),
          ("iij->j", ((3, 3, 2),)), ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 2))),
          ("...ij,...jk->...ik", ((2, 3, 4), (4, 5))), ("i,->i", ((3,), ())),
          ("Ba,aC->BC", ((2, 3), (3, 2)))]
    cases = []
    for spec, shapes in es:
        # autograd's einsum VJP cannot write a repeated subscript (a diagonal) back
        oracles = NO_AG if spec in ("ii->i", "ii", "iij->j") else ("autograd", "torch")
        cases.append(Case("einsum", spec, lambda L, *xs, spec=spec: L.einsum(spec, *xs), shapes,
                          (), oracles))
    # ellipsis axes that broadcast (size 1 against 2): the gradient sums back to size 1
    cases.append(Case("einsum", "...ij,...jk-broadcast",
                      lambda L, a, b: L.einsum("...ij,...jk->...ik", a, b), ((2, 3, 4), (1, 4, 5)),
                      oracles=NO_AG))
    for sa, sb in [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4,)),
                   ((2, 3, 4), (5, 4, 2)), ((), (3,))]:
        op = "einsum" if len(sa) > 2 or len(sb) > 2 else ("mul" if not sa else "matmul")
        cases.append(Case(op, f"dot-{sa}.{sb}", lambda L, a, b: L.dot(a, b), (sa, sb)))
    for sa, sb in [((3,), (3,)), ((2, 3), (4, 3)), ((2, 1, 3), (3,))]:
        cases.append(Case("einsum", f"inner-{sa}.{sb}", lambda L, a, b: L.inner(a, b), (sa, sb)))
    cases.append(Case("mul", "outer", lambda L, a, b: L.outer(a, b), ((3,), (2,))))
    for axes, sa, sb in [(1, (2, 3), (3, 4)), (2, (2, 3, 4), (3, 4, 2)),
                         (([1, 0], [0, 1]), (2, 3, 4), (3, 2)), (0, (2,), (3,))]:
        cases.append(Case("einsum", f"tensordot-axes={axes}",
                          lambda L, a, b, axes=axes: L.tensordot(a, b, axes), (sa, sb)))
    cases += [
        Case("diagonal", "trace-2d", lambda L, a: L.trace(a), ((3, 3),)),
        Case("diagonal", "trace-offset", lambda L, a: L.trace(a, 1), ((3, 4),)),
        Case("diagonal", "trace-3d-axes", lambda L, a: L.trace(a, -1, 1, 2), ((2, 3, 4),), oracles=NO_AG),
        Case("diagonal", "2d", lambda L, a: L.diagonal(a), ((3, 4),), oracles=NO_AG),
        Case("diagonal", "offset-2", lambda L, a: L.diagonal(a, 2), ((3, 4),), oracles=NO_AG),
        Case("diagonal", "3d-negative-offset", lambda L, a: L.diagonal(a, -1, 1, 2), ((2, 3, 4),),
             oracles=NO_AG),
        Case("diagonal", "3d-axes-2-0", lambda L, a: L.diagonal(a, 0, 2, 0), ((2, 3, 4),),
             oracles=NO_AG),
        Case("diagonal", "offset-beyond", lambda L, a: L.diagonal(a, 5), ((3, 4),), oracles=()),
        Case("diagonal", "diag-2d", lambda L, a: L.diag(a, 1), ((3, 3),)),
        Case("mul", "diag-1d", lambda L, a: L.diag(a), ((3,),)),
        Case("mul", "diag-1d-k=-2", lambda L, a: L.diag(a, -2), ((3,),)),
        Case("where", "tril", lambda L, a: L.tril(a), ((3, 4),)),
        Case("where", "tril-k=-1", lambda L, a: L.tril(a, -1), ((4, 3),)),
        Case("where", "triu-batched", lambda L, a: L.triu(a, 1), ((2, 3, 3),)),
    ]
    return cases


def _shape_cases() -> list[Case]:
    return [
        Case("getitem", "flip-all", lambda L, a: L.flip(a), ((2, 3),), oracles=NO_AG),
        Case("getitem", "flip-axis", lambda L, a: L.flip(a, 1), ((2, 3, 4),), oracles=NO_AG),
        Case("getitem", "flip-axes", lambda L, a: L.flip(a, (0, -1)), ((2, 3, 4),), oracles=NO_AG),
        Case("concatenate", "roll-flat", lambda L, a: L.roll(a, 4), ((2, 3),)),
        Case("concatenate", "roll-axis", lambda L, a: L.roll(a, -2, 1), ((2, 3, 4),)),
        Case("concatenate", "roll-axes", lambda L, a: L.roll(a, (1, 2), (0, 2)), ((2, 3, 4),),
             oracles=NO_AG),
        Case("transpose", "moveaxis", lambda L, a: L.moveaxis(a, 0, -1), ((2, 3, 4),)),
        Case("transpose", "moveaxis-pairs", lambda L, a: L.moveaxis(a, (0, 1), (2, 0)), ((2, 3, 4),)),
        Case("reshape", "ravel", lambda L, a: L.ravel(a), ((2, 3),)),
        Case("reshape", "repeat-flat", lambda L, a: L.repeat(a, 2), ((2, 3),)),
        Case("reshape", "repeat-axis", lambda L, a: L.repeat(a, 3, axis=1), ((2, 3),)),
        Case("getitem", "repeat-counts", lambda L, a: L.repeat(a, L.const(np.array([1, 0, 2])), axis=0),
             ((3, 2),), oracles=NO_AG),
        Case("reshape", "tile-1d", lambda L, a: L.tile(a, 2), ((3,),)),
        Case("reshape", "tile-more-reps", lambda L, a: L.tile(a, (2, 1, 3)), ((2, 3),)),
        Case("reshape", "tile-fewer-reps", lambda L, a: L.tile(a, 2), ((2, 3),), oracles=NO_AG),
        Case("concatenate", "pad-constant", lambda L, a: L.pad(a, 1), ((2, 3),), oracles=NO_AG),
        Case("concatenate", "pad-pairs-value", lambda L, a: L.pad(a, ((1, 0), (2, 1)), constant_values=0.5),
             ((2, 3),), oracles=NO_AG),
        Case("concatenate", "pad-edge", lambda L, a: L.pad(a, ((2, 1), (0, 3)), mode="edge"),
             ((2, 3),), oracles=()),
        Case("concatenate", "pad-reflect", lambda L, a: L.pad(a, ((1, 1), (2, 1)), mode="reflect"),
             ((2, 3),), oracles=()),
        Case("concatenate", "pad-symmetric", lambda L, a: L.pad(a, 2, mode="symmetric"), ((3, 2),),
             oracles=()),
        Case("concatenate", "pad-wrap", lambda L, a: L.pad(a, (1, 3), mode="wrap"), ((4,),), oracles=()),
        Case("getitem", "sort-1d", lambda L, a: L.sort(a), ((5,),)),
        # autograd sorts only 1-D arrays differentiably
        Case("getitem", "sort-last", lambda L, a: L.sort(a), ((3, 4),), oracles=NO_AG),
        Case("getitem", "sort-axis0", lambda L, a: L.sort(a, axis=0), ((3, 4),), oracles=NO_AG),
        Case("getitem", "take_along_axis", lambda L, a: L.take_along_axis(a, L.const(TAKE_IDX), 1),
             ((2, 3),), oracles=NO_AG),
        Case("getitem", "take_along_axis-0", lambda L, a: L.take_along_axis(a, L.const(TAKE_IDX), 0),
             ((3, 4),), oracles=NO_AG),
        Case("getitem", "split", lambda L, a: L.split(a, 3, axis=1)[0] - 2 * L.split(a, 3, axis=1)[2],
             ((2, 6),)),
        Case("getitem", "array_split", lambda L, a: L.array_split(a, 3)[0] * 3 + L.array_split(a, 3)[1],
             ((5,),)),
        Case("concatenate", "vstack", lambda L, a, b: L.vstack([a, b]), ((3,), (2, 3))),
        Case("concatenate", "hstack", lambda L, a, b: L.hstack([a, b]), ((2, 1), (2, 3))),
        Case("concatenate", "hstack-1d", lambda L, a, b: L.hstack([a, b]), ((2,), (3,))),
        Case("concatenate", "column_stack", lambda L, a, b: L.column_stack([a, b]), ((3,), (3, 2))),
        Case("reshape", "atleast_2d", lambda L, a: L.atleast_2d(a), ((3,),)),
        Case("reshape", "atleast_3d", lambda L, a: L.atleast_3d(a), ((2, 3),)),
        Case("reshape", "atleast_3d-1d", lambda L, a: L.atleast_3d(a), ((3,),)),
        Case("reshape", "atleast_1d-0d", lambda L, a: L.atleast_1d(a), ((),)),
        Case("where", "nan_to_num", lambda L, a: L.nan_to_num(a), ((2, 3),)),
    ]


CASES = _unary_cases() + _binary_cases() + _reduction_cases() + _linalg_cases() + _shape_cases()


def _inputs(case: Case, dtype: Any = np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    arrays = []
    for k, shape in enumerate(case.shapes):
        domain = case.domains[k] if k < len(case.domains) else "real"
        if domain == "positive":
            x = rng.uniform(0.5, 2.0, shape)
        elif domain == "nonzero":
            x = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        elif domain == "unit":
            x = rng.uniform(-0.9, 0.9, shape)
        elif domain == "above1":
            x = rng.uniform(1.2, 3.0, shape)
        elif domain == "small":
            x = rng.uniform(-1.2, 1.2, shape)
        else:
            x = rng.standard_normal(shape)
        arrays.append(np.asarray(x, dtype=dtype))
    return arrays


def _cotangent(shape: tuple, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(np.random.default_rng(1).standard_normal(shape), dtype=dtype)


def _ops_in_graph(t: cr.Tensor) -> set[str]:
    return {s._node.prim.name for s in topological_order(t) if s._node is not None}


def primitive_names(module: Any) -> set[str]:
    """Names registered by ``primitive("name", ...)`` calls in ``module``'s own source."""
    tree = ast.parse(inspect.getsource(module))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "primitive"
            and node.args and isinstance(node.args[0], ast.Constant)}


NEW_MODULES = (ops_elementwise, ops_reduce, ops_linalg)


def test_every_new_primitive_has_a_case() -> None:
    names = set().union(*(primitive_names(m) for m in NEW_MODULES))
    assert names <= set(cr.ops.PRIMITIVES), names - set(cr.ops.PRIMITIVES)
    assert len(names) >= 35  # the parse found the registrations, not nothing
    untested = names - {case.op for case in CASES}
    assert not untested, f"primitives without a test case in CASES: {sorted(untested)}"


def test_every_public_function_is_exercised_or_tested_below() -> None:
    source = inspect.getsource(inspect.getmodule(test_every_new_primitive_has_a_case))
    for name in cr.numpy_api.__all__:
        spellings = (f"L.{name}(", f"cr.{name}(", f'("{name}", ')  # the last: the unary/binary tables
        assert any(s in source for s in spellings), f"no test calls {name}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradcheck_and_numpy_forward(case: Case) -> None:
    arrays = _inputs(case)
    xs = [cr.tensor(x, requires_grad=True) for x in arrays]
    out = case.fn(CR, *xs)
    assert case.op in _ops_in_graph(out), f"case does not exercise {case.op!r}"
    np.testing.assert_allclose(out.data, case.fn(NP, *arrays), rtol=1e-13, atol=1e-15)
    assert out.shape == np.shape(case.fn(NP, *arrays))
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
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-15)
    w = _cotangent(np.shape(expected_value))
    for i, (x, g) in enumerate(zip(arrays, grads, strict=True)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "output seems independent of input" (floor, ...)
            expected = autograd.grad(lambda *a: anp.sum(case.fn(AG, *a) * w), i)(*arrays)
        assert g.shape == x.shape and g.dtype == np.float64
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-300, err_msg=f"input {i}")


@pytest.mark.parametrize("case", [c for c in CASES if "torch" in c.oracles], ids=lambda c: c.id)
def test_matches_torch(case: Case) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    arrays = _inputs(case)
    value, grads = _chainrule_vjp(case, arrays)
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in arrays]
    out = case.fn(TorchNamespace(torch), *ts)
    np.testing.assert_allclose(value, out.detach().numpy(), rtol=1e-12, atol=1e-15)
    out.backward(torch.from_numpy(_cotangent(tuple(out.shape))))
    for i, (t, g) in enumerate(zip(ts, grads, strict=True)):
        want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-300, err_msg=f"input {i}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
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


# --- edges, with values derived by hand ----------------------------------------------------------

def test_prod_with_zeros_matches_torch_and_hand_values() -> None:
    # prod([2, 0, 3]) = 0: d/dx = [0*3, 2*3, 2*0] = [0, 6, 0]; two zeros give all zeros.
    x = cr.tensor([[2.0, 0.0, 3.0], [0.0, 5.0, 0.0]], requires_grad=True)
    cr.prod(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    y = cr.tensor([[2.0, 0.0, 3.0], [1.5, 5.0, -2.0]], requires_grad=True)
    (cr.prod(y, axis=0) * cr.tensor([1.0, -2.0, 0.5])).sum().backward()
    ty = torch.tensor(y.data, requires_grad=True)
    (torch.prod(ty, 0) * torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-15)


def test_cumprod_with_zeros_matches_torch() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    data = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 3.0, 0.0, 0.5]])
    w = np.array([[1.0, -2.0, 0.5, 3.0], [0.25, 1.0, -1.0, 2.0]])
    x = cr.tensor(data, requires_grad=True)
    cr.cumprod(x, axis=1).backward(w)
    tx = torch.tensor(data, requires_grad=True)
    torch.cumprod(tx, 1).backward(torch.tensor(w))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-14)
    # by hand, row 0: cumprod = [1.5, 0, 0, 0]; d/dx1 = w1*1.5 + w2*1.5*2 + w3*1.5*2*(-1)
    assert x.grad[0, 1] == pytest.approx(-2.0 * 1.5 + 0.5 * 3.0 + 3.0 * -3.0)


def test_expm1_and_arcsin_gradients_at_the_extremes() -> None:
    """No cancellation: d expm1/dx = e^x (not expm1 + 1, which is 0 below -37 in float64)."""
    for dtype, x in ((np.float64, -40.0), (np.float32, -20.0)):
        t = cr.tensor(np.array([x], dtype=dtype), requires_grad=True)
        cr.expm1(t).sum().backward()
        assert t.grad.dtype == dtype
        np.testing.assert_allclose(t.grad, np.exp(np.array([x], dtype=dtype)), rtol=1e-6)
    a = 1 - 2.0 ** -40  # (1 - a)(1 + a) is exact here; 1 - a*a loses half the digits
    t = cr.tensor([a], requires_grad=True)
    cr.arcsin(t).sum().backward()
    np.testing.assert_allclose(t.grad, [1 / np.sqrt(2.0 ** -40 * (2 - 2.0 ** -40))], rtol=1e-15)
    t = cr.tensor([1e200], requires_grad=True)
    cr.arcsinh(t).sum().backward()  # 1 / sqrt(x^2 + 1) = 1e-200, not 1/inf = 0
    np.testing.assert_allclose(t.grad, [1e-200], rtol=1e-15)


def test_fmax_gives_ties_to_the_first_argument_and_ignores_nan_as_torch() -> None:
    a = cr.tensor([1.0, 2.0, np.nan, 0.0], requires_grad=True)
    b = cr.tensor([1.0, 3.0, 1.0, np.nan], requires_grad=True)
    out = cr.fmax(a, b)
    np.testing.assert_array_equal(out.data, [1.0, 3.0, 1.0, 0.0])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad, [0.0, 1.0, 1.0, 0.0])
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle; not installed")
    ta = torch.tensor([1.0, 2.0, np.nan, 0.0], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([1.0, 3.0, 1.0, np.nan], dtype=torch.float64, requires_grad=True)
    torch.fmax(ta, tb).sum().backward()
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())


def test_nan_to_num_passes_gradient_only_where_finite() -> None:
    x = cr.tensor([1.0, np.nan, np.inf, -np.inf, -2.0], requires_grad=True)
    y = cr.nan_to_num(x, nan=0.5, posinf=10.0, neginf=-10.0)
    np.testing.assert_array_equal(y.data, [1.0, 0.5, 10.0, -10.0, -2.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 0.0, 0.0, 1.0])


def test_sort_with_ties_sends_each_gradient_to_one_element() -> None:
    x = cr.tensor(SORT_TIES, requires_grad=True)
    s = cr.sort(x)
    np.testing.assert_array_equal(s.data, np.sort(SORT_TIES))
    s.backward(np.array([1.0, 10.0, 100.0, 1000.0]))
    # stable order: -1.0 (index 1) first, then the 0.5 at index 0, then the one at index 2
    np.testing.assert_array_equal(x.grad, [10.0, 1.0, 100.0, 1000.0])


def test_logsumexp_is_finite_at_the_extremes() -> None:
    for dtype in (np.float32, np.float64):
        x = cr.tensor(np.array([1e4, 1e4 - 1, -1e4], dtype=dtype), requires_grad=True)
        out = cr.logsumexp(x)
        assert out.dtype == dtype and np.isfinite(out.item())
        out.backward()
        e = np.exp(np.array([0.0, -1.0]))
        # float32 holds 1e4 + 0.31 to ~5e-4, so e^(x - result) is good to ~1e-3 there
        rtol = 1e-3 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(x.grad, np.append(e / e.sum(), 0.0), rtol=rtol)
    assert cr.logsumexp(cr.tensor([-np.inf, -np.inf])).item() == -np.inf


def test_var_is_two_pass_so_large_offsets_do_not_cancel() -> None:
    x = np.array([1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0])
    assert cr.var(x).item() == pytest.approx(2 / 3, rel=1e-12)
    assert cr.std(x, ddof=1).item() == pytest.approx(1.0, rel=1e-12)


def test_non_differentiable_functions_carry_no_gradient() -> None:
    x = cr.tensor([[0.5, np.nan, 3.0], [-1.0, 2.0, np.inf]], requires_grad=True)
    for name, call in [("argmax", lambda: cr.argmax(x, axis=1)), ("argmin", lambda: cr.argmin(x)),
                       ("any", lambda: cr.any(x > 1, axis=0)), ("all", lambda: cr.all(x, keepdims=True)),
                       ("isfinite", lambda: cr.isfinite(x)), ("isnan", lambda: cr.isnan(x)),
                       ("isinf", lambda: cr.isinf(x)),
                       ("logical_and", lambda: cr.logical_and(x > 0, x < 3)),
                       ("logical_or", lambda: cr.logical_or(x > 0, x < 3)),
                       ("logical_xor", lambda: cr.logical_xor(x > 0, x < 3)),
                       ("logical_not", lambda: cr.logical_not(x > 0))]:
        out = call()
        assert isinstance(out, cr.Tensor) and not out.requires_grad, name
    np.testing.assert_array_equal(cr.argmax(x.data[:, [0, 2]], axis=1).data, [1, 1])
    np.testing.assert_array_equal(cr.isfinite(x).data, np.isfinite(x.data))


def test_rounding_gives_a_zero_gradient_like_torch() -> None:
    x = cr.tensor([-1.5, -0.2, 0.0, 0.7, 2.5], requires_grad=True)
    for fn in (cr.sign, cr.floor, cr.ceil, cr.trunc, cr.round):
        x.grad = None
        fn(x).sum().backward()
        np.testing.assert_array_equal(x.grad, np.zeros(5))
    np.testing.assert_array_equal(cr.round(x, 0).data, np.round(x.data))


def test_creation_functions() -> None:
    np.testing.assert_array_equal(cr.eye(3, 4, k=1).data, np.eye(3, 4, k=1))
    assert cr.eye(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(cr.linspace(0, 1, 5).data, np.linspace(0, 1, 5))
    t, step = cr.linspace(0.0, 2.0, 4, endpoint=False, retstep=True)
    assert step == 0.5 and t.shape == (4,)
    assert cr.linspace(0, 1, 3, dtype=np.float32).dtype == np.float32


def test_a_list_holding_tensors_keeps_its_gradient() -> None:
    x = cr.tensor(0.3, requires_grad=True)
    cr.sin([x, 2 * x]).sum().backward()
    assert x.grad == pytest.approx(np.cos(0.3) + 2 * np.cos(0.6), rel=1e-14)


def test_atleast_with_several_inputs_returns_a_tuple() -> None:
    a, b = cr.atleast_1d(1.0, [2.0, 3.0])
    assert a.shape == (1,) and b.shape == (2,)
    assert cr.atleast_2d(np.zeros(3)).shape == (1, 3)


# --- NumPy's own functions on Tensors (np.sin(t)): routed here by chainrule.numpy_dispatch ------

def _dispatching() -> bool:
    return cr.Tensor.__array_ufunc__ is not None and hasattr(cr.Tensor, "__array_function__")


X23 = np.array([[0.3, -1.2, 0.8], [1.5, 0.4, -0.6]])
# (NumPy's callable, how to call it on the (2, 3) tensor t); each maps to the numpy_api
# function of the same name (remainder: mod)
DISPATCH = [(getattr(np, n), (lambda f: lambda t: f(t))(getattr(np, n))) for n in (
    "sin", "cos", "tan", "arctan", "sinh", "cosh", "arcsinh", "exp2", "expm1", "square", "sign",
    "floor", "ceil", "trunc", "round", "tanh", "nan_to_num", "prod", "cumsum", "cumprod", "var",
    "std", "ravel", "flip", "sort", "argmax", "argmin", "any", "all", "isfinite", "isnan",
    "isinf", "logical_not", "atleast_1d", "atleast_2d", "atleast_3d", "tril", "triu", "diagonal",
    "trace")] + [
    (np.arcsin, lambda t: np.arcsin(t * 0.5)), (np.arccos, lambda t: np.arccos(t * 0.5)),
    (np.arctanh, lambda t: np.arctanh(t * 0.5)), (np.arccosh, lambda t: np.arccosh(t * t + 1.5)),
    (np.log2, lambda t: np.log2(t * t + 0.5)), (np.log10, lambda t: np.log10(t * t + 0.5)),
    (np.log1p, lambda t: np.log1p(t * t)), (np.reciprocal, lambda t: np.reciprocal(t + 3.0)),
    (np.arctan2, lambda t: np.arctan2(t, 2.0)), (np.hypot, lambda t: np.hypot(t, 2.0)),
    (np.mod, lambda t: np.mod(t, 0.7)), (np.fmod, lambda t: np.fmod(t, 0.7)),
    (np.fmax, lambda t: np.fmax(t, 0.1)), (np.fmin, lambda t: np.fmin(t, 0.1)),
    (np.logaddexp, lambda t: np.logaddexp(t, 0.5)),
    (np.logical_and, lambda t: np.logical_and(t > 0, t < 1)),
    (np.logical_or, lambda t: np.logical_or(t > 0, t < -1)),
    (np.logical_xor, lambda t: np.logical_xor(t > 0, t < 1)),
    (np.einsum, lambda t: np.einsum("ij,kj->ik", t, t)), (np.dot, lambda t: np.dot(t, t.T)),
    (np.inner, lambda t: np.inner(t, t)), (np.outer, lambda t: np.outer(t, t)),
    (np.tensordot, lambda t: np.tensordot(t, t, axes=([1], [1]))),
    (np.diag, lambda t: np.diag(t[0])), (np.moveaxis, lambda t: np.moveaxis(t, 0, -1)),
    (np.roll, lambda t: np.roll(t, 1, axis=1)), (np.repeat, lambda t: np.repeat(t, 2, axis=0)),
    (np.tile, lambda t: np.tile(t, (2, 1))), (np.pad, lambda t: np.pad(t, 1, mode="edge")),
    (np.take_along_axis, lambda t: np.take_along_axis(t, np.array([[2, 0], [1, 1]]), 1)),
    (np.split, lambda t: np.split(t, 3, axis=1)[1]),
    (np.array_split, lambda t: np.array_split(t, 2, axis=1)[0]),
    (np.vstack, lambda t: np.vstack([t, t[0]])), (np.hstack, lambda t: np.hstack([t, t])),
    (np.column_stack, lambda t: np.column_stack([t[0], t[1]])),
]


def test_every_numpy_callable_routed_to_numpy_api_has_a_dispatch_case() -> None:
    from chainrule.numpy_dispatch import HANDLED_FUNCTIONS, HANDLED_UFUNCS

    ours = {f for table in (HANDLED_FUNCTIONS, HANDLED_UFUNCS) for f, impl in table.items()
            if impl.__module__ == "chainrule.numpy_api"}
    assert len(ours) >= 70
    missing = {f.__name__ for f in ours} - {f.__name__ for f, _ in DISPATCH}
    assert not missing, f"NumPy callables routed to numpy_api without a dispatch case: {sorted(missing)}"


@pytest.mark.skipif(not _dispatching(), reason="Tensor.__array_ufunc__/__array_function__ "
                    "(issue 13) are not on this branch")
@pytest.mark.parametrize("np_func, call", DISPATCH, ids=[f.__name__ for f, _ in DISPATCH])
def test_numpy_function_on_a_tensor_is_chainrules(np_func: Any, call: Callable) -> None:
    t = cr.tensor(X23, requires_grad=True)
    out = call(t)
    assert isinstance(out, cr.Tensor), f"np.{np_func.__name__} returned {type(out).__name__}"
    np.testing.assert_allclose(out.data, call(X23.copy()), rtol=1e-14, atol=1e-15)
    if out.requires_grad:
        out.backward(np.ones(out.shape))
        assert t.grad is not None and t.grad.shape == X23.shape


def _numpy_callables() -> list[tuple[str, Any]]:
    """Every dispatched function and ufunc of numpy, numpy.linalg and numpy.fft, by qualified name."""
    found = []
    for module in (np, np.linalg, np.fft):
        for name in sorted(dir(module)):
            f = getattr(module, name)
            # The callables that reach a Tensor's NEP 13/18 hooks: ufuncs and the functions
            # NumPy dispatches (never np.test & co., which do other things when called).
            if name.startswith("_") or not (isinstance(f, np.ufunc) or hasattr(f, "_implementation")):
                continue
            found.append((f"{module.__name__}.{name}", f))
    return found


def test_an_unsupported_numpy_function_is_named_and_the_advice_exists() -> None:
    """The TypeError names the function as the user wrote it (numpy.linalg.svd, not numpy.svd)
    and offers a chainrule function only when that function exists."""
    t = cr.tensor(X23, requires_grad=True)
    callables = _numpy_callables()
    aliases: dict[int, set[str]] = {}  # np.bitwise_invert is np.invert: either name is right
    for qualified, f in callables:
        aliases.setdefault(id(f), set()).add(qualified)
    refused = 0
    for qualified, f in callables:
        try:
            with warnings.catch_warnings():  # deprecated NumPy names warn when called
                warnings.simplefilter("ignore")
                f(t)
        except TypeError as exc:
            message = str(exc)
            if "is not supported on chainrule Tensors" not in message:
                continue
            refused += 1
            named = message.split(" is not supported")[0]
            assert named in aliases[id(f)], f"{qualified} reported as {named}"
            for offered in re.findall(r"use (cr|Tensor)\.(\w+)", message):
                owner = cr if offered[0] == "cr" else cr.Tensor
                assert hasattr(owner, offered[1]), f"{qualified}: offers {offered} which does not exist"
        except Exception:  # noqa: BLE001 - other functions fail for their own reasons (arity, dtype)
            continue
    assert refused >= 50, f"only {refused} NumPy functions refused: the scan found too few"
