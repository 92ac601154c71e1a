"""Numerics: every activation and loss at extreme inputs, and float32 drift on long chains.

At inputs of magnitude 1e4 (float64) and 80 and 1e4 (float32, where exp overflows past ~88),
forward and backward must be finite and raise no warning: tests run under
``warnings.simplefilter("error")`` and ``np.errstate(all="raise")``, so any overflow, invalid
operation or divide-by-zero inside NumPy fails them. Values are compared with PyTorch in
float64 when it is importable (its functional forms are the stable ones).
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import chainrule as cr

F = pytest.importorskip("chainrule.functional", reason="chainrule.functional (activations and losses)")
HAVE_TORCH = importlib.util.find_spec("torch") is not None
if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF


@contextmanager
def strict_numerics(under: str = "raise"):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under=under):
            yield


EXTREMES = {
    np.float64: np.array([[-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4],
                          [1e4, 1e4, -1e4, -1e4, 0.5, 1e4, -0.5]]),
    np.float32: np.array([[-80.0, -1e4, -1.0, 0.0, 1.0, 1e4, 80.0],
                          [80.0, 80.0, -80.0, -89.0, 0.5, 89.0, -0.5]]),
}
CLASSES = np.array([6, 0])
LABELS = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0]])
PROBS = np.array([[0.0, 1.0, 0.3, 1.0, 0.0, 0.5, 1.0], [1.0, 0.0, 0.7, 0.0, 1.0, 0.5, 0.0]])


def _flip(x: np.ndarray) -> np.ndarray:
    return -x[:, ::-1].copy()  # a target far from the prediction: residuals up to 2e4


# Each case: (chainrule form, torch form) of x -> scalar, for x of shape (2, 7).
Case = tuple[Callable[[Any], Any], Callable[[Any], Any] | None]


def _cases() -> dict[str, Case]:
    t = torch if HAVE_TORCH else None
    return {
        "sigmoid": (lambda x: F.sigmoid(x), lambda x: t.sigmoid(x)),
        "tanh": (lambda x: F.tanh(x), lambda x: t.tanh(x)),
        "relu": (lambda x: F.relu(x), lambda x: t.relu(x)),
        "leaky_relu": (lambda x: F.leaky_relu(x), lambda x: TF.leaky_relu(x, 0.01)),
        "elu": (lambda x: F.elu(x), lambda x: TF.elu(x)),
        "gelu": (lambda x: F.gelu(x), lambda x: TF.gelu(x)),
        "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
        "softplus": (lambda x: F.softplus(x), lambda x: TF.softplus(x)),
        "softmax": (lambda x: F.softmax(x, axis=-1), lambda x: t.softmax(x, dim=-1)),
        "log_softmax": (lambda x: F.log_softmax(x, axis=-1), lambda x: t.log_softmax(x, dim=-1)),
        "l1_loss": (lambda x: F.l1_loss(x, _flip(x.data)), lambda x: TF.l1_loss(x, _t(_flip(_np(x))))),
        "mse_loss": (lambda x: F.mse_loss(x, _flip(x.data)), lambda x: TF.mse_loss(x, _t(_flip(_np(x))))),
        "l2_loss": (lambda x: F.l2_loss(x, _flip(x.data)),
                    lambda x: 0.5 * ((x - _t(_flip(_np(x)))) ** 2).sum()),
        "huber_loss": (lambda x: F.huber_loss(x, _flip(x.data), delta=1.5),
                       lambda x: TF.huber_loss(x, _t(_flip(_np(x))), delta=1.5)),
        "hinge_loss": (lambda x: F.hinge_loss(x, LABELS.astype(x.dtype)),
                       lambda x: t.relu(1 - _t(LABELS) * x).mean()),  # relu: 0 at the margin
        "multi_margin_loss": (lambda x: F.multi_margin_loss(x, CLASSES),
                              lambda x: TF.multi_margin_loss(x, t.tensor(CLASSES))),
        "binary_cross_entropy_with_logits": (
            lambda x: F.binary_cross_entropy_with_logits(x, PROBS.astype(x.dtype)),
            lambda x: TF.binary_cross_entropy_with_logits(x, _t(PROBS))),
        "cross_entropy": (lambda x: F.cross_entropy(x, CLASSES),
                          lambda x: TF.cross_entropy(x, t.tensor(CLASSES))),
        "cross_entropy_smoothed": (lambda x: F.cross_entropy(x, CLASSES, label_smoothing=0.1),
                                   lambda x: TF.cross_entropy(x, t.tensor(CLASSES), label_smoothing=0.1)),
        "cross_entropy_probs": (lambda x: F.cross_entropy(x, PROBS.astype(x.dtype) / 3.5),
                                lambda x: TF.cross_entropy(x, _t(PROBS) / 3.5)),
        "cosine_similarity": (lambda x: F.cosine_similarity(x, _flip(x.data) + 1.0),
                              lambda x: TF.cosine_similarity(x, _t(_flip(_np(x))) + 1.0, dim=-1)),
        "cosine_embedding_loss": (
            lambda x: F.cosine_embedding_loss(x, _flip(x.data) + 1.0, np.array([1.0, -1.0])),
            lambda x: TF.cosine_embedding_loss(x, _t(_flip(_np(x))) + 1.0, t.tensor([1.0, -1.0]))),
        # PyTorch's other activations and losses (issue 12)
        "logsigmoid": (lambda x: F.logsigmoid(x), lambda x: TF.logsigmoid(x)),
        "silu": (lambda x: F.silu(x), lambda x: TF.silu(x)),
        "selu": (lambda x: F.selu(x), lambda x: TF.selu(x)),
        "celu": (lambda x: F.celu(x), lambda x: TF.celu(x)),
        "mish": (lambda x: F.mish(x), lambda x: TF.mish(x)),
        "hardswish": (lambda x: F.hardswish(x), lambda x: TF.hardswish(x)),
        # torch's own hardsigmoid backward multiplies by the float32 constant 1.0f/6 (3e-8 off)
        "hardsigmoid": (lambda x: F.hardsigmoid(x), lambda x: TF.relu6(x + 3) / 6),
        "hardtanh": (lambda x: F.hardtanh(x), lambda x: TF.hardtanh(x)),
        "relu6": (lambda x: F.relu6(x), lambda x: TF.relu6(x)),
        "softsign": (lambda x: F.softsign(x), lambda x: TF.softsign(x)),
        "softmin": (lambda x: F.softmin(x, axis=-1), lambda x: TF.softmin(x, dim=-1)),
        "nll_loss": (lambda x: F.nll_loss(x, CLASSES), lambda x: TF.nll_loss(x, t.tensor(CLASSES))),
        "smooth_l1_loss": (lambda x: F.smooth_l1_loss(x, _flip(x.data), beta=0.5),
                           lambda x: TF.smooth_l1_loss(x, _t(_flip(_np(x))), beta=0.5)),
        "kl_div": (lambda x: F.kl_div(x, PROBS.astype(x.dtype) / 3.5, reduction="batchmean"),
                   lambda x: TF.kl_div(x, _t(PROBS) / 3.5, reduction="batchmean")),
    }


def _np(x: Any) -> np.ndarray:
    return x.detach().numpy()


def _t(a: np.ndarray) -> Any:
    return torch.tensor(np.asarray(a, dtype=np.float64))


# binary_cross_entropy takes probabilities, so its extremes are 0 and 1 (PyTorch clamps the
# log at -100 there), not 1e4.
P_EXTREMES = {
    np.float64: np.array([[0.0, 1.0, 1e-300, 1.0 - 1e-16, 0.5, 1e-12, 1.0]]),
    np.float32: np.array([[0.0, 1.0, 1e-30, 1.0 - 6e-8, 0.5, 1e-7, 1.0]]),
}


CASES = _cases()


def test_every_activation_and_loss_has_an_extreme_input_case():
    names = set(F.ACTIVATIONS) | set(F.LOSSES)
    covered = {n.removesuffix("_tanh").removesuffix("_smoothed").removesuffix("_probs") for n in CASES}
    covered.add("binary_cross_entropy")  # its own test below: probabilities 0 and 1
    assert names <= covered, f"no extreme-input case for: {sorted(names - covered)}"


def _run(fn: Callable[[Any], Any], x: np.ndarray, under: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    t = cr.tensor(x, requires_grad=True)
    with strict_numerics(under):
        out = fn(t)
        seed = np.linspace(-1.0, 1.0, out.size).reshape(out.shape).astype(out.dtype)
        out.backward(seed)
    return out.data, t.grad


def _oracle(fn: Callable[[Any], Any], x: np.ndarray, seed_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    out = fn(t)
    n = int(np.prod(seed_shape))
    out.backward(torch.tensor(np.linspace(-1.0, 1.0, n).reshape(tuple(out.shape))))
    return out.detach().numpy(), t.grad.numpy()


# float32 VJPs whose results underflow (to 0 or a subnormal) at these inputs, by design: they
# ignore underflow as their forwards do (bug 5 of notes/reliability-bugs.md, fixed), so they
# must pass under errstate(all="raise"); the next test also checks them with underflow allowed.
UNDERFLOW_IN_VJP = {"sigmoid", "softmax", "softplus", "binary_cross_entropy_with_logits", "cross_entropy",
                    "cross_entropy_probs", "cross_entropy_smoothed", "logsigmoid", "silu", "selu",
                    "celu", "mish", "softmin"}


def _params() -> list:
    out = []
    for name in sorted(CASES):
        for dtype, label in ((np.float64, "float64"), (np.float32, "float32")):
            out.append(pytest.param(name, dtype, id=f"{name}-{label}"))
    return out


def _check_case(name: str, dtype: Any, under: str = "raise") -> None:
    fn, oracle = CASES[name]
    x = EXTREMES[dtype].astype(dtype)
    value, grad = _run(fn, x, under)
    assert value.dtype == dtype and grad.dtype == dtype, f"dtype changed: {value.dtype}, {grad.dtype}"
    assert np.all(np.isfinite(value)), f"{name}: forward not finite: {value}"
    assert np.all(np.isfinite(grad)), f"{name}: gradient not finite: {grad}"
    if HAVE_TORCH and oracle is not None:
        want_value, want_grad = _oracle(oracle, x, value.shape)
        rtol = 1e-12 if dtype == np.float64 else 2e-6
        scale_v = np.max(np.abs(want_value)) if want_value.size else 0.0
        scale_g = np.max(np.abs(want_grad))
        # absolute slack: rtol of the largest entry, or of 1 for values that cancel (1 - cos)
        np.testing.assert_allclose(value, want_value, rtol=rtol, atol=rtol * (scale_v + 1))
        np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=rtol * (scale_g + 1))


@pytest.mark.parametrize(("name", "dtype"), _params())
def test_extreme_inputs_are_finite_warning_free_and_right(name, dtype):
    _check_case(name, dtype)


@pytest.mark.parametrize("name", sorted(UNDERFLOW_IN_VJP))
def test_extreme_float32_values_are_right_when_underflow_is_allowed(name):
    _check_case(name, np.float32, under="ignore")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_binary_cross_entropy_at_probabilities_zero_and_one(dtype):
    p = P_EXTREMES[dtype].astype(dtype)
    y = np.array([[0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]], dtype=dtype)  # 1.0 at p=1, 0.0 at p=0: ...
    y[0, 6] = 0.0  # ... and one confident mistake (p=1, y=0): PyTorch's loss is 100, finite
    fn = lambda x: F.binary_cross_entropy(x, y, reduction="none")  # noqa: E731
    value, grad = _run(fn, p)
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), (value, grad)
    if HAVE_TORCH:
        want = TF.binary_cross_entropy(torch.tensor(p.astype(np.float64)), torch.tensor(y.astype(np.float64)),
                                       reduction="none").numpy()
        np.testing.assert_allclose(value, want, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)


# --- float32 accumulation over long chains ------------------------------------------------

U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff


def _long_chain(dtype: Any, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """y <- 0.999 y + 0.001 sqrt(y^2 + 1) + c, n times: well conditioned (slope in (0.998, 1])."""
    x0 = rng.normal(size=64)
    c = (rng.normal(size=n) * 1e-3)
    x = cr.tensor(x0.astype(dtype), requires_grad=True)
    y = x
    for k in range(n):
        y = 0.999 * y + 0.001 * cr.sqrt(y * y + 1.0) + float(np.asarray(c[k], dtype=dtype))
    with strict_numerics():
        y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    return y.data, x.grad


def test_float32_long_chain_gradient_stays_within_float32_precision_of_float64():
    n = 2_000  # 2,000 steps, 10,000 ops
    y32, g32 = _long_chain(np.float32, n, np.random.default_rng(7))
    y64, g64 = _long_chain(np.float64, n, np.random.default_rng(7))
    # Each step rounds a handful of times (relative <= u each) in forward and backward; the
    # chain is contracting, so errors do not blow up: worst case ~ 6 n u relative. Rounding
    # errors are unbiased under round-to-nearest, so the typical error is far smaller.
    rel_g = np.max(np.abs(g32 - g64) / np.abs(g64))
    rel_y = np.max(np.abs(y32 - y64) / np.abs(y64))
    assert rel_g <= 6 * n * U32, f"gradient drift {rel_g:.3g} exceeds 6 n u = {6 * n * U32:.3g}"
    assert rel_y <= 6 * n * U32
    assert rel_g <= 50 * np.sqrt(n) * U32, f"gradient drift {rel_g:.3g}: systematic, not rounding noise"


def test_float32_fan_in_accumulation_matches_float64_within_summation_bound():
    """One tensor used 10,000 times: its gradient is a 10,000-term float32 sum."""
    n = 10_000
    rng = np.random.default_rng(3)
    w = rng.normal(size=(n, 8)).astype(np.float32)
    x = cr.tensor(np.ones(8, dtype=np.float32), requires_grad=True)
    loss = None
    for k in range(n):
        term = (x * w[k]).sum()
        loss = term if loss is None else loss + term
    with strict_numerics():
        loss.backward()
    assert x.grad.dtype == np.float32
    exact = w.astype(np.float64).sum(axis=0)
    bound = (n - 1) * U32 * np.abs(w.astype(np.float64)).sum(axis=0)  # recursive summation (Higham)
    err = np.abs(x.grad.astype(np.float64) - exact)
    assert np.all(err <= bound), f"accumulation error {err.max():.3g} above the summation bound"
    # Each addition rounds by at most u times the running sum; unbiased rounding makes the
    # errors a random walk, so the typical total is ~ u sqrt(n) max|running sum| (in either
    # order of summation). 10x that still catches any systematic loss (a float16 or lost term).
    w64 = w.astype(np.float64)
    running = max(np.abs(np.cumsum(w64, axis=0)).max(), np.abs(np.cumsum(w64[::-1], axis=0)).max())
    assert np.all(err <= 10 * U32 * np.sqrt(n) * running), f"accumulation error {err.max():.3g}"


def test_float32_stays_float32_through_every_core_op():
    rng = np.random.default_rng(0)
    a = cr.tensor(rng.random((3, 4)).astype(np.float32) + 0.5, requires_grad=True)
    b = cr.tensor(rng.random((4,)).astype(np.float32) + 0.5, requires_grad=True)
    outs = [a + b, a - 2.0, 2.0 * a, a / b, a ** 2, 2.0 ** a, a ** b, -a, abs(a), cr.exp(a), cr.log(a),
            cr.sqrt(a), cr.maximum(a, b), cr.minimum(a, 0.7), cr.where(a.data > 0.9, a, b),
            cr.clip(a, 0.6, 1.2), a @ b, a.sum(0), a.mean(), a.max(1), a.min(), a.reshape(12), a.T,
            a[1:, np.array([0, 0])], cr.concatenate([a, a]), cr.stack([b, b]), cr.expand_dims(b, 0),
            a.swapaxes(0, 1), cr.broadcast_to(b, (2, 4))]
    total = None
    for k, o in enumerate(outs):
        assert o.dtype == np.float32, f"op {k} ({o.op}) gave {o.dtype}"
        term = o.sum()
        total = term if total is None else total + term
    total.backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


# --- VJPs from the output: no cancellation at the extremes (issue 13) ---------------------------

# Each slope against its closed form evaluated from the input in float64 (independent of how
# chainrule computes it): ELU' = alpha e^x for x <= 0, sigma' = e^-|x| / (1 + e^-|x|)^2,
# tanh' = 4 e^-2|x| / (1 + e^-2|x|)^2. The old output-based forms (ELU(x) + alpha,
# sigma (1 - sigma), 1 - tanh^2) gave 0 or percent-level errors at these points.
def _elu_slope(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, 1.0, 1.3 * np.exp(x))


def _sigmoid_slope(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2


def _tanh_slope(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


SLOPES = [
    ("elu", lambda t: F.elu(t, alpha=1.3), _elu_slope, [-40.0, -15.0, -5.0, 1.0]),
    ("sigmoid", F.sigmoid, _sigmoid_slope, [-30.0, -17.0, -10.0, 10.0, 17.0, 30.0]),
    ("tanh", F.tanh, _tanh_slope, [-20.0, -9.0, -5.0, 5.0, 9.0, 20.0]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,slope,points", SLOPES, ids=[s[0] for s in SLOPES])
def test_output_based_slopes_do_not_cancel_at_extremes(name, fn, slope, points, dtype):
    x = np.array(points, dtype=dtype)
    t = cr.tensor(x, requires_grad=True)
    with strict_numerics(under="ignore"):
        fn(t).sum().backward()
    expected = slope(x.astype(np.float64))
    rtol = 1e-14 if dtype == np.float64 else 2e-6  # a few ulp of the dtype
    np.testing.assert_allclose(t.grad.astype(np.float64), expected, rtol=rtol, atol=0)


# --- a mean over zero total weight: NaN loss, zero gradient (PyTorch's values) -------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_with_every_target_ignored_has_zero_gradient(weighted):
    z = cr.tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    kwargs = {"weight": [1.0, 2.0, 0.5, 1.0]} if weighted else {}
    with strict_numerics():
        loss = F.cross_entropy(z, np.array([-100, -100, -100]), **kwargs)
        loss.backward()
    assert np.isnan(loss.item())  # 0/0, as PyTorch's
    np.testing.assert_array_equal(z.grad, np.zeros((3, 4)))  # PyTorch's gradient: nothing counts
    if HAVE_TORCH:
        tz = torch.tensor(z.data, requires_grad=True)
        tw = {"weight": torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)} if weighted else {}
        TF.cross_entropy(tz, torch.tensor([-100, -100, -100]), **tw).backward()
        np.testing.assert_array_equal(z.grad, tz.grad.numpy())


def test_cross_entropy_score_map_all_ignored_and_label_smoothing_are_zero_gradient():
    z = cr.tensor(np.random.default_rng(1).normal(size=(2, 3, 2)), requires_grad=True)
    with strict_numerics():
        F.cross_entropy(z, np.full((2, 2), 7), ignore_index=7, label_smoothing=0.1).backward()
    np.testing.assert_array_equal(z.grad, np.zeros((2, 3, 2)))


# --- no NumPy warning escapes a backward pass; NaN and inf propagate silently -------------------

BACKWARD_SINGULAR = [
    ("sqrt at 0", lambda t: cr.sqrt(t), [0.0, 4.0], [np.inf, 0.25]),
    ("log at 0", lambda t: cr.log(t), [0.0, 2.0], [np.inf, 0.5]),
    ("1/x at 0", lambda t: 1.0 / t, [0.0, 2.0], [-np.inf, -0.25]),
    ("x/x at 0", lambda t: t / t, [0.0, 2.0], [np.nan, 0.0]),
    ("exp overflow", lambda t: cr.exp(t) * 1e300, [1.0, 800.0], [1e300 * np.e, np.inf]),
]


@pytest.mark.parametrize("name,fn,x,expected", BACKWARD_SINGULAR, ids=[b[0] for b in BACKWARD_SINGULAR])
def test_backward_never_warns_and_propagates_nan_and_inf(name, fn, x, expected):
    t = cr.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        out = fn(t).sum()  # the forward follows NumPy (np.log(0) warns there too)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out.backward()
    np.testing.assert_allclose(t.grad, expected, rtol=1e-15)
    if HAVE_TORCH:
        tt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        tfn = {"sqrt at 0": torch.sqrt, "log at 0": torch.log, "1/x at 0": lambda a: 1.0 / a,
               "x/x at 0": lambda a: a / a, "exp overflow": lambda a: torch.exp(a) * 1e300}[name]
        tfn(tt).sum().backward()
        np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-15)
