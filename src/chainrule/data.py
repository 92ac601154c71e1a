"""Data for training: array datasets, a batching DataLoader, real datasets and the user's CSV.

The real datasets ship inside scikit-learn and load offline; scikit-learn is the optional
extra ``datasets`` and is imported only when one of them is asked for. Everything else here
is NumPy and the standard library's ``csv`` module.

A ``Split`` holds a seeded train/test split (stratified by class for classification) whose
features were standardised with a ``Standardizer`` fitted on the training part only, so no
statistic of the test part leaks into training.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

# name -> (scikit-learn loader, task). All five load from files inside scikit-learn.
DATASETS: dict[str, tuple[str, str]] = {
    "digits": ("load_digits", "classification"),  # 8x8 images, 10 classes
    "iris": ("load_iris", "classification"),  # 3 classes
    "wine": ("load_wine", "classification"),  # 3 classes
    "breast_cancer": ("load_breast_cancer", "classification"),  # binary
    "diabetes": ("load_diabetes", "regression"),
}

LABEL_FORMATS = ("index", "signed", "onehot")


# --- datasets and batching --------------------------------------------------------------------

class ArrayDataset:
    """Features and targets as NumPy arrays, indexed together (``torch.utils.data.TensorDataset``).

    ``dataset[i]`` is one ``(x, y)`` pair; ``dataset[index_array]`` a whole batch at once,
    which is what ``DataLoader`` uses.
    """

    def __init__(self, features: Any, targets: Any):
        features = np.asarray(features.data if isinstance(features, Tensor) else features)
        targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        if features.ndim < 1 or targets.ndim < 1:
            raise ValueError(f"features and targets need a first (sample) axis, got shapes "
                             f"{features.shape} and {targets.shape}")
        if len(features) != len(targets):
            raise ValueError(f"features have {len(features)} rows but targets have {len(targets)}")
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.features[index], self.targets[index]

    def __repr__(self) -> str:
        return (f"ArrayDataset(features={self.features.shape} {self.features.dtype}, "
                f"targets={self.targets.shape} {self.targets.dtype})")


class DataLoader:
    """Mini-batches of a dataset as ``(features, targets)`` Tensors that carry no gradient.

    ``shuffle=True`` draws a fresh order each epoch (each ``iter``) from a
    ``numpy.random.Generator`` seeded once with ``seed``, so a run is reproducible. Datasets
    with ``features``/``targets`` arrays are batched by one fancy-index per batch; any other
    dataset (``len`` and ``[i]`` giving ``(x, y)``) is stacked item by item.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 seed: int | np.random.Generator | None = None, drop_last: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"dataset must support len() and [index], got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            x, y = self._batch(index)
            yield Tensor._wrap(x), Tensor._wrap(y)

    def _batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.dataset, ArrayDataset):
            return self.dataset[index]
        pairs = [self.dataset[int(i)] for i in index]
        return (np.stack([np.asarray(getattr(x, "data", x)) for x, _ in pairs]),
                np.stack([np.asarray(getattr(y, "data", y)) for _, y in pairs]))

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")


# --- preprocessing ----------------------------------------------------------------------------

class Standardizer:
    """x -> (x - mean) / scale per column, fitted on training data (scikit-learn's StandardScaler).

    A constant column (scale 0, e.g. a digits pixel that is always blank) keeps scale 1, so it
    maps to 0 rather than to NaN.
    """

    def __init__(self, mean: Any = None, scale: Any = None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"Standardizer.fit expects a non-empty 2-D array, got shape {x.shape}")
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        return self

    def _check(self) -> None:
        if self.mean is None or self.scale is None:
            raise ValueError("Standardizer is not fitted; call fit() first")

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check()
        x = np.asarray(x)
        if x.shape[-1] != self.mean.shape[-1]:
            raise ValueError(f"expected {self.mean.shape[-1]} columns, got {x.shape[-1]}")
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return ((x - self.mean) / self.scale).astype(dtype, copy=False)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        self._check()
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return (x * self.scale + self.mean).astype(dtype, copy=False)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def __repr__(self) -> str:
        n = "unfitted" if self.mean is None else f"{self.mean.shape[-1]} columns"
        return f"Standardizer({n})"


