"""Second derivatives: every primitive's, through the recorded backward pass (create_graph).

For each case of the first-order tables (``test_ops``, ``test_activations``, ``test_losses``)
the Hessian-vector product of F(x) = sum(f(x) * w) is computed three ways and compared to
1e-10 in float64: by chainrule (``grad(..., create_graph=True)`` then ``grad`` of gradient . v),
by HIPS autograd (``grad`` of ``grad``) and by PyTorch (``torch.autograd.grad`` twice). A case
without an oracle is checked against central differences of the first-order gradient.
``test_every_primitive_has_a_second_order_case`` fails when a registered primitive has none.

Then the transforms (``cr.jacobian``/``hessian``/``hvp``/``vhp``/``vjp``/``jvp``) against
``torch.autograd.functional``, Hessians of small networks, a gradient penalty, a Newton step and
the semantics of ``create_graph`` itself.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import test_activations as acts
import test_losses as losses
import test_numpy_api as numpy_api
import test_ops as core

import chainrule as cr
import chainrule.functional as F
from chainrule import ops
from chainrule.autodiff import topological_order

torch = pytest.importorskip("torch", reason="PyTorch is an oracle of these tests; not installed")

RTOL, ATOL = 1e-10, 1e-11


# --- the three Hessian-vector products ------------------------------------------------------

def _cr_hvp(f: Callable, arrays: list, wrt: tuple, w: np.ndarray, vs: list) -> list[np.ndarray]:
    xs = [cr.tensor(a, requires_grad=True) if i in wrt else a for i, a in enumerate(arrays)]
    leaves = [xs[i] for i in wrt]
    out = f(*xs)
    gs = cr.grad((out * w).sum(), leaves, create_graph=True, allow_unused=True)
    terms = [(g * v).sum() for g, v in zip(gs, vs, strict=False) if g is not None and g.requires_grad]
    if not terms:  # the gradient is constant: the second derivative is 0
        return [np.zeros_like(arrays[i]) for i in wrt]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    hv = cr.grad(total, leaves, allow_unused=True)
    return [np.zeros_like(arrays[i]) if h is None else h.data for i, h in zip(wrt, hv, strict=False)]


def _torch_hvp(f: Callable, arrays: list, wrt: tuple, w: np.ndarray, vs: list) -> list[np.ndarray]:
    xs = [torch.tensor(a, requires_grad=i in wrt) if isinstance(a, np.ndarray) else a
          for i, a in enumerate(arrays)]
    leaves = [xs[i] for i in wrt]
    out = f(*xs)
    gs = torch.autograd.grad((out * torch.from_numpy(np.asarray(w))).sum(), leaves,
                             create_graph=True, allow_unused=True)
    terms = [(g * torch.from_numpy(v)).sum() for g, v in zip(gs, vs, strict=False)
             if g is not None and g.requires_grad]
    if not terms:
        return [np.zeros_like(arrays[i]) for i in wrt]
    hv = torch.autograd.grad(sum(terms), leaves, allow_unused=True)
    # force=True: torch gives a "ZeroTensor" for a provably zero second derivative (abs)
    return [np.zeros_like(arrays[i]) if h is None else h.numpy(force=True)
            for i, h in zip(wrt, hv, strict=True)]


def _autograd_hvp(f: Callable, arrays: list, wrt: tuple, w: np.ndarray, vs: list) -> list[np.ndarray]:
    def substitute(ps):
        args = list(arrays)
        for i, p in zip(wrt, ps, strict=False):
            args[i] = p
        return args

    def loss(*ps):
        return anp.sum(f(*substitute(ps)) * w)

    def directional(*ps):
        return sum(anp.sum(autograd.grad(loss, k)(*ps) * v) for k, v in enumerate(vs))

    ps = [arrays[i] for i in wrt]
    with warnings.catch_warnings():  # "output seems independent of input": a zero Hessian
        warnings.simplefilter("ignore", UserWarning)
        return [np.asarray(autograd.grad(directional, k)(*ps)) for k in range(len(wrt))]


def _fd_hvp(f: Callable, arrays: list, wrt: tuple, w: np.ndarray, vs: list) -> list[np.ndarray]:
    """Central differences of chainrule's first-order gradient along v (tested elsewhere)."""
    def gradient(shift):
        xs = [cr.tensor(a + shift * vs[wrt.index(i)], requires_grad=True) if i in wrt else a
              for i, a in enumerate(arrays)]
        out = f(*xs)
        gs = cr.grad((out * w).sum(), [xs[i] for i in wrt], allow_unused=True)
        return [np.zeros_like(arrays[i]) if g is None else g.data for i, g in zip(wrt, gs, strict=False)]

    eps = 1e-5
    return [(p - m) / (2 * eps) for p, m in zip(gradient(eps), gradient(-eps), strict=False)]


