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
