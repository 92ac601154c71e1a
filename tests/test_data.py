"""Datasets, splits, standardisation, CSV reading and the DataLoader."""
from __future__ import annotations

import numpy as np
import pytest

from chainrule import data
from chainrule.tensor import Tensor

# --- DataLoader ------------------------------------------------------------------------------------


def _toy(n=10):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    return data.ArrayDataset(x, np.arange(n))


def test_loader_covers_every_sample_once_per_epoch():
    loader = data.DataLoader(_toy(10), batch_size=3, shuffle=True, seed=0)
    assert len(loader) == 4
    for _ in range(2):
        batches = list(loader)
        assert [len(y) for _, y in batches] == [3, 3, 3, 1]
        seen = np.concatenate([y.data for _, y in batches])
        assert sorted(seen) == list(range(10))
        for x, y in batches:  # rows stay paired with their targets
            assert isinstance(x, Tensor) and not x.requires_grad
            np.testing.assert_array_equal(x.data[:, 0], 2 * y.data)


def test_loader_shuffle_is_seeded_and_reshuffles_each_epoch():
    def orders(seed):
        loader = data.DataLoader(_toy(20), batch_size=20, shuffle=True, seed=seed)
        return [next(iter(loader))[1].data.tolist() for _ in range(2)]

    first, again = orders(3), orders(3)
    assert first == again  # same seed, same orders
    assert first[0] != first[1]  # a new order each epoch
    assert orders(4) != first


def test_loader_without_shuffle_keeps_order_and_drop_last():
    loader = data.DataLoader(_toy(7), batch_size=2, drop_last=True)
    assert len(loader) == 3
    assert [y.data.tolist() for _, y in loader] == [[0, 1], [2, 3], [4, 5]]


def test_loader_accepts_any_indexable_dataset():
    pairs = [(np.array([i, -i], dtype=float), i % 2) for i in range(5)]
    x, y = next(iter(data.DataLoader(pairs, batch_size=5)))
    assert x.shape == (5, 2) and y.data.tolist() == [0, 1, 0, 1, 0]


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_loader_bad_batch_size(size):
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(_toy(), batch_size=size)


def test_array_dataset_length_mismatch():
    with pytest.raises(ValueError, match="3 rows but targets have 2"):
        data.ArrayDataset(np.zeros((3, 2)), np.zeros(2))


# --- split and standardisation ----------------------------------------------------------------------

def test_stratified_split_keeps_class_proportions():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, test = data.train_test_split(100, 0.2, seed=1, stratify=labels)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
    again = data.train_test_split(100, 0.2, seed=1, stratify=labels)
    np.testing.assert_array_equal(again[1], test)
    other = data.train_test_split(100, 0.2, seed=2, stratify=labels)
    assert not np.array_equal(other[1], test)


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    features = rng.normal(5.0, 3.0, size=(200, 3))
    features[:, 2] = 7.0  # a constant column must not become NaN
    labels = rng.integers(0, 2, 200)
    split = data.make_split("toy", features, labels, "classification", feature_names=["a", "b", "c"],
                            target_name="y", classes=[0, 1], seed=0)
    train_idx, test_idx = data.train_test_split(200, 0.2, seed=0, stratify=labels)
    mean, std = features[train_idx].mean(axis=0), features[train_idx].std(axis=0)
    np.testing.assert_allclose(split.feature_scaler.mean, mean)
    np.testing.assert_allclose(split.test.features[:, :2], (features[test_idx, :2] - mean[:2]) / std[:2])
    np.testing.assert_array_equal(split.test.features[:, 2], 0.0)
    np.testing.assert_allclose(split.train.features[:, :2].mean(axis=0), 0.0, atol=1e-12)
    # the test part, standardised with the training statistics, is not exactly centred
    assert np.abs(split.test.features[:, :2].mean(axis=0)).max() > 1e-6


def test_regression_targets_standardised_on_train_and_invertible():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 2)), rng.normal(100.0, 20.0, size=50)
    split = data.make_split("toy", x, y, "regression", feature_names=["a", "b"], target_name="t")
    train_idx, test_idx = data.train_test_split(50, 0.2, seed=0)
    assert split.train.targets.shape == (40, 1)
    np.testing.assert_allclose(split.target_scaler.inverse_transform(split.test.targets)[:, 0], y[test_idx])
    np.testing.assert_allclose(split.target_scaler.mean, [y[train_idx].mean()])


def test_label_encodings():
    y = np.array([0, 1, 1, 0])
    assert data.encode_labels(y, 2, "signed").tolist() == [-1.0, 1.0, 1.0, -1.0]
    np.testing.assert_array_equal(data.encode_labels(y, 2, "onehot"), np.eye(2)[y])
    with pytest.raises(ValueError, match="exactly 2 classes"):
        data.encode_labels(np.array([0, 2]), 3, "signed")
    with pytest.raises(ValueError, match="labels must be one of"):
        data.encode_labels(y, 2, "words")


def test_float32_split():
    split = data.make_split("toy", np.ones((10, 2)) * np.arange(10)[:, None], np.arange(10.0),
                            "regression", feature_names=["a", "b"], target_name="t", dtype=np.float32)
    assert split.train.features.dtype == np.float32 and split.train.targets.dtype == np.float32


# --- the scikit-learn datasets ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def sklearn_datasets():
    return pytest.importorskip("sklearn.datasets", reason="the built-in datasets need scikit-learn")