def _compare(actual: list, expected: list, label: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
        scale = max(1.0, float(np.max(np.abs(e))) if np.size(e) else 1.0)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=f"{label}: input {k}")


def _draw(rng: np.random.Generator, arrays: list, wrt: tuple, out_shape: tuple) -> tuple:
    w = rng.standard_normal(out_shape)
    vs = [rng.standard_normal(np.shape(arrays[i])) for i in wrt]
    return w, vs


# --- core primitives (test_ops.CASES) -------------------------------------------------------

@pytest.mark.parametrize("case", core.CASES, ids=lambda c: c.id)
def test_core_second_derivative(case: core.Case) -> None:
    arrays = core._inputs(case)
    wrt = tuple(range(len(arrays)))
    out = case.fn(core.CR, *[cr.tensor(a) for a in arrays])
    rng = np.random.default_rng(3)
    w, vs = _draw(rng, arrays, wrt, out.shape)
    ours = _cr_hvp(lambda *xs: case.fn(core.CR, *xs), arrays, wrt, w, vs)
    if not case.oracles:
        _compare(ours, _fd_hvp(lambda *xs: case.fn(core.CR, *xs), arrays, wrt, w, vs), case.id,
                 rtol=1e-6, atol=1e-7)
    if "autograd" in case.oracles:
        _compare(ours, _autograd_hvp(lambda *xs: case.fn(core.AG, *xs), arrays, wrt, w, vs),
                 f"{case.id} vs autograd")
    if "torch" in case.oracles:
        _compare(ours, _torch_hvp(lambda *xs: case.fn(core.torch_namespace(torch), *xs), arrays,
                                  wrt, w, vs), f"{case.id} vs torch")


# --- NumPy's operations (test_numpy_api.CASES: the primitives of ops_elementwise, ops_reduce,
# ops_linalg and the compositions of numpy_api) --------------------------------------------------

@pytest.mark.parametrize("case", numpy_api.CASES, ids=lambda c: c.id)
def test_numpy_api_second_derivative(case: numpy_api.Case) -> None:
    arrays = numpy_api._inputs(case)
    wrt = tuple(range(len(arrays)))
    out = case.fn(numpy_api.CR, *[cr.tensor(a) for a in arrays])
    w, vs = _draw(np.random.default_rng(3), arrays, wrt, out.shape)
    ours = _cr_hvp(lambda *xs: case.fn(numpy_api.CR, *xs), arrays, wrt, w, vs)
    checked = False
    if "autograd" in case.oracles:
        _compare(ours, _autograd_hvp(lambda *xs: case.fn(numpy_api.AG, *xs), arrays, wrt, w, vs),
                 f"{case.id} vs autograd")
        checked = True
    if "torch" in case.oracles:
        try:
            theirs = _torch_hvp(lambda *xs: case.fn(numpy_api.TorchNamespace(torch), *xs), arrays,
                                wrt, w, vs)
        except RuntimeError as exc:  # torch lacks some double backwards ("not implemented")
            if "not implemented" not in str(exc):
                raise
        else:
            _compare(ours, theirs, f"{case.id} vs torch")
            checked = True
    if not checked:
        _compare(ours, _fd_hvp(lambda *xs: case.fn(numpy_api.CR, *xs), arrays, wrt, w, vs),
                 f"{case.id} vs differences", rtol=1e-6, atol=1e-7)


# --- activations (test_activations.CASES) and linear ------------------------------------------

