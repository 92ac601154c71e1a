"""``chainrule train``, ``evaluate`` and ``predict`` end to end, in process, with their error paths."""
from __future__ import annotations

import csv
import io
import os
import signal

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train import TrainedModel

sklearn = pytest.importorskip("sklearn", reason="the built-in datasets need scikit-learn")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "iris.npz"
    assert main(["train", "--dataset", "iris", "--epochs", "20", "--quiet", "--out", str(path)]) == 0
    return path


def test_train_prints_epochs_and_summary_and_saves(tmp_path, capsys):
    model, plot = tmp_path / "m.npz", tmp_path / "curves.png"
    code, out, err = _run(capsys, "train", "--dataset", "wine", "--hidden", "16", "--epochs", "3",
                          "--lr", "0.01", "--out", str(model), "--plot", str(plot))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("train loss" in line and "accuracy" in line for line in lines)
    assert "summary" in out and "13 -> 16 -> 3" in out and "model saved to" in out
    assert err == ""  # no progress bar when stderr is not a terminal
    assert TrainedModel.load(model).classes == ["class_0", "class_1", "class_2"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_train_regression_reports_r2_and_mae(capsys):
    code, out, _ = _run(capsys, "train", "--dataset", "diabetes", "--epochs", "2", "--loss", "l1")
    assert code == 0 and "R^2" in out and "MAE" in out


def test_train_on_a_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = ["x1,x2,noise,kind"] + [f"{a:.4f},{b:.4f},{c:.4f},{'big' if a + b > 0 else 'small'}"
                                   for a, b, c in rng.normal(size=(80, 3))]
    path = tmp_path / "own.csv"
    path.write_text("\n".join(rows) + "\n")
    code, out, err = _run(capsys, "train", "--csv", str(path), "--target", "kind", "--features", "x1,x2",
                          "--epochs", "30", "--lr", "0.02", "--quiet", "--out", str(tmp_path / "own.npz"))
    assert code == 0, err
    assert "2 features" in out and "classification, 2 classes" in out
    code, out, _ = _run(capsys, "evaluate", str(tmp_path / "own.npz"), "--csv", str(path))
    assert code == 0 and "80 samples" in out


def test_evaluate_uses_the_training_split(iris_model, capsys):
    code, out, _ = _run(capsys, "evaluate", str(iris_model), "--dataset", "iris")
    assert code == 0 and "iris (test), 30 samples" in out
    trained = TrainedModel.load(iris_model)
    reported = trained.info["results"]["test"]["accuracy"]
    assert f"{reported:.2%}" in out  # the same number training reported for its last epoch
    code, out, _ = _run(capsys, "evaluate", str(iris_model), "--dataset", "iris", "--split", "all")
    assert "150 samples" in out


def test_predict_to_stdout_and_file(iris_model, tmp_path, capsys):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *iris.feature_names])  # passed through to the output
        for i in (0, 60, 120):
            writer.writerow([i, *iris.data[i]])
    code, out, _ = _run(capsys, "predict", str(iris_model), "--csv", str(rows))
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == ["id", "prediction", "p_setosa", "p_versicolor", "p_virginica"]
    assert [r["prediction"] for r in table] == ["setosa", "versicolor", "virginica"]
    for r in table:
        assert sum(float(r[k]) for k in r if k.startswith("p_")) == pytest.approx(1.0, abs=1e-5)
    out_path = tmp_path / "preds.csv"
    code, out, err = _run(capsys, "predict", str(iris_model), "--csv", str(rows), "--out", str(out_path))
    assert code == 0 and out == "" and "wrote 3 predictions" in err
    assert list(csv.DictReader(out_path.open()))[0]["prediction"] == "setosa"


# --- Ctrl-C -----------------------------------------------------------------------------------------------

def _press_ctrl_c_at(monkeypatch, epoch, batch):
    """Deliver a real SIGINT to this process after the given batch, via the progress callback."""
    from chainrule.cli import train as cli_train

    real = cli_train._Reporter.batch

    def batch_then_sigint(self, e, b, n, loss):
        real(self, e, b, n, loss)
        if (e, b) == (epoch, batch):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli_train._Reporter, "batch", batch_then_sigint)