@pytest.mark.parametrize("name, n_features, n_classes, total", [
    ("digits", 64, 10, 1797), ("iris", 4, 3, 150), ("wine", 13, 3, 178), ("breast_cancer", 30, 2, 569),
])
def test_classification_datasets(sklearn_datasets, name, n_features, n_classes, total):
    split = data.load_dataset(name, seed=0)
    assert split.task == "classification" and split.n_features == n_features
    assert split.n_classes == n_classes and len(split.train) + len(split.test) == total
    assert len(split.test) == pytest.approx(0.2 * total, abs=n_classes)
    raw = getattr(sklearn_datasets, f"load_{name}")()
    # every class is in both parts, in the proportions of the whole
    for part in (split.train, split.test):
        share = np.bincount(part.targets, minlength=n_classes) / len(part)
        np.testing.assert_allclose(share, np.bincount(raw.target) / total, atol=0.02)
    np.testing.assert_allclose(split.train.features.mean(axis=0), 0.0, atol=1e-10)


def test_breast_cancer_signed_labels(sklearn_datasets):
    split = data.load_dataset("breast_cancer", labels="signed")
    assert set(np.unique(split.train.targets)) == {-1.0, 1.0}
    assert split.classes == ["malignant", "benign"]  # -1 is malignant (class 0), +1 benign
    index = data.load_dataset("breast_cancer")
    np.testing.assert_array_equal(split.test.targets, 2 * index.test.targets - 1)


def test_diabetes_is_regression(sklearn_datasets):
    split = data.load_dataset("diabetes", seed=0)
    assert split.task == "regression" and split.n_features == 10 and split.train.targets.shape[1] == 1
    raw = sklearn_datasets.load_diabetes()
    _, test_idx = data.train_test_split(442, 0.2, seed=0)
    np.testing.assert_allclose(split.target_scaler.inverse_transform(split.test.targets)[:, 0],
                               raw.target[test_idx])


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*digits"):
        data.load_dataset("mnist")


def test_missing_sklearn_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r"chainrule\[datasets\]"):
        data.load_dataset("iris")


# --- CSV --------------------------------------------------------------------------------------------

def _write(tmp_path, text, name="rows.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_csv_named_columns(tmp_path):
    path = _write(tmp_path, "a,b,label,c\n1,2,x,3\n4,5,y,6\n\n7,8,x,9\n")
    table = data.read_csv(path, target="label", features=["c", "a"])
    np.testing.assert_array_equal(table.features, [[3, 1], [6, 4], [9, 7]])
    assert table.target.tolist() == ["x", "y", "x"] and table.feature_names == ["c", "a"]
    # by default every other column is a feature, so the text column is an error there
    with pytest.raises(ValueError, match="column 'label': expected a number, got 'x'"):
        data.read_csv(path, target="b")


def test_read_csv_non_numeric_cell_names_line_and_column(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"line 3, column 'b': expected a number, got 'oops'"):
        data.read_csv(path, target="y")
    path = _write(tmp_path, "a,b,y\n1,,0\n", "empty.csv")
    with pytest.raises(ValueError, match=r"line 2, column 'b': expected a number, got an empty cell"):
        data.read_csv(path, target="y")


def test_read_csv_missing_columns_listed(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,0\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) 'c', 'target'.*'a', 'b', 'y'"):
        data.read_csv(path, target="target", features=["a", "c"])


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("a,y\n", "no data rows"), ("a,a,y\n1,2,3\n", "duplicate"),
    ("a,y\n1,2,3\n", "line 2 has 3 cells"), ("a,y\nnan,1\n", "finite"),
])
def test_read_csv_malformed(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        data.read_csv(_write(tmp_path, text), target="y")


def test_load_csv_classification_with_text_labels(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["f1,f2,species"] + [f"{a:.3f},{b:.3f},{'cat' if i % 3 else 'dog'}"
                                 for i, (a, b) in enumerate(rng.normal(size=(30, 2)))]
    split = data.load_csv(_write(tmp_path, "\n".join(lines)), target="species")
    assert split.task == "classification" and split.classes == ["cat", "dog"]
    assert len(split.train) + len(split.test) == 30


def test_load_csv_regression_and_task_inference(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["x,y"] + [f"{v:.4f},{2 * v + 0.1:.4f}" for v in rng.normal(size=25)]
    split = data.load_csv(_write(tmp_path, "\n".join(lines)), target="y")
    assert split.task == "regression"
    assert data.infer_task(np.array([0.0, 1.0, 2.0])) == "classification"
    with pytest.raises(ValueError, match="single class"):
        data.load_csv(_write(tmp_path, "x,y\n1,a\n2,a\n", "one.csv"), target="y")
    with pytest.raises(ValueError, match="not numeric"):
        data.load_csv(_write(tmp_path, "x,y\n1,a\n2,b\n", "text.csv"), target="y", task="regression")


def test_missing_csv_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_csv(tmp_path / "nope.csv", target="y")


def test_read_csv_keeps_other_columns_as_text(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,a,label,b,note\n007,1.5,x,2,first\n008,2.5,y,3,\n")
    table = data.read_csv(path, target="label", features=["a", "b"], keep="others")
    assert table.kept == {"id": ["007", "008"], "note": ["first", ""]}  # untouched: "007" stays text
    np.testing.assert_array_equal(table.features, [[1.5, 2.0], [2.5, 3.0]])
    assert data.read_csv(path, features=["a"], keep=["note"]).kept == {"note": ["first", ""]}
    assert data.read_csv(path, features=["a"]).kept == {}
    with pytest.raises(ValueError, match="missing column.*'idx'"):
        data.read_csv(path, features=["a"], keep=["idx"])