@pytest.mark.parametrize("case", acts.CASES, ids=acts.IDS)
def test_activation_second_derivative(case: acts.Activation) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(scale=2.0, size=(3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kinks, where the second derivative jumps
    w, vs = _draw(rng, [x], (0,), x.shape)
    ours = _cr_hvp(case.ours, [x], (0,), w, vs)
    _compare(ours, _autograd_hvp(case.auto, [x], (0,), w, vs), f"{case!r} vs autograd")
    if case.name == "celu":  # torch's celu double backward is off by ~1e-8 relative; autograd agrees
        return
    if case.name == "hardsigmoid":  # torch 2.13 has no double backward for it (aten::hardsigmoid_backward)
        return
    _compare(ours, _torch_hvp(lambda t: case.torch(torch, t), [x], (0,), w, vs), f"{case!r} vs torch")


LINEAR = [((5, 3), True), ((5, 3), False), ((3,), True), ((2, 4, 3), True)]


@pytest.mark.parametrize("x_shape,bias", LINEAR, ids=[f"{s}-bias={b}" for s, b in LINEAR])
def test_linear_second_derivative(x_shape: tuple, bias: bool) -> None:
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((2, 3))]
    if bias:
        arrays.append(rng.standard_normal(2))
    wrt = tuple(range(len(arrays)))
    out_shape = x_shape[:-1] + (2,)
    w, vs = _draw(rng, arrays, wrt, out_shape)
    # The product with a second op makes the Hessian non-zero: x W^T is bilinear.
    ours = _cr_hvp(lambda *a: F.linear(*a) ** 2, arrays, wrt, w, vs)
    _compare(ours, _autograd_hvp(lambda x, W, b=0.0: (x @ W.T + b) ** 2, arrays, wrt, w, vs),
             "linear vs autograd")
    _compare(ours, _torch_hvp(lambda *a: torch.nn.functional.linear(*a) ** 2, arrays, wrt, w, vs),
             "linear vs torch")


# --- losses (test_losses.CASES) -----------------------------------------------------------------

@pytest.mark.parametrize("case, reduction", losses.PARAMS)
def test_loss_second_derivative(case: losses.Loss, reduction: str) -> None:
    rng = np.random.default_rng(13)
    args = case.make(rng)
    out_shape = np.shape(case.ours(*args, reduction=reduction).data)
    w, vs = _draw(rng, args, case.diff, out_shape)

    def ours(*a):
        return case.ours(*a, reduction=reduction)

    result = _cr_hvp(ours, args, case.diff, w, vs)
    _compare(result, _autograd_hvp(lambda *a: case.auto(*a, reduction=reduction), args, case.diff,
                                   w, vs), f"{case.label} vs autograd")
    if case.label.startswith("multi_margin"):  # torch: "derivative for multi_margin_loss_backward
        return  # is not implemented"; autograd above is the oracle
    _compare(result, _torch_hvp(lambda *a: case.torch(torch, *a, reduction=reduction), args,
                                case.diff, w, vs), f"{case.label} vs torch")


def test_ndtr_second_derivative() -> None:
    """Phi (gelu's VJP calls it, so that gelu's second derivative exists) against torch."""
    from chainrule.functional.activations import _ndtr

    x = np.random.default_rng(2).normal(size=(4,))
    w, vs = _draw(np.random.default_rng(3), [x], (0,), (4,))
    ours = _cr_hvp(lambda t: _ndtr(t), [x], (0,), w, vs)
    _compare(ours, _torch_hvp(torch.special.ndtr, [x], (0,), w, vs), "ndtr vs torch")
    _compare(ours, _fd_hvp(lambda t: _ndtr(t), [x], (0,), w, vs), "ndtr vs differences",
             rtol=1e-6, atol=1e-7)


# --- convolution, pooling, padding and gathering (issue 12's layers) ----------------------------

TF = torch.nn.functional
LAYERS = [
    ("conv1d", (2, 3, 7), (4, 3, 3), (4,),
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
     lambda x, w, b: TF.conv1d(x, w, b, stride=2, padding=1)),
    ("conv2d-groups-dilation", (1, 4, 6, 6), (4, 2, 2, 2), None,
     lambda x, w: F.conv2d(x, w, padding=1, dilation=2, groups=2),
     lambda x, w: TF.conv2d(x, w, padding=1, dilation=2, groups=2)),
    ("conv2d-bias", (2, 2, 5, 5), (3, 2, 3, 3), (3,),
     lambda x, w, b: F.conv2d(x, w, b), lambda x, w, b: TF.conv2d(x, w, b)),
    ("max_pool2d", (2, 3, 6, 6), None, None,
     lambda x: F.max_pool2d(x, 2) * x[:, :, ::2, ::2], lambda x: TF.max_pool2d(x, 2) * x[:, :, ::2, ::2]),
    ("avg_pool2d", (1, 2, 6, 6), None, None,
     lambda x: F.avg_pool2d(x, 3, stride=2, padding=1) ** 2,
     lambda x: TF.avg_pool2d(x, 3, stride=2, padding=1) ** 2),
    ("pad", (2, 3, 4), None, None,
     lambda x: F.pad(x, (1, 2)) ** 3, lambda x: TF.pad(x, (1, 2)) ** 3),
]
# The primitives each case's recorded backward must contain: the second derivative of a
# convolution differentiates the VJP primitives conv_input_grad and conv_weight_grad, that of
# max pooling the scatter-add its gather's VJP records.
LAYER_OPS = {"conv1d": {"conv_bias", "conv_input_grad", "conv_weight_grad"},
             "conv2d-groups-dilation": {"conv", "conv_input_grad", "conv_weight_grad"},
             "conv2d-bias": {"conv_bias", "conv_input_grad", "conv_weight_grad"},
             "max_pool2d": {"gather", "scatter_add"}, "avg_pool2d": {"conv"}, "pad": {"pad"}}


@pytest.mark.parametrize("name,xs,ws,bs,ours,theirs", LAYERS, ids=[c[0] for c in LAYERS])
def test_layer_second_derivative(name, xs, ws, bs, ours, theirs) -> None:
    rng = np.random.default_rng(37)
    arrays = [rng.standard_normal(s) for s in (xs, ws, bs) if s is not None]
    wrt = tuple(range(len(arrays)))
    out = ours(*[cr.tensor(a) for a in arrays])
    w, vs = _draw(rng, arrays, wrt, out.shape)
    result = _cr_hvp(ours, arrays, wrt, w, vs)
    _compare(result, _torch_hvp(theirs, arrays, wrt, w, vs), f"{name} vs torch")
    leaves = [cr.tensor(a, requires_grad=True) for a in arrays]
    gs = cr.grad((ours(*leaves) * w).sum(), leaves, create_graph=True, allow_unused=True)
    recorded = set()
    for g in gs:
        if g is not None:
            recorded |= {t.op for t in topological_order(g) if t.op is not None}
    forward = {t.op for t in topological_order(ours(*leaves)) if t.op is not None}
    assert LAYER_OPS[name] <= recorded | forward, (name, recorded | forward)


def test_every_primitive_has_a_second_order_case() -> None:
    covered = {c.op for c in core.CASES} | {c.op for c in numpy_api.CASES}
    covered |= {c.name for c in acts.CASES}
    covered |= {c.label.split("(")[0] for c in losses.CASES}
    covered |= {"linear", "linear_no_bias", "ndtr"}  # the tests just above
    covered |= set().union(*LAYER_OPS.values())
    # Tests register throw-away primitives named test_* (test_engine_buffers): not chainrule's.
    registered = {name for name in ops.PRIMITIVES if not name.startswith("test_")}
    missing = registered - covered
    assert not missing, f"registered primitives without a second-order test: {sorted(missing)}"


# --- create_graph semantics -----------------------------------------------------------------

def test_third_derivative_of_a_power_by_hand() -> None:
    # x^4: 4x^3, 12x^2, 24x, at x = 1.5: 13.5, 27, 36
    x = cr.tensor(1.5, requires_grad=True)
    (d1,) = cr.grad(x ** 4, [x], create_graph=True)
    (d2,) = cr.grad(d1, [x], create_graph=True)
    (d3,) = cr.grad(d2, [x])
    assert (d1.item(), d2.item(), d3.item()) == (13.5, 27.0, 36.0)


def test_backward_create_graph_leaves_a_differentiable_grad() -> None:
    x = cr.tensor([1.0, -2.0, 0.5], requires_grad=True)
    (cr.exp(x) * x).sum().backward(create_graph=True)
    assert isinstance(x.grad, cr.Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, np.exp(x.data) * (1 + x.data), rtol=1e-15)
    (h,) = cr.grad(x.grad.sum(), [x])  # d/dx of e^x (1 + x) is e^x (2 + x)
    np.testing.assert_allclose(h.data, np.exp(x.data) * (2 + x.data), rtol=1e-15)


def test_create_graph_retains_the_graph_as_pytorch() -> None:
    x = cr.tensor([0.3, 0.7], requires_grad=True)
    y = (x * x).sum()
    cr.grad(y, [x], create_graph=True)
    (again,) = cr.grad(y, [x])  # still there: create_graph implies retain_graph; now freed
    np.testing.assert_allclose(again.data, 2 * x.data)
    with pytest.raises(RuntimeError, match="second time"):
        cr.grad(y, [x])


def test_a_constant_gradient_does_not_require_grad() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (g,) = cr.grad((3 * x).sum(), [x], create_graph=True)
    assert not g.requires_grad  # as torch: d(3x)/dx = 3 depends on nothing
    np.testing.assert_array_equal(g.data, [3.0, 3.0])


def test_grad_outputs_tensor_with_a_graph_is_differentiated_through() -> None:
    # v^T J with v = x itself: d/dx of sum(x * d(x^2)/dx) = d/dx sum(2 x^2) = 4x
    x = cr.tensor([1.0, -3.0], requires_grad=True)
    y = x * x
    (vjp,) = cr.grad(y, [x], grad_outputs=x, create_graph=True)
    np.testing.assert_allclose(vjp.data, 2 * x.data * x.data)
    (h,) = cr.grad(vjp.sum(), [x])
    np.testing.assert_allclose(h.data, 4 * x.data)


def test_recorded_backward_of_a_float32_graph_stays_float32() -> None:
    x = cr.tensor(np.array([0.5, -1.0], np.float32), requires_grad=True)
    (g,) = cr.grad((F.tanh(x) * x).sum(), [x], create_graph=True)
    assert g.dtype == np.float32
    (h,) = cr.grad(g.sum(), [x])
    assert h.dtype == np.float32
    t = torch.tensor([0.5, -1.0], dtype=torch.float32, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.tanh(t) * t).sum(), [t], create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), [t])
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-5)


