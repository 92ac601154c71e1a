"""F.dropout: inverted scaling, the training flag, reproducible masks and the gradient through the mask."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F


def test_dropout_scales_kept_units_and_zeroes_the_rest():
    x = cr.tensor(np.full((200, 50), 2.0), requires_grad=True)
    y = F.dropout(x, p=0.3, rng=0)
    mask = np.random.default_rng(0).random((200, 50)) >= 0.3  # the documented draw
    np.testing.assert_allclose(y.data, np.where(mask, 2.0 / 0.7, 0.0), rtol=1e-15)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.where(mask, 1 / 0.7, 0.0), rtol=1e-15)
    assert abs((y.data == 0).mean() - 0.3) < 0.02  # 10,000 draws: 0.3 +- 0.0046 (1 sigma)


def test_dropout_identity_outside_training_and_at_zero():
    x = cr.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, [0.0, 0.0, 0.0])


def test_dropout_same_generator_state_same_mask():
    a = F.dropout(np.ones(100), 0.5, rng=np.random.default_rng(7))
    b = F.dropout(np.ones(100), 0.5, rng=7)
    np.testing.assert_array_equal(a.data, b.data)
    gen = np.random.default_rng(7)
    assert not np.array_equal(F.dropout(np.ones(100), 0.5, rng=gen).data,
                              F.dropout(np.ones(100), 0.5, rng=gen).data)


def test_dropout_keeps_float32():
    y = F.dropout(np.ones(10, np.float32), 0.5, rng=0)
    assert y.dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.5, "half", True])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(np.ones(3), p)
