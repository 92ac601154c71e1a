"""The convolution, pooling, normalisation, embedding and reshaping modules of ``chainrule.nn``
against PyTorch's modules with the same weights: outputs, gradients, running statistics over
several steps in training and evaluation mode, state-dict names, initialisation and model files."""
from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.serialization import load_model, save_model

torch = pytest.importorskip("torch", reason="these tests compare with PyTorch's modules")


def pair(ours: nn.Module, theirs):
    """Copy ours' state into the torch module (float64), so both start equal."""
    theirs = theirs.double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return theirs


def _check_step(ours, theirs, x, rng, atol=1e-10):
    X = cr.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    y, ty = ours(X), theirs(tx)
    r = rng.standard_normal(y.shape)
    (y * r).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(X.grad, tx.grad.numpy(), rtol=0, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=0, atol=atol, err_msg=name)
        p.grad = None
        tparams[name].grad = None
    tstate = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=0, atol=1e-12, err_msg=name)


LAYERS = [
    (lambda: nn.Conv2d(3, 4, 3, rng=0), lambda: torch.nn.Conv2d(3, 4, 3), (2, 3, 6, 5)),
    (lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, rng=1),
     lambda: torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
     (2, 4, 7, 6)),
    (lambda: nn.Conv2d(2, 3, 3, padding="same", bias=False, rng=2),
     lambda: torch.nn.Conv2d(2, 3, 3, padding="same", bias=False), (1, 2, 5, 4)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect", rng=3),
     lambda: torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 5, 4)),
    (lambda: nn.Conv2d(2, 3, 3, padding=2, padding_mode="replicate", rng=3),
     lambda: torch.nn.Conv2d(2, 3, 3, padding=2, padding_mode="replicate"), (2, 2, 5, 4)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", rng=3),
     lambda: torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (2, 2, 5, 4)),
    (lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1, rng=4),
     lambda: torch.nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 5)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 7, 6)),
    (lambda: nn.MaxPool1d(2), lambda: torch.nn.MaxPool1d(2), (2, 3, 7)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 6)),
    (lambda: nn.AvgPool1d(2), lambda: torch.nn.AvgPool1d(2), (2, 3, 7)),
    (lambda: nn.LayerNorm(5), lambda: torch.nn.LayerNorm(5), (3, 4, 5)),
    (lambda: nn.LayerNorm((4, 5), elementwise_affine=False),
     lambda: torch.nn.LayerNorm((4, 5), elementwise_affine=False), (3, 4, 5)),
    (lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5)),
    (lambda: nn.Flatten(0, 2), lambda: torch.nn.Flatten(0, 2), (2, 3, 4, 5)),
    (lambda: nn.Unflatten(1, (2, 3)), lambda: torch.nn.Unflatten(1, (2, 3)), (4, 6)),
]


@pytest.mark.parametrize("make, make_torch, shape", LAYERS,
                         ids=lambda v: repr(v()) if callable(v) else str(v))
def test_layer_matches_torch(make, make_torch, shape, rng):
    ours = make()
    theirs = pair(ours, make_torch())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _check_step(ours, theirs, rng.standard_normal(shape), rng)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls, tcls, shape", [
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5, 3)),
    (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 6)),
    (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 2)),
])
def test_batch_norm_modules_over_several_steps(cls, tcls, shape, momentum, rng):
    ours = cls(3, momentum=momentum)
    ours.weight.data[...] = rng.standard_normal(3)
    ours.bias.data[...] = rng.standard_normal(3)
    theirs = pair(ours, tcls(3, momentum=momentum))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    for _ in range(4):
        _check_step(ours, theirs, rng.standard_normal(shape) * 2 + 1, rng)
    assert int(ours.num_batches_tracked.data) == 4
    ours.eval()
    theirs.eval()
    _check_step(ours, theirs, rng.standard_normal(shape), rng)
    assert int(ours.num_batches_tracked.data) == 4  # evaluation leaves the statistics alone


def test_batch_norm_without_running_stats_or_affine(rng):
    ours = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    theirs = pair(ours, torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False))
    assert ours.state_dict() == {} and list(ours.buffers()) == []
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        _check_step(ours, theirs, rng.standard_normal((4, 3, 2, 2)), rng)


def test_embedding_module(rng):
    ours = nn.Embedding(6, 3, padding_idx=2, rng=0)
    np.testing.assert_array_equal(ours.weight.data[2], 0.0)  # the padding row starts at zero, as PyTorch's
    theirs = pair(ours, torch.nn.Embedding(6, 3, padding_idx=2))
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    y, ty = ours(idx), theirs(torch.tensor(idx))
    r = rng.standard_normal(y.shape)
    (y * r).sum().backward()
    (ty * torch.tensor(r)).sum().backward()
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), atol=1e-12)
    assert np.all(ours.weight.grad[2] == 0)


