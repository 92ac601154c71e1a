"""Model files as safetensors (chainrule.serialization.save_safetensors / load_model), and
``chainrule export --to safetensors``: exact round trips, PyTorch-loadable, bad files refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("safetensors", reason="the safetensors package is not installed")

from chainrule import nn  # noqa: E402
from chainrule.serialization import is_safetensors, load_model, read_safetensors, save_model, save_safetensors  # noqa: E402,E501


def odd_weights(model: nn.Module) -> nn.Module:
    """Weights whose every bit matters (subnormals, negative zero, values near the dtype's max)."""
    rng = np.random.default_rng(3)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 10.0 ** rng.integers(-300, 300, p.shape)
        p.data.flat[0] = -0.0
        p.data.flat[-1] = np.finfo(p.dtype).tiny / 4  # subnormal
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact(tmp_path, dtype):
    model = nn.Sequential(
        nn.Linear(3, 4, rng=0, dtype=dtype),
        nn.GELU("tanh"),
        nn.Dropout(0.25),
        nn.Sequential(nn.Linear(4, 2, bias=False, rng=1, dtype=dtype)),
        nn.LogSoftmax(axis=1),
    )
    with np.errstate(over="ignore"):
        odd_weights(model)
    arrays = {
        "mean": np.array([1 / 3, -2.5e-310, 7.0]),
        "names": np.array(["a", "bé"]),
        "count": np.arange(3, dtype=np.int32),
    }
    path = tmp_path / "m.safetensors"
    save_safetensors(path, model, {"task": "demo", "nested": [1, {"x": 2.5}]}, arrays)
    back = load_model(path)
    assert repr(back.model) == repr(model)
    assert list(back.model.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        got = back.model.state_dict()[key]
        assert got.dtype == value.dtype
        assert got.tobytes() == value.tobytes()  # bit for bit, -0.0 and subnormals included
    assert back.metadata == {"task": "demo", "nested": [1, {"x": 2.5}]}
    for key, value in arrays.items():
        assert back.arrays[key].dtype == value.dtype
        np.testing.assert_array_equal(back.arrays[key], value)
        assert back.arrays[key].tobytes() == value.tobytes()


def test_npz_and_safetensors_hold_the_same_model(tmp_path):
    model = nn.MLP([4, 6, 3], activation="elu", dropout=0.1, rng=2)
    save_model(tmp_path / "m.npz", model, {"k": 1}, {"a": np.ones(2)})
    save_safetensors(tmp_path / "m.st", model, {"k": 1}, {"a": np.ones(2)})
    a, b = load_model(tmp_path / "m.npz"), load_model(tmp_path / "m.st")
    assert repr(a.model) == repr(b.model) and type(b.model) is nn.MLP
    assert a.model.get_config() == b.model.get_config()
    for key, value in a.model.state_dict().items():
        np.testing.assert_array_equal(b.model.state_dict()[key], value)
    assert is_safetensors(tmp_path / "m.st") and not is_safetensors(tmp_path / "m.npz")


def test_the_tensors_are_the_state_dict_under_pytorch_names(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the loader oracle)")
    from safetensors.torch import load_file

    from chainrule.interop.torch import to_torch

    model = nn.MLP([4, 6, 3], rng=2)
    path = tmp_path / "m.safetensors"
    save_safetensors(path, model)
    state = load_file(str(path))
    oracle = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    assert sorted(state) == sorted(oracle.state_dict())
    oracle.load_state_dict(state)  # strict: exactly torch's keys and shapes
    target = to_torch(nn.MLP([4, 6, 3], rng=99))
    target.load_state_dict(state)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key].numpy(), value)


def test_a_torch_state_dict_saved_with_safetensors_loads_into_chainrule(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    oracle = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    save_file(oracle.state_dict(), str(tmp_path / "w.safetensors"))
    tensors, header = read_safetensors(tmp_path / "w.safetensors")
    model = nn.MLP([4, 6, 3], dtype=np.float32)
    model.load_state_dict(tensors)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x).data, oracle(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="not a chainrule model.*read_safetensors"):
        load_model(tmp_path / "w.safetensors")


def header_of(path) -> dict:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n])


def rewrite_header(path, change) -> None:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    change(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-5]), ["corrupt or truncated safetensors"]),
        (lambda p: p.write_bytes(p.read_bytes()[:30]), ["corrupt or truncated safetensors"]),
        (
            lambda p: rewrite_header(p, lambda h: h["__metadata__"].update({"chainrule.architecture": "{"})),
            ["bad JSON"],
        ),
        (
            lambda p: rewrite_header(p, lambda h: h["__metadata__"].update({"chainrule.version": "99"})),
            ["version 99"],
        ),
        (
            lambda p: rewrite_header(p, lambda h: h["__metadata__"].pop("chainrule.metadata")),
            ["not a chainrule model", "chainrule.metadata"],
        ),
        (
            lambda p: rewrite_header(
                p,
                lambda h: h["__metadata__"].update(
                    {"chainrule.architecture": json.dumps({"type": "MLP", "config": {"sizes": [4, 5, 3]}})}
                ),
            ),
            ["weights do not match", "0.weight"],
        ),
        (
            lambda p: rewrite_header(
                p,
                lambda h: h["__metadata__"].update(
                    {"chainrule.arrays": json.dumps({"a": {"dtype": "|O", "shape": [1], "data": [1]}})}
                ),
            ),
            ["array 'a'"],
        ),
    ],
)
def test_bad_safetensors_files_are_refused_with_the_file_named(tmp_path, damage, words):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, nn.MLP([4, 6, 3], rng=2))
    damage(path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_a_failed_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save_safetensors(path, nn.MLP([2, 2], rng=0))
    before = path.read_bytes()
    with pytest.raises(TypeError, match="JSON"):
        save_safetensors(path, nn.MLP([2, 2], rng=1), {"bad": object()})
    with pytest.raises(TypeError, match="object"):
        save_safetensors(path, nn.MLP([2, 2], rng=1), arrays={"o": np.array([None])})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_buffers_round_trip_with_their_shapes_and_dtypes(tmp_path):
    model = nn.CNN((1, 4, 4), (2,), 3, rng=0)
    model.train()
    model(np.random.default_rng(0).standard_normal((5, 16)))  # running statistics, one batch tracked
    path = tmp_path / "cnn.safetensors"
    save_safetensors(path, model)
    tensors, _ = read_safetensors(path)
    assert tensors["2.num_batches_tracked"].shape == () and tensors["2.num_batches_tracked"].dtype == np.int64
    back = load_model(path).model
    assert type(back) is nn.CNN
    for key, value in model.state_dict().items():
        got = back.state_dict()[key]
        assert (got.shape, got.dtype, got.tobytes()) == (value.shape, value.dtype, value.tobytes()), key
