"""Model files: round trips, the on-disk layout, clear errors for anything else, atomic writes."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, serialization
from chainrule.serialization import load_model, save_model


def _models():
    return [
        nn.MLP([5, 8, 4, 3], activation="relu", rng=0),
        nn.MLP([5, 6, 1], activation="tanh", output_activation="sigmoid", dropout=0.2, rng=1),
        nn.MLP([5, 4, 2], activation="leaky_relu", rng=2, dtype=np.float32),
        nn.Sequential(nn.Linear(5, 7, rng=3), nn.LeakyReLU(0.2), nn.Dropout(0.1),
                      nn.Linear(7, 3, bias=False, rng=4), nn.Softplus(beta=2.0),
                      nn.Sequential(nn.Linear(3, 2, rng=5), nn.GELU("tanh")), nn.LogSoftmax()),
    ]


@pytest.mark.parametrize("model", _models(), ids=["relu", "sigmoid-out", "float32", "sequential"])
def test_round_trip_gives_identical_predictions(tmp_path, model):
    path = tmp_path / "model.npz"
    metadata = {"task": "classification", "classes": ["a", "b"], "nested": {"k": [1, 2.5]}}
    arrays = {"mean": np.arange(5.0), "names": np.array(["x", "y"])}
    save_model(path, model, metadata, arrays)
    saved = load_model(path)
    model.eval()
    x = cr.tensor(np.random.default_rng(0).standard_normal((9, 5)), dtype=model.state_dict()["0.weight"].dtype
                  if "0.weight" in model.state_dict() else np.float64)
    np.testing.assert_array_equal(saved.model.eval()(x).data, model(x).data)
    assert repr(saved.model) == repr(model)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), saved.model.named_parameters(), strict=True):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1.data, p2.data)
    assert saved.metadata == metadata and saved.version == serialization.VERSION
    np.testing.assert_array_equal(saved.arrays["mean"], arrays["mean"])
    assert saved.arrays["names"].tolist() == ["x", "y"]


def test_layout_is_plain_arrays_without_pickle(tmp_path):
    path = tmp_path / "m.npz"
    save_model(path, nn.MLP([3, 4, 2], rng=0), {"note": "hi"})
    with np.load(path, allow_pickle=False) as npz:
        assert str(npz["__format__"]) == "chainrule.model"
        assert int(npz["__version__"]) == 1
        assert npz["__architecture__"].dtype.kind == "U"
        spec = json.loads(str(npz["__architecture__"]))
        assert spec["type"] == "MLP" and spec["config"]["sizes"] == [3, 4, 2]
        assert sorted(k for k in npz.files if k.startswith("param/")) == [
            "param/0.bias", "param/0.weight", "param/2.bias", "param/2.weight"]
        assert all(npz[k].dtype != object for k in npz.files)


def test_custom_module_cannot_be_saved(tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="cannot save a Custom"):
        save_model(tmp_path / "m.npz", nn.Sequential(nn.Linear(2, 2), Custom()))
    with pytest.raises(TypeError, match="chainrule.nn.Module"):
        save_model(tmp_path / "m.npz", {"weight": np.ones(2)})
    assert not (tmp_path / "m.npz").exists()


# --- anything that is not a model file ------------------------------------------------------------------

@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.npz"
    save_model(path, nn.MLP([3, 4, 2], rng=0), {"a": 1})
    return path


def test_truncated_file(tmp_path, good_file):
    blob = good_file.read_bytes()
    for cut in (len(blob) // 2, len(blob) - 30, 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(blob[:cut])
        with pytest.raises(ValueError, match="cut.*npz: (corrupt|not a)"):
            load_model(bad)


def test_corrupted_bytes(tmp_path, good_file):
    blob = bytearray(good_file.read_bytes())
    for i in range(200, len(blob) - 200, 97):
        blob[i] ^= 0xFF
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="flipped.npz"):
        load_model(bad)


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match="pickled data, which chainrule never loads"):
        load_model(path)
    npz = tmp_path / "objects.npz"
    np.savez(npz, __format__=np.array("chainrule.model"), __version__=np.array(1),
             __architecture__=np.array({"type": "MLP"}, dtype=object))
    with pytest.raises(ValueError, match="objects.npz"):
        load_model(npz)


@pytest.mark.parametrize("make, message", [
    (lambda f: f.write(b"hello, I am text"), "not a (readable )?chainrule model file"),
    (lambda f: f.write(b""), "model file"),
    (lambda p: np.save(p, np.ones(3)), "a single NumPy array"),
    (lambda p: np.savez(p, weights=np.ones(3)), "no __format__ entry"),
    (lambda p: np.savez(p, __format__=np.array("keras.model")), "format 'keras.model'"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(99)),
     "format version 99; this chainrule reads versions 1 to 1"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(1),
                        __architecture__=np.array("{not json"), __metadata__=np.array("{}")), "bad JSON"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(1),
                        __architecture__=np.array('{"type": "Transformer"}'), __metadata__=np.array("{}")),
     "unknown module type 'Transformer'"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(1),
                        __architecture__=np.array('{"type": "Linear", "config": {"in_features": 2, '
                                                  '"out_features": 3}}'),
                        __metadata__=np.array("{}"), **{"param/weight": np.ones((3, 2))}),
     "weights do not match the architecture.*missing keys: bias"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(1),
                        __architecture__=np.array('{"type": "Linear", "config": {"in_features": 2, '
                                                  '"out_features": 3, "bias": false}}'),
                        __metadata__=np.array("{}"), **{"param/weight": np.ones((2, 3))}),
     r"shape \(2, 3\), the parameter has shape \(3, 2\)"),
    (lambda p: np.savez(p, __format__=np.array("chainrule.model"), __version__=np.array(1),
                        __architecture__=np.array('{"type": "Linear", "config": {"wrong": 1}}'),
                        __metadata__=np.array("{}")), "invalid config for Linear"),
])
def test_foreign_or_malformed_files(tmp_path, make, message):
    path = tmp_path / "foreign.npz"
    with open(path, "wb") as handle:
        make(handle)
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path)


# --- atomic writes ----------------------------------------------------------------------------------

def test_failed_save_leaves_the_existing_file_intact(tmp_path, good_file, monkeypatch):
    before = good_file.read_bytes()
    real_savez = np.savez

    def savez_then_crash(handle, **arrays):
        real_savez(handle, **arrays)
        handle.write(b"half of something")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(serialization.np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="simulated"):
        save_model(good_file, nn.MLP([3, 9, 2], rng=5))
    assert good_file.read_bytes() == before
    assert os.listdir(tmp_path) == ["good.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert load_model(good_file).metadata == {"a": 1}


def test_unserialisable_metadata_fails_before_touching_the_file(tmp_path, good_file):
    before = good_file.read_bytes()
    with pytest.raises(TypeError, match="JSON"):
        save_model(good_file, nn.MLP([3, 4, 2]), {"rng": np.random.default_rng()})
    with pytest.raises(TypeError, match="no objects, no pickle"):
        save_model(good_file, nn.MLP([3, 4, 2]), arrays={"bad": np.array([{}], dtype=object)})
    assert good_file.read_bytes() == before


def test_unwritable_destination(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_model(tmp_path / "no-such-dir" / "m.npz", nn.MLP([2, 2]))
    with pytest.raises(IsADirectoryError):
        save_model(tmp_path, nn.MLP([2, 2]))