def test_conv_initialisation_is_torchs_kaiming_uniform():
    """kaiming_uniform_(a=sqrt(5)) is U(-b, b) with b = gain*sqrt(3/fan_in), gain = sqrt(2/(1+5)):
    b = 1/sqrt(fan_in); the bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too."""
    conv = nn.Conv2d(8, 64, (3, 5), groups=2, rng=0)
    bound = 1 / math.sqrt(8 / 2 * 3 * 5)
    w = conv.weight.data
    assert w.shape == (64, 4, 3, 5) and np.abs(w).max() <= bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.05)  # U(-b, b): std b/sqrt(3)
    assert np.abs(conv.bias.data).max() <= bound
    tw = torch.nn.Conv2d(8, 64, (3, 5), groups=2).weight.detach().numpy()
    np.testing.assert_allclose(tw.std(), w.std(), rtol=0.1)
    norm = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(norm.weight.data, np.ones(4))
    np.testing.assert_array_equal(norm.bias.data, np.zeros(4))
    np.testing.assert_array_equal(norm.running_var.data, np.ones(4))


def test_cnn_module_matches_the_same_torch_network(rng):
    ours = nn.CNN((1, 8, 8), (4, 6), 10, rng=0)
    theirs = torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, 4, 3, padding="same", bias=False), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding="same", bias=False), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(24, 10))
    theirs = pair(ours, theirs)
    for _ in range(3):
        _check_step(ours, theirs, rng.standard_normal((5, 64)), rng)
    ours.eval()
    theirs.eval()
    _check_step(ours, theirs, rng.standard_normal((5, 64)), rng)


def test_model_file_round_trip_of_a_cnn(tmp_path, rng):
    model = nn.CNN((1, 8, 8), (4, 6), 10, dropout=0.25, rng=0)
    x = cr.tensor(rng.standard_normal((3, 64)))
    model(x)  # one training step's statistics, so the buffers are not at their initial values
    model.eval()
    before = model(x).data
    save_model(tmp_path / "cnn.npz", model)
    with np.load(tmp_path / "cnn.npz", allow_pickle=False) as npz:
        assert "param/2.running_mean" in npz.files and "param/2.num_batches_tracked" in npz.files
    loaded = load_model(tmp_path / "cnn.npz").model
    assert type(loaded) is nn.CNN and loaded.get_config() == model.get_config()
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).data, before)


def test_a_sequential_of_the_new_layers_saves_too(tmp_path, rng):
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, rng=0), nn.BatchNorm1d(3), nn.AvgPool1d(2),
                          nn.Flatten(), nn.LayerNorm(6), nn.Linear(6, 2, rng=0))
    x = cr.tensor(rng.standard_normal((4, 2, 4)))
    model(x)
    model.eval()
    save_model(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz").model.eval()
    np.testing.assert_array_equal(loaded(x).data, model(x).data)


def test_buffers_follow_to_and_state_dict():
    m = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2))
    assert [n for n, _ in m.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    m.to(np.float32)
    assert m[1].running_mean.dtype == np.float32 and m[1].num_batches_tracked.dtype == np.int64
    state = m.state_dict()
    state["1.running_mean"] = np.array([1.0, 2.0])
    m.load_state_dict(state)
    np.testing.assert_array_equal(m[1].running_mean.data, [1.0, 2.0])
    with pytest.raises(ValueError, match="running_var"):
        m.load_state_dict({k: v for k, v in state.items() if k != "1.running_var"})


@pytest.mark.parametrize("call, parts", [
    (lambda: nn.Conv2d(3, 4, 0), ["kernel_size", "0"]),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ["divisible", "groups"]),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), ["padding_mode", "'mirror'"]),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), ["stride 1"]),
    (lambda: nn.Conv2d(3, 4, 3)(np.ones((1, 2, 5, 5))), ["2 channels", "(4, 3, 3, 3)"]),
    (lambda: nn.BatchNorm2d(3)(np.ones((2, 3, 4))), ["4-D", "(2, 3, 4)"]),
    (lambda: nn.BatchNorm1d(3)(np.ones((1, 3))), ["more than 1", "(1, 3)"]),
    (lambda: nn.Unflatten(1, (2, 4))(np.ones((2, 6))), ["(2, 6)", "(2, 4)"]),
    (lambda: nn.CNN((8, 8), (4,)), ["input_shape"]),
])
def test_layer_bad_input(call, parts):
    with pytest.raises(ValueError) as info:
        call()
    for part in parts:
        assert part in str(info.value)