def test_recorded_graph_holds_only_dispatched_ops() -> None:
    """The gradient's own graph is made of registered primitives: nothing was computed on the
    side as a plain array (which would have cut the second derivative)."""
    x = cr.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    loss = F.cross_entropy(F.tanh(x), np.array([0, 2]))
    (g,) = cr.grad(loss, [x], create_graph=True)
    names = {t.op for t in topological_order(g) if t.op is not None}
    assert names <= set(ops.PRIMITIVES) and "softmax" in names and "tanh" in names


# --- transforms against torch.autograd.functional ---------------------------------------------

def _f_two(x: Any, y: Any) -> Any:
    return (F.tanh(x) * y.sum() + x ** 3).sum() if isinstance(x, cr.Tensor) else \
        (torch.tanh(x) * y.sum() + x ** 3).sum()


def _f_vec(x: Any, y: Any) -> Any:
    if isinstance(x, cr.Tensor):
        return F.sigmoid(x @ y), cr.exp(x).sum() * y
    return torch.sigmoid(x @ y), torch.exp(x).sum() * y


RNG = np.random.default_rng(17)
X2, Y2 = RNG.standard_normal((2, 3)), RNG.standard_normal((3,))


def _tt(*arrays: np.ndarray) -> tuple:
    return tuple(torch.tensor(a, requires_grad=True) for a in arrays)