def test_ctrl_c_stops_after_the_batch_and_saves(tmp_path, capsys, monkeypatch):
    _press_ctrl_c_at(monkeypatch, 2, 3)
    handler_before = signal.getsignal(signal.SIGINT)
    model = tmp_path / "partial.npz"
    code, out, err = _run(capsys, "train", "--dataset", "wine", "--epochs", "50", "--out", str(model))
    assert code == 130
    assert err.strip() == (f"chainrule: interrupted: stopped after epoch 2, batch 3; saved the model "
                           f"trained so far to {model}")
    assert "2 of 50" in out and "(interrupted)" in out
    assert TrainedModel.load(model).info["results"]["interrupted"] is True
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is restored


def test_ctrl_c_without_out_says_nothing_was_saved(capsys, monkeypatch):
    _press_ctrl_c_at(monkeypatch, 1, 1)
    code, _, err = _run(capsys, "train", "--dataset", "iris", "--epochs", "5")
    assert code == 130 and err.strip().endswith("nothing saved (no --out given)")


# --- errors: one line on stderr, exit code 2 -----------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["train", "--dataset", "iris", "--lr", "0"], "learning rate must be"),
    (["train", "--dataset", "iris", "--lr", "-0.1"], "learning rate must be"),
    (["train", "--dataset", "iris", "--batch-size", "0"], "batch size must be a positive integer"),
    (["train", "--dataset", "iris", "--epochs", "-2"], "epochs must be a positive integer"),
    (["train", "--dataset", "iris", "--loss", "hamming"], "unknown loss 'hamming'"),
    (["train", "--dataset", "iris", "--activation", "swish"], "unknown activation 'swish'"),
    (["train", "--dataset", "iris", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["train", "--dataset", "iris", "--loss", "hinge"], "needs two classes"),
    (["train", "--dataset", "iris", "--hidden", "8,x"], "--hidden must be comma-separated integers"),
    (["train", "--dataset", "iris", "--out", "/no/such/dir/m.npz"], "directory /no/such/dir does not exist"),
    (["train"], "give --dataset NAME or --csv FILE"),
    (["train", "--dataset", "iris", "--csv", "x.csv"], "exactly one"),
    (["train", "--csv", "x.csv"], "--csv needs --target"),
    (["train", "--csv", "/no/such.csv", "--target", "y"], "no such file"),
    (["evaluate", "/no/model.npz", "--dataset", "iris"], "model file /no/model.npz: no such file"),
    (["predict", "/no/model.npz", "--csv", "x.csv"], "no such file"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_unwritable_output_directory(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code, _, err = _run(capsys, "train", "--dataset", "iris", "--out", str(locked / "m.npz"))
        assert code == 2 and "is not writable" in err
    finally:
        locked.chmod(0o700)


def test_unwritable_output_directory_reported_before_training(tmp_path, capsys, monkeypatch):
    # the same check as above, for runs as root: pretend the directory refuses writes
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    code, out, err = _run(capsys, "train", "--dataset", "iris", "--out", str(tmp_path / "m.npz"))
    assert code == 2 and f"directory {tmp_path} is not writable" in err and out == ""


def test_output_path_is_a_directory(tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--dataset", "iris", "--plot", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_corrupt_model_and_wrong_dataset(iris_model, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(iris_model.read_bytes()[:500])
    code, _, err = _run(capsys, "evaluate", str(bad), "--dataset", "iris")
    assert code == 2 and "corrupt or truncated" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "evaluate", str(iris_model), "--dataset", "wine")
    assert code == 2 and "trained on 4 features" in err


def test_predict_csv_missing_a_feature_column(iris_model, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal length (cm),sepal width (cm)\n1,2\n")
    code, _, err = _run(capsys, "predict", str(iris_model), "--csv", str(rows))
    assert code == 2 and "missing column(s) 'petal length (cm)', 'petal width (cm)'" in err


def test_predict_with_a_hinge_model_writes_scores(tmp_path, capsys):
    from sklearn.datasets import load_breast_cancer

    model = tmp_path / "svm.npz"
    assert main(["train", "--dataset", "breast_cancer", "--loss", "hinge", "--epochs", "5", "--quiet",
                 "--out", str(model)]) == 0
    bc = load_breast_cancer()
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(bc.feature_names)
        writer.writerows(bc.data[:20])
    capsys.readouterr()
    code, out, _ = _run(capsys, "predict", str(model), "--csv", str(rows))
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(table[0]) == ["prediction", "score"]
    for r in table:  # the sign of the score decides: +1 is class 1 (benign), -1 class 0 (malignant)
        assert r["prediction"] == ("benign" if float(r["score"]) >= 0 else "malignant")
    truth = bc.target_names[bc.target[:20]]
    assert sum(r["prediction"] == t for r, t in zip(table, truth, strict=True)) >= 18


# --- evaluate without --dataset, predict's pass-through columns ----------------------------------------

def test_evaluate_without_dataset_uses_the_one_the_model_records(iris_model, capsys):
    code, out, err = _run(capsys, "evaluate", str(iris_model))
    assert code == 0, err
    assert "iris (test), 30 samples" in out
    reported = TrainedModel.load(iris_model).info["results"]["test"]["accuracy"]
    assert f"{reported:.2%}" in out


def test_evaluate_without_dataset_of_a_csv_model_asks_for_the_csv(tmp_path, capsys):
    rows = ["a,b,y"] + [f"{i % 7},{i % 5},{i % 2}" for i in range(40)]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.npz"
    assert main(["train", "--csv", str(path), "--target", "y", "--epochs", "2", "--quiet",
                 "--out", str(model)]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "evaluate", str(model))
    assert code == 2 and "trained on a CSV file" in err and "--csv FILE" in err


def _iris_rows(tmp_path, extra_columns):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = tmp_path / "rows.csv"
    with open(rows, "w", newline="") as handle:
        writer = csv.writer(handle)
        names = list(extra_columns)
        writer.writerow([names[0], *iris.feature_names, *names[1:]])
        for i in (0, 60, 120):
            values = [f"{name}-{i}" for name in names]
            writer.writerow([values[0], *iris.data[i], *values[1:]])
    return rows


def test_predict_passes_the_other_columns_through_by_default(iris_model, tmp_path, capsys):
    rows = _iris_rows(tmp_path, ["id", "note"])
    code, out, err = _run(capsys, "predict", str(iris_model), "--csv", str(rows))
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0])[:3] == ["id", "note", "prediction"]
    assert [r["id"] for r in table] == ["id-0", "id-60", "id-120"]  # row order kept, text untouched
    assert [r["note"] for r in table] == ["note-0", "note-60", "note-120"]
    assert [r["prediction"] for r in table] == ["setosa", "versicolor", "virginica"]


def test_predict_keep_columns_chooses_them(iris_model, tmp_path, capsys):
    rows = _iris_rows(tmp_path, ["id", "note"])
    code, out, _ = _run(capsys, "predict", str(iris_model), "--csv", str(rows), "--keep-columns", "id")
    assert code == 0 and out.splitlines()[0].split(",")[:2] == ["id", "prediction"]
    code, out, _ = _run(capsys, "predict", str(iris_model), "--csv", str(rows), "--keep-columns", "none")
    assert code == 0 and out.splitlines()[0].split(",")[0] == "prediction"
    code, _, err = _run(capsys, "predict", str(iris_model), "--csv", str(rows), "--keep-columns", "idx")
    assert code == 2 and "missing column(s) 'idx'" in err


def test_predict_refuses_a_column_that_would_appear_twice(iris_model, tmp_path, capsys):
    rows = _iris_rows(tmp_path, ["prediction"])
    out_path = tmp_path / "out.csv"
    out_path.write_text("keep me")
    code, _, err = _run(capsys, "predict", str(iris_model), "--csv", str(rows), "--out", str(out_path))
    assert code == 2 and "'prediction' would appear twice" in err and "--keep-columns" in err
    assert out_path.read_text() == "keep me"