def train_test_split(n: int, test_size: float = 0.2, seed: int | None = 0,
                     stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded index split into (train, test); with ``stratify`` each class keeps its proportion.

    Each class contributes ``round(test_size * class_count)`` samples to the test part (at
    least one when the class has two or more), so the split matches the class balance.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
        k = max(1, round(test_size * n))
        if k >= n:
            raise ValueError(f"cannot split {n} samples into non-empty train and test parts")
        return np.sort(order[k:]), np.sort(order[:k])
    stratify = np.asarray(stratify)
    train, test = [], []
    for label in np.unique(stratify):
        members = rng.permutation(np.flatnonzero(stratify == label))
        k = round(test_size * len(members))
        if len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        test.append(members[:k])
        train.append(members[k:])
    train_idx, test_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ValueError(f"cannot split {n} samples into non-empty train and test parts")
    return train_idx, test_idx


def encode_labels(labels: np.ndarray, n_classes: int, labels_as: str = "index",
                  dtype: Any = np.float64) -> np.ndarray:
    """Class indices 0..k-1 as 'index' (int64), 'signed' (-1/+1, binary only) or 'onehot' rows."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels_as == "index":
        return labels
    if labels_as == "signed":
        if n_classes != 2:
            raise ValueError(f"signed (-1/+1) labels need exactly 2 classes, got {n_classes}")
        return (2 * labels - 1).astype(dtype)
    if labels_as == "onehot":
        return np.eye(n_classes, dtype=dtype)[labels]
    raise ValueError(f"labels must be one of {', '.join(LABEL_FORMATS)}; got {labels_as!r}")


# --- a split dataset, ready to train on ------------------------------------------------------

@dataclass
class Split:
    """A train/test split with standardised features (and, for regression, targets).

    ``train`` and ``test`` hold the preprocessed arrays. ``feature_scaler`` (and for regression
    ``target_scaler``) were fitted on the training part; apply them to new raw rows.
    ``classes`` lists the class labels for classification (index i names class i).
    """

    name: str
    task: str
    train: ArrayDataset
    test: ArrayDataset
    feature_names: list[str]
    target_name: str
    classes: list[Any] = field(default_factory=list)
    feature_scaler: Standardizer | None = None
    target_scaler: Standardizer | None = None
    seed: int | None = 0
    test_size: float = 0.2

    @property
    def n_features(self) -> int:
        return int(self.train.features.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        kind = f"{self.n_classes} classes" if self.task == "classification" else "regression"
        return (f"Split({self.name!r}, {kind}, {self.n_features} features, "
                f"train={len(self.train)}, test={len(self.test)})")


def make_split(name: str, features: np.ndarray, targets: np.ndarray, task: str, *,
               feature_names: Sequence[str], target_name: str, classes: Sequence[Any] = (),
               test_size: float = 0.2, seed: int | None = 0, standardize: bool = True,
               labels: str = "index", dtype: Any = np.float64) -> Split:
    """Split raw arrays into standardised train/test parts (the one place this is done).

    For classification ``targets`` are class indices into ``classes`` and come out encoded as
    ``labels`` ('index', 'signed' or 'onehot'); for regression they are standardised with
    statistics of the training part (undo with ``split.target_scaler.inverse_transform``).
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, got {dtype}")
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets)
    stratify = targets if task == "classification" else None
    try:
        train_idx, test_idx = train_test_split(len(features), test_size, seed, stratify)
    except ValueError as exc:  # say which data set could not be split
        raise ValueError(f"{name}: {exc}") from None
    x_train, x_test = features[train_idx], features[test_idx]
    feature_scaler = target_scaler = None
    if standardize:
        feature_scaler = Standardizer().fit(x_train)
        x_train, x_test = feature_scaler.transform(x_train), feature_scaler.transform(x_test)
    if task == "classification":
        y_train = encode_labels(targets[train_idx], len(classes), labels, dtype)
        y_test = encode_labels(targets[test_idx], len(classes), labels, dtype)
    else:
        y = np.asarray(targets, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y  # (n, 1), the shape a 1-output network predicts
        y_train, y_test = y[train_idx], y[test_idx]
        if standardize:
            target_scaler = Standardizer().fit(y_train)
            y_train, y_test = target_scaler.transform(y_train), target_scaler.transform(y_test)
        y_train, y_test = y_train.astype(dtype), y_test.astype(dtype)
    return Split(name, task, ArrayDataset(x_train.astype(dtype), y_train),
                 ArrayDataset(x_test.astype(dtype), y_test), list(feature_names), target_name,
                 list(classes), feature_scaler, target_scaler, seed, test_size)


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError("the built-in datasets come from scikit-learn, which is not installed; "
                          "install it with: pip install 'chainrule[datasets]'") from None
    return datasets


def load_raw(name: str) -> tuple[np.ndarray, np.ndarray, list[str], str, list[Any], str]:
    """A built-in dataset unsplit: (features, targets, feature names, target name, classes, task)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    loader, task = DATASETS[name]
    bunch = getattr(_sklearn_datasets(), loader)()
    features = np.asarray(bunch.data, dtype=np.float64)
    targets = np.asarray(bunch.target)
    feature_names = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"x{i}" for i in range(features.shape[1])]
    classes: list[Any] = []
    if task == "classification":
        classes = [c.item() if hasattr(c, "item") else str(c) for c in bunch.target_names]
        targets = targets.astype(np.int64)
    target_name = "target" if task == "regression" else "class"
    return features, targets, feature_names, target_name, classes, task


def load_dataset(name: str, test_size: float = 0.2, seed: int | None = 0, standardize: bool = True,
                 labels: str = "index", dtype: Any = np.float64) -> Split:
    """One of ``DATASETS`` from scikit-learn (offline), split and standardised.

    ``labels='signed'`` gives -1/+1 targets for a binary dataset (``breast_cancer`` for the
    hinge loss: malignant -1, benign +1); ``'onehot'`` gives one-hot rows.
    """
    features, targets, feature_names, target_name, classes, task = load_raw(name)
    return make_split(name, features, targets, task, feature_names=feature_names,
                      target_name=target_name, classes=classes, test_size=test_size, seed=seed,
                      standardize=standardize, labels=labels, dtype=dtype)


# --- CSV ----------------------------------------------------------------------------------------

@dataclass
class Table:
    """Columns read from a CSV file: a float matrix of features and the raw target column."""

    features: np.ndarray
    feature_names: list[str]
    target: np.ndarray | None
    target_name: str | None
    # columns asked for with read_csv(keep=...): name -> the cells as text, one per row
    kept: dict[str, list[str]] = field(default_factory=dict)


def _parse_float(cell: str, line: int, column: str, path: str) -> float:
    try:
        return float(cell)
    except ValueError:
        got = repr(cell) if cell.strip() else "an empty cell"
        raise ValueError(f"{path}: line {line}, column {column!r}: expected a number, got {got}") from None


def read_csv(path: str | os.PathLike, target: str | None = None,
             features: Sequence[str] | None = None,
             keep: Sequence[str] | str | None = None) -> Table:
    """Read named columns of a CSV file with a header row.

    ``features`` names the feature columns (default: every column except ``target``); every
    feature cell must be a number. The ``target`` column is kept as text when it is not
    numeric (class labels such as ``setosa``). ``keep`` names further columns to return
    untouched, as text (``Table.kept``; an id column to pass through to predictions), or is
    ``"others"`` for every column that is neither a feature nor the target, in the file's
    order. Errors (``ValueError``) name the file, line and column.
    """
    path = os.fspath(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's BOM
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
        except StopIteration:
            raise ValueError(f"{path}: the file is empty; expected a header row of column names") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not a UTF-8 text CSV file (byte {exc.start}: "
                             f"{exc.object[exc.start:exc.start + 1]!r})") from None
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate column names in the header: {', '.join(duplicates)}")
    if features is None:
        features = [h for h in header if h != target]
    features = list(features)
    if keep == "others":
        keep = [h for h in header if h not in features and h != target]
    keep = list(keep or [])
    wanted = features + ([target] if target is not None else []) + keep
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; the header has "
                         f"{', '.join(map(repr, header))}")
    if not features:
        raise ValueError(f"{path}: no feature columns (the header has only {', '.join(header)})")
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    columns = [header.index(c) for c in features]
    x = np.empty((len(rows), len(columns)), dtype=np.float64)
    target_cells: list[str] = []
    t = header.index(target) if target is not None else None
    for r, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} cells, the header has {len(header)}")
        for j, c in enumerate(columns):
            x[r, j] = _parse_float(row[c], line, features[j], path)
        if t is not None:
            if not row[t].strip():
                raise ValueError(f"{path}: line {line}, column {target!r}: the target is empty")
            target_cells.append(row[t].strip())
    if not np.all(np.isfinite(x)):
        r, j = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{path}: line {rows[r][0]}, column {features[j]!r}: expected a finite "
                         f"number, got {x[r, j]}")
    kept = {name: [row[header.index(name)] for _, row in rows] for name in keep}
    target_values = None
    if t is not None:
        try:
            target_values = np.array([float(v) for v in target_cells])
        except ValueError:
            target_values = np.array(target_cells)
    return Table(x, features, target_values, target, kept)


def infer_task(target: np.ndarray) -> str:
    """'classification' for text labels or a few integer values (<= 20), else 'regression'."""
    if target.dtype.kind in "US":
        return "classification"
    values = np.unique(target)
    if np.all(values == np.round(values)) and len(values) <= 20:
        return "classification"
    return "regression"


def load_csv(path: str | os.PathLike, target: str, features: Sequence[str] | None = None,
             task: str | None = None, test_size: float = 0.2, seed: int | None = 0,
             standardize: bool = True, labels: str = "index", dtype: Any = np.float64) -> Split:
    """The user's CSV as a ``Split``: feature columns and a target column chosen by name.

    ``task`` defaults to ``infer_task`` of the target column. For classification the classes
    are the sorted distinct target values.
    """
    table = read_csv(path, target, features)
    task = task or infer_task(table.target)
    if task == "classification":
        classes, indices = np.unique(table.target, return_inverse=True)
        classes_list = [c.item() for c in classes]
        if all(isinstance(c, float) and c.is_integer() for c in classes_list):
            classes_list = [int(c) for c in classes_list]
        if len(classes_list) < 2:
            raise ValueError(f"{os.fspath(path)}: target column {target!r} has a single class "
                             f"({classes_list[0]!r}); classification needs two or more")
        targets = indices
    elif task == "regression":
        if table.target.dtype.kind not in "fiu":
            raise ValueError(f"{os.fspath(path)}: target column {target!r} is not numeric, "
                             "so it cannot be a regression target")
        classes_list, targets = [], table.target
    else:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return make_split(os.path.basename(os.fspath(path)), table.features, targets, task,
                      feature_names=table.feature_names, target_name=target, classes=classes_list,
                      test_size=test_size, seed=seed, standardize=standardize, labels=labels,
                      dtype=dtype)
