"""gradcheck itself: it passes correct gradients and catches wrong VJPs, saying where."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops
from chainrule.tensor import apply


@pytest.fixture
def register() -> Iterator[Callable[..., ops.Primitive]]:
    """Register throwaway primitives under unique names; remove them afterwards."""
    names: list[str] = []

    def make(name: str, fn: Callable, *vjps: Callable) -> ops.Primitive:
        names.append(f"test_gradcheck.{name}")
        return ops.primitive(names[-1], fn, *vjps)

    yield make
    for name in set(names):
        del ops.PRIMITIVES[name]


def _numbers(message: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(analytic|numeric) ([-+0-9.e]+)", message)}


CORRECT = {
    "polynomial": (lambda x: x ** 3 - 2.0 * x, [(3, 2)]),
    "two-inputs-broadcast": (lambda a, b: cr.exp(a) * b - a / b, [(2, 3), (3,)]),
    "matmul-reduce": (lambda a, b: (a @ b).max(axis=0), [(3, 4), (4, 2)]),
    "0-d": (lambda x: cr.sqrt(x * x + 1.0), [()]),
    "scalar-output": (lambda x: (x * x).mean(), [(5,)]),
}


@pytest.mark.parametrize("fn,shapes", CORRECT.values(), ids=CORRECT.keys())
def test_passes_correct_gradients(fn: Callable, shapes: list) -> None:
    rng = np.random.default_rng(0)
    xs = [cr.tensor(rng.uniform(0.5, 2.0, s), requires_grad=True) for s in shapes]
    before = [x.data.copy() for x in xs]
    assert cr.gradcheck(fn, *xs) is True
    for x, b in zip(xs, before, strict=True):
        np.testing.assert_array_equal(x.data, b)  # inputs restored, .grad untouched
        assert x.grad is None


def test_catches_a_wrong_vjp_and_names_input_element_and_values(register) -> None:
    # d(x^3)/dx is 3x^2; this VJP returns 2x^2, and only at element (1, 2), so the report
    # must point there.
    def wrong(g, ans, a):
        local = 3 * a ** 2
        local[1, 2] = 2 * a[1, 2] ** 2
        return g * local

    cube = register("wrong_cube", lambda a: a ** 3, wrong)
    data = np.arange(1.0, 7.0).reshape(2, 3) / 4
    x = cr.tensor(data, requires_grad=True, name="x")
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda t: apply(cube, t), x)
    message = str(info.value)
    assert "input 0 (x)" in message and "element (1, 2)" in message
    values = _numbers(message)
    v = data[1, 2]
    assert values["analytic"] == pytest.approx(2 * v ** 2, rel=1e-12)
    assert values["numeric"] == pytest.approx(3 * v ** 2, rel=1e-6)


def test_names_the_second_input_and_the_output_element(register) -> None:
    # f(a, b) = a * b with a wrong VJP for b (returns g * b instead of g * a).
    mul = register("wrong_mul_b", np.multiply, lambda g, ans, a, b: g * b, lambda g, ans, a, b: g * b)
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 5.0], requires_grad=True, name="bias")
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda p, q: apply(mul, p, q), a, b)
    message = str(info.value)
    assert "input 1 (bias)" in message and "element (0,)" in message
    assert "output element (0,)" in message
    assert _numbers(message) == pytest.approx({"analytic": 3.0, "numeric": 1.0}, rel=1e-6)


def test_catches_a_missing_cross_term(register) -> None:
    # f(a) = a * sum(a): df_j/da_i = delta_ij sum(a) + a_j. The VJP below forgets a_j, so
    # the Jacobian is wrong off the diagonal too: at input element 0, output element 0 the
    # true value is sum + a_0, the wrong one sum.
    scaled = register("forgets_cross_term", lambda a: a * a.sum(), lambda g, ans, a: g * a.sum())
    data = np.array([0.5, 1.0, 2.0])
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda t: apply(scaled, t), cr.tensor(data, requires_grad=True))
    values = _numbers(str(info.value))
    assert values["analytic"] == pytest.approx(data.sum(), rel=1e-12)
    assert values["numeric"] == pytest.approx(data.sum() + data[0], rel=1e-6)


def test_builtin_primitives_cannot_be_replaced() -> None:
    before = ops.PRIMITIVES["exp"]
    with pytest.raises(ValueError, match="'exp' is one of chainrule's own"):
        ops.primitive("exp", np.negative, lambda g, ans, a: -g)
    assert ops.PRIMITIVES["exp"] is before
    assert {"add", "matmul", "linear", "sigmoid", "cross_entropy"} <= ops.BUILTIN_NAMES


def test_registering_a_user_primitive_again_replaces_it(register) -> None:
    # Re-running a notebook cell or a script registers the same name again: the new
    # definition wins, and a tensor made with the old one keeps the old one's gradient.
    first = register("twice", np.negative, lambda g, ans, a: -g)
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    old_result = apply(first, x)
    second = register("twice", lambda a: 3.0 * a, lambda g, ans, a: 3.0 * g)
    assert ops.PRIMITIVES["test_gradcheck.twice"] is second
    old_result.sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, -1.0])  # d(-x)/dx, from the first definition
    x.grad = None
    apply(second, x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_float32_inputs_are_checked_in_float64() -> None:
    # Central differences in float32 with eps = 1e-6 would be mostly rounding error; gradcheck
    # promotes the inputs, so this passes, and leaves the caller's tensor as it was.
    x = cr.tensor(np.array([0.3, 1.7, -0.4], np.float32), requires_grad=True)
    assert cr.gradcheck(lambda t: cr.exp(t) * t, x)
    assert x.dtype == np.float32 and x.grad is None


def test_passes_other_arguments_through() -> None:
    x = cr.tensor([0.5, 1.5], requires_grad=True)
    constant = cr.tensor([2.0, -1.0])  # no requires_grad: not differentiated, not perturbed
    assert cr.gradcheck(lambda t, k, c: t ** k * c, x, 3, constant)
    assert cr.gradcheck(lambda t, c: (t * 0.0).sum() + c.sum(), x, constant)  # zero Jacobian


def test_bad_use_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="requires_grad"):
        cr.gradcheck(lambda t: t * 2.0, cr.tensor([1.0]))
    with pytest.raises(TypeError, match="must return a Tensor"):
        cr.gradcheck(lambda t: 3.0, cr.tensor([1.0], requires_grad=True))
