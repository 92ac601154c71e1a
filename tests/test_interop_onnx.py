"""chainrule.interop.onnx: the ONNX graph passes onnx.checker, and ONNX Runtime on raw rows gives
what ``chainrule predict`` gives (1e-5, float32), for every kind of head."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the runtime oracle)")
pytest.importorskip("sklearn", reason="the built-in datasets need scikit-learn")

from chainrule import data, nn  # noqa: E402
from chainrule.interop.onnx import load_onnx, save_onnx, to_onnx  # noqa: E402
from chainrule.train import TrainConfig, run_training  # noqa: E402

CASES = {  # dataset, loss, activation: one of each head kind
    "multiclass": ("iris", "cross_entropy", "gelu"),
    "margin": ("wine", "multi_margin_loss", "elu"),
    "signed": ("breast_cancer", "hinge_loss", "leaky_relu"),
    "probability": ("breast_cancer", "binary_cross_entropy", "softplus"),
    "logit": ("breast_cancer", "binary_cross_entropy_with_logits", "tanh"),
    "onehot": ("iris", "mse_loss", "sigmoid"),
    "regression": ("diabetes", "huber_loss", "relu"),
}


@pytest.fixture(scope="module", params=list(CASES))
def trained(request):
    dataset, loss, activation = CASES[request.param]
    run = run_training(TrainConfig(dataset=dataset, loss=loss, activation=activation, epochs=2, hidden=(8,)))
    return run.trained, dataset


def run_onnx(proto, rows: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": rows.astype(np.float32)}), strict=True))


def test_onnx_on_dataset_rows_equals_predict(trained):
    model, dataset = trained
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    rows = data.load_raw(dataset)[0]
    got, expected = run_onnx(proto, rows), model.predict(rows)
    if model.task == "regression":
        assert set(got) == {"prediction"}
        scale = np.abs(expected["prediction"]).max()
        np.testing.assert_allclose(got["prediction"], expected["prediction"], rtol=1e-5, atol=1e-5 * scale)
        return
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-5, atol=1e-5)
    assert ("probabilities" in got) == ("probabilities" in expected)
    if "probabilities" in got:
        np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5)
    # the decision agrees wherever float32 rounding cannot flip it
    scores = expected["scores"]
    if scores.shape[1] > 1:
        top2 = np.sort(scores, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 1e-4
    else:
        clear = np.abs(scores[:, 0] - (0.5 if model.head.kind == "probability" else 0.0)) > 1e-4
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got["index"][clear], expected["index"][clear])
    assert got["index"].dtype == np.int64


def test_onnx_equals_the_predict_command_on_csv_rows(tmp_path, run_cli):
    run = run_training(TrainConfig(dataset="iris", epochs=3, hidden=(8,)))
    model_path, csv_path = tmp_path / "iris.npz", tmp_path / "rows.csv"
    run.trained.save(model_path)
    rows, _, names, *_ = data.load_raw("iris")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(rows.tolist())
    code, out, err = run_cli(["predict", str(model_path), "--csv", str(csv_path)])
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    probabilities = np.array([[float(v) for v in r[1:]] for r in table[1:]])
    code, _, err = run_cli(["export", str(model_path), "--to", "onnx", "-o", str(tmp_path / "iris.onnx")])
    assert code == 0, err
    got = run_onnx(load_onnx(tmp_path / "iris.onnx"), rows)
    np.testing.assert_allclose(got["probabilities"], probabilities, atol=1e-5)  # predict prints 6 decimals
    classes = run.trained.classes
    predicted = [r[0] for r in table[1:]]
    assert [str(classes[i]) for i in got["index"]] == predicted


def test_a_bare_network_exports_with_every_layer():
    net = nn.Sequential(
        nn.Linear(4, 6, rng=0),
        nn.Sigmoid(),
        nn.Linear(6, 6, rng=1),
        nn.Tanh(),
        nn.Linear(6, 6, bias=False, rng=2),
        nn.ReLU(),
        nn.LeakyReLU(0.2),
        nn.ELU(0.7),
        nn.GELU(),
        nn.GELU("tanh"),
        nn.Softplus(2.0, 1.0),
        nn.Dropout(0.5),
        nn.Identity(),
        nn.Sequential(nn.Linear(6, 3, rng=3)),
        nn.Softmax(axis=1),
        nn.LogSoftmax(axis=-1),
    )
    net.eval()
    x = np.random.default_rng(0).standard_normal((9, 4)) * 3
    exact_gelu = net[8]
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        # ONNX Runtime's CPU has no float64 Erf kernel: the float64 run swaps exact GELU out
        net._modules["8"] = exact_gelu if dtype == np.float32 else nn.Identity()
        proto = to_onnx(net, dtype=dtype)
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"input": x.astype(dtype)})
        np.testing.assert_allclose(out, net(x).data, rtol=tol, atol=tol)


def test_export_refusals():
    with pytest.raises(TypeError, match="model.0: cannot export a L1Loss"):
        to_onnx(nn.Sequential(nn.L1Loss(), nn.Linear(2, 2)), input_size=2)
    with pytest.raises(ValueError, match="float32 or float64"):
        to_onnx(nn.Linear(2, 2), dtype=np.float16)
    with pytest.raises(ValueError, match="input size"):
        to_onnx(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="got str"):
        to_onnx("model.npz")


def test_bad_onnx_files_are_named(tmp_path):
    good = tmp_path / "m.onnx"
    save_onnx(good, nn.MLP([2, 3, 1], rng=0))
    truncated = tmp_path / "t.onnx"
    truncated.write_bytes(good.read_bytes()[:40])
    foreign = tmp_path / "f.onnx"
    foreign.write_bytes(b"PK\x03\x04 this is a zip, not a protobuf" * 3)
    for path in (truncated, foreign):
        with pytest.raises(ValueError, match="not a valid ONNX model") as info:
            load_onnx(path)
        assert str(path) in str(info.value)
    assert load_onnx(good).graph.output[0].name == "output"


def test_a_trained_cnn_exports_with_predicts_numbers():
    run = run_training(TrainConfig(dataset="digits", model="cnn", hidden=(4, 6), epochs=1, batch_size=256))
    trained = run.trained
    proto = to_onnx(trained)
    assert {"Conv", "BatchNormalization", "MaxPool", "Flatten", "Reshape"} <= {
        n.op_type for n in proto.graph.node
    }
    rows = data.load_raw("digits")[0][:300]
    got, expected = run_onnx(proto, rows), trained.predict(rows)
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], atol=1e-5)


def test_conv_pool_and_norm_layers_export():
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Unflatten(1, (2, 10)),
        nn.Conv1d(2, 3, 3, padding=1, rng=1),
        nn.BatchNorm1d(3),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(3, 4, 2, stride=2, rng=2),
        nn.LayerNorm(2),
        nn.AvgPool1d(2, count_include_pad=False),
        nn.Flatten(),
        nn.Linear(4, 6, rng=3),
        nn.Unflatten(1, (1, 2, 3)),
        nn.Conv2d(1, 2, (2, 3), padding="same", dilation=(2, 1), bias=False, rng=4),
        nn.BatchNorm2d(2, affine=False),
        nn.AvgPool2d(2, padding=1),
        nn.MaxPool2d(2, stride=1, padding=1, dilation=1),
        nn.Flatten(),
    )
    net.train()
    net(rng.standard_normal((8, 20)))  # running statistics away from their initial 0 and 1
    net.eval()
    x = rng.standard_normal((5, 20))
    (out,) = run_onnx(to_onnx(net), x).values()
    np.testing.assert_allclose(out, net(x).data, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layer, words",
    [
        (nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"), "padding_mode='circular'"),
        (nn.MaxPool2d(2, return_indices=True), "return_indices"),
        (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
        (nn.BatchNorm2d(1, track_running_stats=False), "track_running_stats=False"),
        (nn.Flatten(2), "Flatten(start_dim=2"),
        (nn.Unflatten(2, (1, 1)), "Unflatten(dim=2)"),
        (nn.Embedding(3, 2), "Embedding"),
    ],
)
def test_layer_settings_without_an_onnx_export_are_named(layer, words):
    with pytest.raises(TypeError) as info:
        to_onnx(nn.Sequential(nn.Unflatten(1, (1, 2, 2)), layer), input_size=4)
    assert "model.1" in str(info.value) and words in str(info.value)