def _assert_tree(ours: Any, theirs: Any) -> None:
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=False):
            _assert_tree(a, b)
        return
    assert isinstance(ours, cr.Tensor) and ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_jacobian_tuple_inputs_and_outputs() -> None:
    ours = cr.jacobian(_f_vec, (cr.tensor(X2), cr.tensor(Y2)))
    theirs = torch.autograd.functional.jacobian(_f_vec, _tt(X2, Y2))
    _assert_tree(ours, theirs)


def test_jacobian_single() -> None:
    x = RNG.standard_normal(4)
    ours = cr.jacobian(lambda t: F.softmax(t) * t, cr.tensor(x))
    theirs = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1) * t, torch.tensor(x))
    _assert_tree(ours, theirs)


def test_hessian_tuple_and_single() -> None:
    _assert_tree(cr.hessian(_f_two, (cr.tensor(X2), cr.tensor(Y2))),
                 torch.autograd.functional.hessian(_f_two, _tt(X2, Y2)))
    x = RNG.standard_normal((2, 2))
    _assert_tree(cr.hessian(lambda t: (F.softplus(t) * t).sum(), cr.tensor(x)),
                 torch.autograd.functional.hessian(
                     lambda t: (torch.nn.functional.softplus(t) * t).sum(), torch.tensor(x)))


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp"])
def test_products(name: str) -> None:
    ours_fn, theirs_fn = getattr(cr, name), getattr(torch.autograd.functional, name)
    if name in ("hvp", "vhp"):
        fn, v = _f_two, (RNG.standard_normal(X2.shape), RNG.standard_normal(Y2.shape))
    elif name == "vjp":
        fn, v = _f_vec, (RNG.standard_normal(2), RNG.standard_normal(3))
    else:
        fn, v = _f_vec, (RNG.standard_normal(X2.shape), RNG.standard_normal(Y2.shape))
    ours = ours_fn(fn, (cr.tensor(X2), cr.tensor(Y2)), tuple(cr.tensor(a) for a in v))
    theirs = theirs_fn(fn, _tt(X2, Y2), tuple(torch.tensor(a) for a in v))
    _assert_tree(ours, theirs)


