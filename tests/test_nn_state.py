"""Module.state_dict / load_state_dict / buffers, against PyTorch's semantics (torch.nn.Module).

Where PyTorch is installed, the keys and their order are compared with torch's own state dict
for the same architecture; the rest of the checks hold without it.
"""
from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn
from chainrule.tensor import Tensor

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (the key-order oracle)")


class Stats(nn.Module):
    """A layer with a parameter, a persistent float buffer, an int buffer and a scratch buffer."""

    def __init__(self, n: int):
        super().__init__()
        self.scale = nn.Parameter(np.ones(n))
        self.register_buffer("running_mean", np.zeros(n))
        self.register_buffer("count", np.array(0, dtype=np.int64))
        self.register_buffer("scratch", np.zeros(2), persistent=False)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("step", np.array(3, dtype=np.int64))
        self.body = nn.Sequential(nn.Linear(3, 4, rng=0), Stats(4), nn.ReLU(), nn.Linear(4, 2, rng=1))
        self.head = Stats(2)


def torch_net():
    class TStats(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(n))
            self.register_buffer("running_mean", torch.zeros(n))
            self.register_buffer("count", torch.tensor(0))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("step", torch.tensor(3))
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), TStats(4), torch.nn.ReLU(),
                                            torch.nn.Linear(4, 2))
            self.head = TStats(2)
    return TNet()


def test_buffers_are_registered_and_listed():
    net = Net()
    assert [k for k, _ in net.named_buffers()] == [
        "step", "body.1.running_mean", "body.1.count", "body.1.scratch", "head.running_mean",
        "head.count", "head.scratch"]
    assert isinstance(net.head.running_mean, Tensor) and not net.head.running_mean.requires_grad
    assert "running_mean" not in [k for k, _ in net.named_parameters()]
    net.head.running_mean = np.full(2, 5.0)  # reassigning keeps it a buffer
    assert net.state_dict()["head.running_mean"].tolist() == [5.0, 5.0]
    with pytest.raises(TypeError, match="buffer 'running_mean'"):
        net.head.running_mean = "zeros"
    del net.head.running_mean
    assert "head.running_mean" not in net.state_dict()


@needs_torch
def test_state_dict_keys_and_order_are_torchs():
    ours, theirs = Net().state_dict(), torch_net().state_dict()
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].shape == tuple(theirs[k].shape), k


@needs_torch
def test_shared_parameter_appears_under_every_name_as_in_torch():
    lin = nn.Linear(2, 2, rng=0)
    tlin = torch.nn.Linear(2, 2)
    assert list(nn.Sequential(lin, nn.ReLU(), lin).state_dict()) == list(
        torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin).state_dict())
    assert len(list(nn.Sequential(lin, lin).parameters())) == 2  # weight, bias: parameters() dedups


def test_state_dict_round_trip_includes_buffers_and_keeps_int_dtype():
    a, b = Net(), Net()
    a.body[1].running_mean.data[:] = [1.0, 2.0, 3.0, 4.0]
    a.body[1].count.data[...] = 7
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
        assert b.state_dict()[k].dtype == v.dtype
    assert "body.1.scratch" not in a.state_dict()


def test_load_state_dict_names_every_problem_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    bad = dict(before)
    del bad["head.count"]
    bad["body.0.weight"] = np.zeros((3, 4))
    bad["body.9.bias"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(bad)
    message = str(info.value)
    assert "missing keys: head.count" in message
    assert "unexpected keys: body.9.bias" in message
    assert "'body.0.weight' has shape (3, 4), the parameter has shape (4, 3)" in message
    for k, v in net.state_dict().items():  # checked before anything was copied
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_not_strict_reports_and_still_refuses_wrong_shapes():
    net = Net()
    result = net.load_state_dict({"step": np.array(9), "extra": np.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["extra"] and "head.count" in result.missing_keys
    assert int(net.step.data) == 9
    with pytest.raises(ValueError, match="buffer has shape"):
        net.load_state_dict({"head.running_mean": np.zeros(3)}, strict=False)
    with pytest.raises(ValueError, match="expected a numeric array"):
        net.load_state_dict({"head.running_mean": np.array(["a", "b"])}, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([("step", 1)])


def test_to_casts_float_buffers_only():
    net = Net().to(np.float32)
    assert net.head.running_mean.dtype == np.float32
    assert net.head.count.dtype == np.int64


@needs_torch
def test_load_state_dict_takes_torch_tensors_exactly():
    m = nn.MLP([3, 5, 2], rng=0)
    t = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).double()
    m.load_state_dict(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy())


def test_register_buffer_refuses_bad_names_and_values():
    m = nn.Linear(2, 2)
    with pytest.raises(KeyError, match="weight"):
        m.register_buffer("weight", np.zeros(2))
    with pytest.raises(ValueError, match="without '.'"):
        m.register_buffer("a.b", np.zeros(2))
    with pytest.raises(TypeError, match="got str"):
        m.register_buffer("x", "zeros")
