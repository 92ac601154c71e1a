"""``chainrule export MODEL --to safetensors|onnx|torch -o FILE`` end to end, in process."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the built-in datasets need scikit-learn")

from chainrule import data, nn  # noqa: E402
from chainrule.serialization import load_model, save_model  # noqa: E402
from chainrule.train import TrainConfig, TrainedModel, run_training  # noqa: E402


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    paths = {}
    for name, config in {
        "iris": TrainConfig(dataset="iris", epochs=3, hidden=(8,)),
        "diabetes": TrainConfig(dataset="diabetes", epochs=2, hidden=(8,)),
    }.items():
        paths[name] = folder / f"{name}.npz"
        run_training(config).trained.save(paths[name])
    return paths


def test_safetensors_export_evaluates_and_predicts_as_the_npz(model_paths, tmp_path, run_cli):
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    source, out = model_paths["iris"], tmp_path / "iris.safetensors"
    code, stdout, err = run_cli(["export", str(source), "--to", "safetensors", "-o", str(out)])
    assert code == 0 and stdout == "" and "4 tensors under PyTorch's names (0.weight, 0.bias" in err
    a, b = TrainedModel.load(source), TrainedModel.load(out)
    for key, value in a.model.state_dict().items():
        assert b.model.state_dict()[key].tobytes() == value.tobytes()
    assert (a.feature_scaler.mean.tobytes(), a.classes) == (b.feature_scaler.mean.tobytes(), b.classes)
    npz = run_cli(["evaluate", str(source), "--dataset", "iris"])[1]
    st = run_cli(["evaluate", str(out), "--dataset", "iris"])[1]
    assert npz.replace(str(source), "M") == st.replace(str(out), "M")
    # and back again: a safetensors model file exports like an .npz one
    code, _, err = run_cli(["export", str(out), "--to", "safetensors", "-o", str(tmp_path / "again.st")])
    assert code == 0, err
    again = load_model(tmp_path / "again.st")  # (the header's key order is the Rust writer's)
    assert again.metadata == load_model(out).metadata
    for key, value in b.model.state_dict().items():
        assert again.model.state_dict()[key].tobytes() == value.tobytes()


def test_a_network_file_without_preprocessing_exports_the_network(tmp_path, run_cli):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="the onnx package is not installed")
    net = nn.MLP([3, 5, 2], activation="tanh", rng=0)
    save_model(tmp_path / "net.npz", net)
    code, _, err = run_cli(
        ["export", str(tmp_path / "net.npz"), "--to", "onnx", "-o", str(tmp_path / "net.onnx")]
    )
    assert code == 0 and "the network" in err
    x = np.random.default_rng(1).standard_normal((4, 3))
    (out,) = ort.InferenceSession(str(tmp_path / "net.onnx")).run(None, {"input": x.astype(np.float32)})
    np.testing.assert_allclose(out, net(x).data, rtol=1e-5, atol=1e-5)


def test_torch_export_runs_in_pytorch_as_predict(model_paths, tmp_path, run_cli):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    for name in ("iris", "diabetes"):
        out = tmp_path / f"{name}.pt2"
        code, _, err = run_cli(["export", str(model_paths[name]), "--to", "torch", "-o", str(out)])
        assert code == 0, err
        program = torch.export.load(str(out)).module()
        trained = TrainedModel.load(model_paths[name])
        rows = data.load_raw(name)[0]
        got = program(torch.from_numpy(rows)).detach().numpy()
        expected = trained.predict(rows)
        key = "prediction" if trained.task == "regression" else "scores"
        np.testing.assert_allclose(got, expected[key], rtol=1e-12, atol=1e-12)  # float64 both sides


def test_the_model_file_is_left_alone(model_paths, tmp_path, run_cli):
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    before = model_paths["iris"].read_bytes()
    assert (
        run_cli(["export", str(model_paths["iris"]), "--to", "safetensors", "-o", str(tmp_path / "x")])[0]
        == 0
    )
    assert model_paths["iris"].read_bytes() == before
    assert load_model(tmp_path / "x").metadata["kind"] == "chainrule.trained_model"