def test_strict_and_unused_inputs_as_torch() -> None:
    def f(x: Any, y: Any) -> Any:
        return (x * 2).sum()

    x, y = cr.tensor([1.0, 2.0]), cr.tensor([3.0])
    jx, jy = cr.jacobian(f, (x, y))
    np.testing.assert_array_equal(jx.data, [2.0, 2.0])
    np.testing.assert_array_equal(jy.data, [0.0])  # unused: zeros, as torch without strict
    with pytest.raises(RuntimeError, match="does not depend"):
        cr.jacobian(f, (x, y), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        torch.autograd.functional.jacobian(lambda a, b: (a * 2).sum(), _tt(x.data, y.data), strict=True)


def test_create_graph_transforms_differentiate_again() -> None:
    # d/dx of the trace of the Hessian of sum(x^4) = sum(12 x^2) is 24 x
    x = cr.tensor([0.5, -1.0, 2.0], requires_grad=True)
    h = cr.hessian(lambda t: (t ** 4).sum(), x, create_graph=True)
    trace = (h * cr.tensor(np.eye(3))).sum()
    (g,) = cr.grad(trace, [x])
    np.testing.assert_allclose(g.data, 24 * x.data, rtol=1e-14)
    _, jv = cr.jvp(lambda t: t ** 3, x, cr.tensor([1.0, 1.0, 1.0]), create_graph=True)
    (g,) = cr.grad(jv.sum(), [x])  # jv = 3x^2: its gradient is 6x
    np.testing.assert_allclose(g.data, 6 * x.data, rtol=1e-14)


def test_transform_bad_input() -> None:
    with pytest.raises(ValueError, match="v may be omitted only"):
        cr.vjp(lambda t: t * 2, cr.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        cr.hvp(lambda t: t.sum(), cr.tensor([1.0, 2.0]), cr.tensor([1.0]))
    with pytest.raises(ValueError, match="single element"):
        cr.hessian(lambda t: t * 2, cr.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="must return a Tensor"):
        cr.jacobian(lambda t: 3.0, cr.tensor([1.0]))
    with pytest.raises(TypeError, match="floating point"):
        cr.jacobian(lambda t: t, cr.tensor([1, 2]))


# --- small networks: Hessians, a gradient penalty, a Newton step ------------------------------

def _mlp(params: tuple, x: Any, lib: str) -> Any:
    w1, b1, w2, b2 = params
    if lib == "cr":
        return F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2)
    tf = torch.nn.functional
    return tf.linear(torch.tanh(tf.linear(x, w1, b1)), w2, b2)


NET_RNG = np.random.default_rng(23)
PARAMS = (NET_RNG.standard_normal((3, 2)), NET_RNG.standard_normal(3), NET_RNG.standard_normal((2, 3)),
          NET_RNG.standard_normal(2))
XB, YB = NET_RNG.standard_normal((4, 2)), np.array([0, 1, 1, 0])


def test_hessian_of_a_small_network_matches_torch() -> None:
    def ours(*p):
        return F.cross_entropy(_mlp(p, XB, "cr"), YB)

    def theirs(*p):
        return torch.nn.functional.cross_entropy(_mlp(p, torch.from_numpy(XB), "torch"),
                                                 torch.from_numpy(YB))

    _assert_tree(cr.hessian(ours, tuple(cr.tensor(p) for p in PARAMS)),
                 torch.autograd.functional.hessian(theirs, _tt(*PARAMS)))


def test_hessian_of_a_sigmoid_mse_network_matches_autograd() -> None:
    def ours(w1, w2):
        return F.mse_loss(F.sigmoid(F.sigmoid(cr.tensor(XB) @ w1.T) @ w2.T), np.ones((4, 2)))

    def theirs(w1, w2):
        s = 1 / (1 + anp.exp(-(XB @ w1.T)))
        return anp.mean((1 / (1 + anp.exp(-(s @ w2.T))) - 1.0) ** 2)

    w1, w2 = PARAMS[0], PARAMS[2]
    h = cr.hessian(ours, (cr.tensor(w1), cr.tensor(w2)))
    expected = autograd.hessian(lambda flat: theirs(flat[:6].reshape(3, 2), flat[6:].reshape(2, 3)))(
        np.concatenate([w1.ravel(), w2.ravel()]))
    ours_flat = np.block([[h[0][0].data.reshape(6, 6), h[0][1].data.reshape(6, 6)],
                          [h[1][0].data.reshape(6, 6), h[1][1].data.reshape(6, 6)]])
    np.testing.assert_allclose(ours_flat, expected, rtol=1e-10, atol=1e-13)


def test_gradient_penalty_matches_torch() -> None:
    """WGAN-GP: the parameters' gradient of (|d D(x)/dx| - 1)^2, a gradient of a gradient."""
    ps = tuple(cr.tensor(p, requires_grad=True) for p in PARAMS)
    x = cr.tensor(XB, requires_grad=True)
    (gx,) = cr.grad(_mlp(ps, x, "cr")[:, 0].sum(), [x], create_graph=True)
    penalty = ((cr.sqrt((gx * gx).sum(axis=1)) - 1) ** 2).mean()
    penalty.backward()
    tps = _tt(*PARAMS)
    tx = torch.tensor(XB, requires_grad=True)
    (tgx,) = torch.autograd.grad(_mlp(tps, tx, "torch")[:, 0].sum(), [tx], create_graph=True)
    ((tgx.pow(2).sum(dim=1).sqrt() - 1) ** 2).mean().backward()
    for p, tp in zip(ps, tps, strict=False):
        if tp.grad is None:  # b2 does not enter d D(x)/dx
            assert p.grad is None
            continue
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_newton_step_solves_a_quadratic_exactly() -> None:
    # f(x) = 1/2 x^T A x - b^T x has its minimum at A^-1 b; one Newton step from anywhere lands there.
    rng = np.random.default_rng(29)
    m = rng.standard_normal((4, 4))
    a, b = m @ m.T + 4 * np.eye(4), rng.standard_normal(4)

    def f(x):
        return 0.5 * (x * (cr.tensor(a) @ x)).sum() - (cr.tensor(b) * x).sum()

    x0 = rng.standard_normal(4)
    h = cr.hessian(f, cr.tensor(x0))
    x = cr.tensor(x0, requires_grad=True)
    (g,) = cr.grad(f(x), [x])
    step = np.linalg.solve(h.data, g.data)
    np.testing.assert_allclose(x0 - step, np.linalg.solve(a, b), rtol=1e-12)
    np.testing.assert_allclose(h.data, a, rtol=1e-14)


def test_newton_step_on_logistic_regression_matches_torch() -> None:
    rng = np.random.default_rng(31)
    xs, ys = rng.standard_normal((20, 3)), (rng.random(20) > 0.5).astype(float)

    def loss(w):
        if isinstance(w, cr.Tensor):
            return F.binary_cross_entropy_with_logits(cr.tensor(xs) @ w, ys) + 0.1 * (w * w).sum()
        return (torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(xs) @ w,
                                                                      torch.from_numpy(ys))
                + 0.1 * (w * w).sum())

    w0 = rng.standard_normal(3)
    _, hv = cr.hvp(loss, cr.tensor(w0), cr.tensor([1.0, 0.0, -1.0]))
    _, thv = torch.autograd.functional.hvp(loss, torch.tensor(w0), torch.tensor([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(hv.data, thv.numpy(), rtol=1e-12)
    h = cr.hessian(loss, cr.tensor(w0)).data
    th = torch.autograd.functional.hessian(loss, torch.tensor(w0)).numpy()
    np.testing.assert_allclose(h, th, rtol=1e-12)


# --- jacobian's vectorize= and strategy= (torch.autograd.functional.jacobian's parameters) ------

def _tuples(tree: Any) -> Any:
    return tuple(_tuples(t) for t in tree) if isinstance(tree, (list, tuple)) else tree


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
def test_jacobian_vectorize_and_strategy_match_torch(strategy: str) -> None:
    ours = cr.jacobian(_f_vec, (cr.tensor(X2), cr.tensor(Y2)), vectorize=True, strategy=strategy)
    theirs = torch.autograd.functional.jacobian(_f_vec, _tt(X2, Y2), vectorize=True,
                                                strategy=strategy)
    _assert_tree(ours, _tuples(theirs))  # torch's forward mode nests lists, not tuples
    x = RNG.standard_normal((2, 2))  # one input, one output, more output than input elements
    ours = cr.jacobian(lambda t: F.tanh(t).reshape(4, 1) * cr.tensor(np.arange(3.0)), cr.tensor(x),
                       vectorize=True, strategy=strategy)
    theirs = torch.autograd.functional.jacobian(
        lambda t: torch.tanh(t).reshape(4, 1) * torch.arange(3.0, dtype=torch.float64),
        torch.tensor(x), vectorize=True, strategy=strategy)
    _assert_tree(ours, theirs)


def test_jacobian_forward_mode_matches_autograd_and_keeps_float32() -> None:
    x = RNG.standard_normal(3)
    ours = cr.jacobian(lambda t: cr.exp(t) * t.sum(), cr.tensor(x), vectorize=True,
                       strategy="forward-mode")
    theirs = autograd.jacobian(lambda t: anp.exp(t) * anp.sum(t))(x)
    np.testing.assert_allclose(ours.data, theirs, rtol=1e-13, atol=1e-15)
    j32 = cr.jacobian(lambda t: t * t, cr.tensor(x, dtype=np.float32), vectorize=True,
                      strategy="forward-mode")
    assert j32.dtype == np.float32
    np.testing.assert_allclose(j32.data, np.diag(2 * x.astype(np.float32)), rtol=1e-6)
    # an input the output does not use: a zero block, as torch gives without strict
    _, jy = cr.jacobian(lambda a, b: a * 2, (cr.tensor([1.0, 2.0]), cr.tensor([3.0])),
                        vectorize=True, strategy="forward-mode")
    np.testing.assert_array_equal(jy.data, [[0.0], [0.0]])


def test_hessian_vectorize_matches_torch() -> None:
    _assert_tree(cr.hessian(_f_two, (cr.tensor(X2), cr.tensor(Y2)), vectorize=True),
                 torch.autograd.functional.hessian(_f_two, _tt(X2, Y2), vectorize=True))


def test_jacobian_option_errors_as_torch() -> None:
    x = cr.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="strategy"):
        cr.jacobian(lambda t: t * 2, x, strategy="sideways")
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        cr.jacobian(lambda t: t * 2, x, strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        torch.autograd.functional.jacobian(lambda t: t * 2, torch.ones(2), strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="create_graph"):
        cr.jacobian(lambda t: t * 2, x, vectorize=True, strategy="forward-mode", create_graph=True)
    with pytest.raises(RuntimeError, match="strict"):
        cr.jacobian(lambda t: t * 2, x, vectorize=True, strict=True)
    with pytest.raises(RuntimeError, match="strict"):
        torch.autograd.functional.jacobian(lambda t: t * 2, torch.ones(2), vectorize=True,
                                           strict=True)


# --- grad and backward of several outputs (torch.autograd.grad / torch.autograd.backward) -------

W3 = RNG.standard_normal((2, 3))
X3 = RNG.standard_normal(3)


def _three_outputs(w: Any, x: Any) -> tuple:
    y = w @ x
    exp = cr.exp if isinstance(y, cr.Tensor) else torch.exp
    return y, (y * y).sum(), exp(y)


def test_grad_of_several_outputs_matches_torch() -> None:
    seeds = [RNG.standard_normal(2), None, RNG.standard_normal(2)]
    w, x = cr.tensor(W3, requires_grad=True), cr.tensor(X3, requires_grad=True)
    ours = cr.grad(_three_outputs(w, x), [w, x], grad_outputs=seeds)
    tw, tx = _tt(W3, X3)
    theirs = torch.autograd.grad(_three_outputs(tw, tx), [tw, tx],
                                 grad_outputs=[None if s is None else torch.tensor(s) for s in seeds])
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-13, atol=1e-15)


def test_grad_of_several_outputs_is_the_sum_of_each() -> None:
    # By linearity: the seeded sum over outputs equals the sum of separate grad() calls; an
    # output listed twice counts twice; a root that is an ancestor of another root works too.
    x = cr.tensor(X3, requires_grad=True)
    y = x * x
    z = y.sum()
    (g,) = cr.grad([z, y, z], [x], [None, np.ones(3), 2.0], retain_graph=True)
    np.testing.assert_allclose(g.data, 4 * 2 * X3, rtol=1e-15)  # (1 + 1 + 2) * 2x, by hand
    (g,) = cr.grad([y, z], [y], [np.full(3, 0.5), None])  # an intermediate input: 0.5 + 1
    np.testing.assert_allclose(g.data, np.full(3, 1.5))


def test_grad_of_several_outputs_create_graph_matches_torch() -> None:
    x = cr.tensor(X3, requires_grad=True)
    (g,) = cr.grad([(x ** 3).sum(), cr.exp(x).sum()], [x], create_graph=True)
    (h,) = cr.grad(g.sum(), [x])
    tx = torch.tensor(X3, requires_grad=True)
    (tg,) = torch.autograd.grad([(tx ** 3).sum(), tx.exp().sum()], [tx], create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), [tx])
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-13)


