"""F.embedding against PyTorch and HIPS autograd: repeated indices accumulate, padding_idx gets
no gradient."""
from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # pragma: no cover
    torch = None


@pytest.mark.parametrize("padding_idx", [None, 0, 2, -1])
@pytest.mark.parametrize("shape", [(5,), (2, 4), (2, 2, 3)], ids=str)
def test_embedding_against_oracles(shape, padding_idx, rng):
    weight = rng.standard_normal((4, 3))
    idx = rng.integers(0, 4, size=shape)
    idx.flat[0] = idx.flat[1]  # at least one repeat
    r = rng.standard_normal((*shape, 3))
    W = cr.tensor(weight, requires_grad=True)
    y = F.embedding(idx, W, padding_idx=padding_idx)
    (y * r).sum().backward()
    np.testing.assert_array_equal(y.data, weight[idx])

    def loss(w):  # autograd: a one-hot matrix product picks the rows; the padding row is masked
        onehot = (idx[..., None] == np.arange(4)).astype(float)
        if padding_idx is not None:
            onehot = onehot * (np.arange(4) != padding_idx % 4)
        return anp.sum(anp.dot(onehot, w) * r)

    np.testing.assert_allclose(W.grad, autograd.grad(loss)(weight), atol=1e-12)
    if torch is not None:
        tw = torch.tensor(weight, requires_grad=True)
        ty = TF.embedding(torch.tensor(idx), tw, padding_idx=padding_idx)
        (ty * torch.tensor(r)).sum().backward()
        np.testing.assert_array_equal(y.data, ty.detach().numpy())
        np.testing.assert_allclose(W.grad, tw.grad.numpy(), atol=1e-12)


def test_embedding_by_hand():
    """Indices [1, 1, 0] with output gradients [[1], [2], [4]]: row 1 gets 1 + 2 = 3, row 0 gets 4."""
    W = cr.tensor([[10.0], [20.0]], requires_grad=True)
    F.embedding(cr.tensor([1, 1, 0]), W).backward(np.array([[1.0], [2.0], [4.0]]))
    np.testing.assert_array_equal(W.grad, [[4.0], [3.0]])


def test_embedding_gradcheck_and_float32(rng):
    idx = np.array([[0, 2], [2, 1]])
    assert cr.gradcheck(lambda w: (F.embedding(idx, w) ** 2).sum(),
                        cr.tensor(rng.standard_normal((3, 2)), requires_grad=True))
    W = cr.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    y = F.embedding(idx, W)
    y.sum().backward()
    assert y.dtype == W.grad.dtype == np.float32


@pytest.mark.parametrize("call, parts, error", [
    (lambda: F.embedding([0, 5], np.ones((4, 2))), ["5", "4 embeddings"], ValueError),
    (lambda: F.embedding([-1], np.ones((4, 2))), ["-1"], ValueError),
    (lambda: F.embedding([0.5], np.ones((4, 2))), ["integers", "float64"], TypeError),
    (lambda: F.embedding([0], np.ones(4)), ["2-D", "(4,)"], ValueError),
    (lambda: F.embedding([0], np.ones((4, 2)), padding_idx=4), ["padding_idx", "4"], ValueError),
])
def test_embedding_bad_input(call, parts, error):
    with pytest.raises(error) as info:
        call()
    for part in parts:
        assert part in str(info.value)
