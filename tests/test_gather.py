"""The gather / scatter-add primitive pair: each is the other's VJP, repeats accumulate."""
from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.functional.gather import gather, scatter_add


def test_gather_and_scatter_add_are_adjoint(rng):
    """<y_bar, gather(x)> == <scatter_add(y_bar), x> for random x, y_bar and repeated indices."""
    x = rng.standard_normal((3, 4))
    index = rng.integers(0, 12, size=(5, 2))
    y_bar = rng.standard_normal((5, 2))
    lhs = float(np.sum(y_bar * gather(x, index).data))
    rhs = float(np.sum(scatter_add(y_bar, index, (3, 4)).data * x))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-13)


def test_scatter_add_accumulates_as_add_at(rng):
    g = rng.standard_normal(20)
    index = rng.integers(0, 6, size=20)
    expected = np.zeros(6)
    np.add.at(expected, index, g)
    np.testing.assert_allclose(scatter_add(g, index, (6,)).data, expected, rtol=1e-14)
    assert scatter_add(g.astype(np.float32), index, (6,)).dtype == np.float32


def test_gradients_of_both(rng):
    index = np.array([[0, 5], [5, 2]])
    assert cr.gradcheck(lambda x: (gather(x, index) ** 2).sum(),
                        cr.tensor(rng.standard_normal((2, 3)), requires_grad=True))
    assert cr.gradcheck(lambda g: (scatter_add(g, index, (2, 3)) ** 2).sum(),
                        cr.tensor(rng.standard_normal((2, 2)), requires_grad=True))