def test_grad_one_output_with_a_one_element_list_seed_as_torch() -> None:
    x = cr.tensor(X3, requires_grad=True)
    v = RNG.standard_normal(3)
    (g,) = cr.grad(x * 2.0, [x], grad_outputs=[cr.tensor(v)])
    tx = torch.tensor(X3, requires_grad=True)
    (tg,) = torch.autograd.grad(tx * 2.0, [tx], grad_outputs=[torch.tensor(v)])
    np.testing.assert_allclose(g.data, tg.numpy(), rtol=1e-15)


def test_backward_of_several_tensors_matches_torch() -> None:
    w, x = cr.tensor(W3, requires_grad=True), cr.tensor(X3, requires_grad=True)
    y, s, _ = _three_outputs(w, x)
    seed = RNG.standard_normal(2)
    cr.backward([y, s], [seed, None])
    tw, tx = _tt(W3, X3)
    ty, ts, _ = _three_outputs(tw, tx)
    torch.autograd.backward([ty, ts], [torch.tensor(seed), None])
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-13)
    cr.backward(_three_outputs(w, x)[2].sum())  # one tensor: accumulates into .grad
    torch.autograd.backward(_three_outputs(tw, tx)[2].sum())
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-13)


def test_grad_of_several_outputs_bad_input() -> None:
    x = cr.tensor(X3, requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError, match="scalar"):
        cr.grad([y, y.sum()], [x])  # y has three elements: its seed cannot be omitted
    with pytest.raises(ValueError, match="2 outputs but 1"):
        cr.grad([y, y.sum()], [x], grad_outputs=[np.ones(3)])
    with pytest.raises(TypeError, match="sequence"):
        cr.grad([y, y.sum()], [x], grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match="require grad"):
        cr.grad([y.sum(), cr.tensor(1.0)], [x])
    with pytest.raises(ValueError, match="at least one"):
        cr.grad([], [x])
    with pytest.raises(ValueError, match=r"\(2,\)"):
        cr.grad([y, y.sum()], [x], grad_outputs=[np.ones(2), None])
