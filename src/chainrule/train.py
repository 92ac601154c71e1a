"""Training and evaluation on real data: the library behind ``chainrule train/evaluate/predict``.

- ``TrainConfig`` and ``resolve_config``: the run's settings, with per-dataset defaults.
- ``Head``: how a loss meets a task: output units, target encoding, and the decision rule
  (argmax for multi-class scores, sign for the hinge loss, 0.5 for a probability).
- ``fit``: the training loop (mini-batches, optimizer steps, one evaluation per epoch),
  stoppable after any batch through a ``StopRequest`` (``stop_on_sigint`` sets it on Ctrl-C).
- ``TrainedModel``: a network plus the preprocessing fitted on its training data, which
  predicts from raw feature rows and saves to / loads from one model file.
- ``run_training``: everything ``chainrule train`` does, minus the printing.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from chainrule import data, nn, optim
from chainrule import functional as F
from chainrule.autodiff import no_grad
from chainrule.serialization import load_model, save_model
from chainrule.tensor import Tensor

# --- settings -------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """One training run. ``None`` means "the dataset's default" (see ``DATASET_DEFAULTS``)."""

    dataset: str | None = None  # a name in chainrule.data.DATASETS, or None with csv=
    csv: str | None = None
    target: str | None = None  # the CSV's target column
    features: tuple[str, ...] | None = None  # the CSV's feature columns (default: all but target)
    task: str | None = None  # CSV only: 'classification' or 'regression' (default: inferred)
    model: str | None = None  # 'mlp' (the default) or 'cnn' (image datasets: IMAGE_SHAPES)
    hidden: tuple[int, ...] | None = None  # an MLP's hidden sizes; a CNN's channels per convolution
    activation: str | None = None
    loss: str | None = None
    delta: float = 1.0  # Huber's delta
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.9  # SGD only
    weight_decay: float | None = None  # None: the optimizer's own default
    schedule: str | None = None  # None, 'step' or 'cosine'
    epochs: int | None = None
    batch_size: int | None = None
    dropout: float | None = None
    seed: int = 0
    test_size: float = 0.2
    dtype: str = "float64"


# Chosen so that `chainrule train --dataset NAME` alone reaches good test scores in seconds.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(hidden=(512,), activation="relu", loss="cross_entropy", optimizer="adam",
                   lr=1e-3, epochs=40, batch_size=64, dropout=0.5),
    "iris": dict(hidden=(16,), activation="tanh", loss="cross_entropy", optimizer="adam",
                 lr=1e-2, epochs=30, batch_size=16, dropout=0.0),
    "wine": dict(hidden=(32,), activation="relu", loss="cross_entropy", optimizer="adam",
                 lr=1e-2, epochs=40, batch_size=16, dropout=0.0),
    "breast_cancer": dict(hidden=(32,), activation="relu", loss="hinge_loss", optimizer="adam",
                          lr=1e-3, epochs=30, batch_size=32, dropout=0.0),
    "diabetes": dict(hidden=(64,), activation="tanh", loss="huber_loss", optimizer="adam",
                     lr=1e-3, epochs=100, batch_size=32, dropout=0.0),
}
# Datasets whose rows are images, as (channels, height, width): the ones `--model cnn` takes.
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {"digits": (1, 8, 8)}
MODELS = ("mlp", "cnn")
# The CNN's defaults (``hidden`` = channels of its two convolutions): about 97% test accuracy on
# digits at seed 0 in 15 epochs (README, "Convolution and normalisation layers").
CNN_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(hidden=(16, 32), activation="relu", loss="cross_entropy", optimizer="adam",
                   lr=3e-3, epochs=15, batch_size=64, dropout=0.25),
}
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "classification": dict(hidden=(64,), activation="relu", loss="cross_entropy", optimizer="adam",
                           lr=1e-3, epochs=50, batch_size=32, dropout=0.0),
    "regression": dict(hidden=(64,), activation="relu", loss="mse_loss", optimizer="adam",
                       lr=1e-3, epochs=100, batch_size=32, dropout=0.0),
}


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_model(model: str, dataset: str | None) -> None:
    """ValueError unless ``model`` is one of ``MODELS`` and fits the data (a CNN needs images)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if model == "cnn" and dataset not in IMAGE_SHAPES:
        source = f"dataset {dataset!r}" if dataset else "a CSV file"
        raise ValueError(f"the cnn model needs an image dataset ({', '.join(IMAGE_SHAPES)}), got {source}")


def defaults_for(config: TrainConfig, task: str) -> dict[str, Any]:
    """The defaults that fill ``config``: the CNN's, the dataset's or the task's."""
    if config.model == "cnn" and config.dataset in CNN_DEFAULTS:
        return CNN_DEFAULTS[config.dataset]
    return DATASET_DEFAULTS.get(config.dataset or "", TASK_DEFAULTS[task])


def resolve_config(config: TrainConfig, task: str) -> TrainConfig:
    """Fill every ``None`` from the dataset's (or the task's) defaults and check the values."""
    model = "mlp" if config.model is None else config.model
    check_model(model, config.dataset)
    defaults = defaults_for(config, task)
    filled = replace(config, model=model,
                     **{k: v for k, v in defaults.items() if getattr(config, k) is None})
    if model == "cnn" and not filled.hidden:
        raise ValueError("a CNN needs at least one convolution: hidden gives its channels, e.g. 16,32")
    filled.hidden = tuple(int(h) for h in filled.hidden)
    for h in filled.hidden:
        _positive_int("each hidden layer size", h)
    _positive_int("epochs", filled.epochs)
    _positive_int("batch size", filled.batch_size)
    if isinstance(filled.lr, bool) or not (isinstance(filled.lr, (int, float)) and filled.lr > 0
                                           and math.isfinite(filled.lr)):
        raise ValueError(f"learning rate must be a finite number > 0, got {filled.lr!r}")
    if not 0.0 < filled.test_size < 1.0:
        raise ValueError(f"test size must be a fraction in (0, 1), got {filled.test_size!r}")
    if not 0.0 <= filled.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {filled.dropout!r}")
    if not filled.delta > 0:
        raise ValueError(f"Huber delta must be > 0, got {filled.delta!r}")
    F.get_activation(filled.activation)  # ValueError naming the valid ones
    filled.loss = F.get_loss(filled.loss).__name__  # canonical name: "huber" -> "huber_loss"
    optim.get_optimizer(filled.optimizer)
    if filled.schedule not in (None, *optim.SCHEDULERS):
        raise ValueError(f"unknown schedule {filled.schedule!r}; choose one of {', '.join(optim.SCHEDULERS)}")
    if np.dtype(filled.dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {filled.dtype!r}")
    return filled


# --- how a loss meets a task -----------------------------------------------------------------------

MULTICLASS_LOSSES = ("cross_entropy", "multi_margin_loss")
BINARY_LOSSES = ("hinge_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy")
REGRESSION_LOSSES = ("mse_loss", "l1_loss", "huber_loss", "l2_loss")


@dataclass(frozen=True)
class Head:
    """The network's output layer for a loss and task, and how targets and outputs are read.

    ``kind`` is 'multiclass' (one score per class, argmax), 'signed' (one score, labels -1/+1,
    the sign decides: hinge), 'logit' (one logit, labels 0/1), 'probability' (a sigmoid output,
    labels 0/1), 'onehot' (a regression loss on one-hot rows, argmax) or 'regression'.
    """

    loss: str
    task: str
    kind: str
    n_outputs: int
    output_activation: str | None = None

    @staticmethod
    def for_loss(loss: str, task: str, n_classes: int = 0, n_targets: int = 1) -> Head:
        if task == "regression":
            if loss not in REGRESSION_LOSSES:
                raise ValueError(f"loss {loss!r} is for classification; this is a regression task "
                                 f"(use one of {', '.join(REGRESSION_LOSSES)})")
            return Head(loss, task, "regression", n_targets)
        if loss in MULTICLASS_LOSSES:
            return Head(loss, task, "multiclass", n_classes)
        if loss in BINARY_LOSSES:
            if n_classes != 2:
                hint = "multi_margin_loss" if loss == "hinge_loss" else "cross_entropy"
                raise ValueError(f"loss {loss!r} needs two classes, this dataset has {n_classes} "
                                 f"(use {hint} for several classes)")
            if loss == "hinge_loss":
                return Head(loss, task, "signed", 1)
            if loss == "binary_cross_entropy":
                return Head(loss, task, "probability", 1, "sigmoid")
            return Head(loss, task, "logit", 1)
        if loss in REGRESSION_LOSSES:
            return Head(loss, task, "onehot", n_classes)
        raise ValueError(f"loss {loss!r} cannot train a network here; choose one of "
                         f"{', '.join(MULTICLASS_LOSSES + BINARY_LOSSES + REGRESSION_LOSSES)}")

    def encode(self, targets: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
        """Targets as the loss wants them: class indices in, the loss's encoding out."""
        if self.kind in ("multiclass", "regression"):
            return targets
        if self.kind == "onehot":
            return data.encode_labels(targets, self.n_outputs, "onehot", dtype)
        if self.kind == "signed":
            return data.encode_labels(targets, 2, "signed", dtype)[:, None]
        return np.asarray(targets, dtype=dtype)[:, None]  # 0/1 for the binary cross-entropies

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """Class indices from the network's outputs (classification only)."""
        if self.kind in ("multiclass", "onehot"):
            return np.argmax(outputs, axis=-1)
        threshold = 0.5 if self.kind == "probability" else 0.0
        return (outputs[:, 0] >= threshold).astype(np.int64)

    def probabilities(self, outputs: Tensor) -> np.ndarray | None:
        """Class probabilities where the loss defines them (cross-entropy, logistic), else None."""
        if self.loss == "cross_entropy":
            return F.softmax(outputs, axis=-1).data
        if self.kind == "logit":
            p = F.sigmoid(outputs).data[:, 0]
            return np.stack([1 - p, p], axis=1)
        if self.kind == "probability":
            p = outputs.data[:, 0]
            return np.stack([1 - p, p], axis=1)
        return None


# --- metrics ---------------------------------------------------------------------------------------

def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth)))


def r2_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """1 - SS_res / SS_tot (scikit-learn's r2_score, averaged uniformly over target columns)."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    ss_res = np.sum((truth - predicted) ** 2, axis=0)
    ss_tot = np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    return float(np.mean(1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.nan)))


def mean_absolute_error(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted, np.float64) - np.asarray(truth, np.float64))))


def task_metrics(task: str, predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """accuracy for classification; R^2 and MAE (in the target's own units) for regression."""
    if task == "classification":
        return {"accuracy": accuracy(predicted, truth)}
    return {"r2": r2_score(predicted, truth), "mae": mean_absolute_error(predicted, truth)}


# --- the model with its preprocessing --------------------------------------------------------------

@dataclass
class TrainedModel:
    """A network with the preprocessing fitted on its training data: predicts from raw rows."""

    model: nn.Module
    head: Head
    feature_names: list[str]
    target_name: str
    classes: list[Any]
    feature_scaler: data.Standardizer
    target_scaler: data.Standardizer | None = None
    info: dict[str, Any] = field(default_factory=dict)  # dataset, seed, settings, results

    @property
    def task(self) -> str:
        return self.head.task

    @property
    def dtype(self) -> np.dtype:
        return next(self.model.parameters()).dtype

    def outputs(self, features: np.ndarray, batch_size: int = 4096) -> Tensor:
        """The network's raw outputs for standardised ``features``, without a graph."""
        self.model.eval()
        with no_grad():
            parts = [self.model(Tensor._wrap(np.ascontiguousarray(features[i:i + batch_size])))
                     for i in range(0, len(features), batch_size)]
        return Tensor._wrap(np.concatenate([p.data for p in parts]))

    def _standardise(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.feature_names):
            raise ValueError(f"expected rows of {len(self.feature_names)} features "
                             f"({_preview(self.feature_names)}), got shape {raw.shape}")
        return self.feature_scaler.transform(raw).astype(self.dtype)

    def predict(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """For raw feature rows: ``prediction`` (class labels or target values); for classifiers
        also ``index`` (class indices), ``scores`` (the network's raw outputs) and, where the
        loss defines them, ``probabilities`` (one column per class)."""
        out = self.outputs(self._standardise(raw))
        if self.task == "regression":
            values = self.target_scaler.inverse_transform(out.data) if self.target_scaler else out.data
            return {"prediction": values}
        index = self.head.decide(out.data)
        result = {"prediction": np.array(self.classes, dtype=object)[index], "index": index,
                  "scores": out.data}
        probs = self.head.probabilities(out)
        if probs is not None:
            result["probabilities"] = probs
        return result

    def evaluate(self, raw: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        """Metrics on raw rows; ``truth`` holds class indices or raw target values."""
        predicted = self.predict(raw)
        if self.task == "classification":
            return task_metrics("classification", predicted["index"], truth)
        values = predicted["prediction"]
        return task_metrics("regression", values, np.asarray(truth, np.float64).reshape(values.shape))

    def class_indices(self, labels: np.ndarray) -> np.ndarray:
        """Map raw class labels (text, or numbers read from a CSV) to this model's class indices."""
        lookup = {_label_key(c): i for i, c in enumerate(self.classes)}
        out = np.empty(len(labels), dtype=np.int64)
        for r, label in enumerate(labels):
            key = _label_key(label)
            if key not in lookup:
                raise ValueError(f"row {r + 1}: class {key!r} is not one the model knows "
                                 f"({_preview([str(c) for c in self.classes])})")
            out[r] = lookup[key]
        return out

    # --- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        metadata = {"kind": "chainrule.trained_model", "head": asdict(self.head),
                    "feature_names": self.feature_names, "target_name": self.target_name,
                    "classes": self.classes, "info": self.info}
        arrays = {"feature_mean": self.feature_scaler.mean, "feature_scale": self.feature_scaler.scale}
        if self.target_scaler is not None:
            arrays.update(target_mean=self.target_scaler.mean, target_scale=self.target_scaler.scale)
        save_model(path, self.model, metadata, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainedModel:
        saved = load_model(path)
        meta, arrays = saved.metadata, saved.arrays
        if meta.get("kind") != "chainrule.trained_model":
            raise ValueError(f"{os.fspath(path)}: a chainrule model file without the preprocessing "
                             "that `chainrule train` saves; it cannot predict from raw rows")
        try:
            head = Head(**meta["head"])
            feature_scaler = data.Standardizer(arrays["feature_mean"], arrays["feature_scale"])
            target_scaler = (data.Standardizer(arrays["target_mean"], arrays["target_scale"])
                             if "target_mean" in arrays else None)
            return cls(saved.model, head, list(meta["feature_names"]), meta["target_name"],
                       list(meta["classes"]), feature_scaler, target_scaler, dict(meta.get("info", {})))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{os.fspath(path)}: corrupt model file (metadata: {exc})") from None


def _label_key(label: Any) -> str:
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label.item() if isinstance(label, np.generic) else label)


def _preview(names: Sequence[str], limit: int = 4) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


# --- the training loop -----------------------------------------------------------------------------

class StopRequest:
    """Set by a signal handler (or a test) to stop training after the current batch."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


@contextlib.contextmanager
def stop_on_sigint() -> Iterator[StopRequest]:
    """While active, Ctrl-C (SIGINT) asks training to stop after the current batch; a second
    Ctrl-C interrupts at once (KeyboardInterrupt). Outside the main thread it only yields a flag."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class EpochResult:
    epoch: int  # 1-based
    train_loss: float  # mean over the samples seen this epoch
    metrics: dict[str, float]  # on the test part: loss and accuracy, or loss, r2 and mae
    lr: float
    seconds: float
    batches: int  # batches run this epoch (fewer than the loader's length when interrupted)


@dataclass
class History:
    epochs: list[EpochResult] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    def last(self) -> EpochResult | None:
        return self.epochs[-1] if self.epochs else None


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite (usually: the learning rate is too high)."""


def fit(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], optimizer: optim.Optimizer,
        loader: data.DataLoader, epochs: int, *, evaluate: Callable[[], dict[str, float]] | None = None,
        scheduler: optim.LRScheduler | None = None, stop: StopRequest | None = None,
        on_batch: Callable[[int, int, int, float], None] | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None) -> History:
    """Train ``model`` for ``epochs`` passes over ``loader``; return the per-epoch history.

    Each batch: zero the gradients, forward, loss, backward, optimizer step. After each epoch
    ``evaluate()`` (in eval mode) gives the test metrics and the scheduler steps.
    ``on_batch(epoch, batch, n_batches, loss)`` runs after every step; when ``stop`` has
    been requested (or a callback raises KeyboardInterrupt) training ends after that batch,
    the partial epoch is still evaluated and recorded, and ``history.interrupted`` is True.
    """
    _positive_int("epochs", epochs)
    history = History()
    start = time.perf_counter()
    n_batches = len(loader)
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        total, count, done = 0.0, 0, 0
        for x, y in loader:
            optimizer.zero_grad()
            with np.errstate(over="ignore", invalid="ignore"):  # a non-finite loss is reported below
                loss = loss_fn(model(x), y)
            value = float(loss.data)
            if not math.isfinite(value):
                raise TrainingDiverged(f"the training loss became {value} at epoch {epoch}, batch "
                                       f"{done + 1}; try a smaller learning rate (now {lr:g})")
            loss.backward()
            optimizer.step()
            total += value * len(y)
            count += len(y)
            done += 1
            try:
                if on_batch is not None:
                    on_batch(epoch, done, n_batches, value)
            except KeyboardInterrupt:
                history.interrupted = True
            if stop is not None and stop.requested:
                history.interrupted = True
            if history.interrupted:
                break
        model.eval()
        metrics = evaluate() if evaluate is not None else {}
        result = EpochResult(epoch, total / max(count, 1), metrics, lr,
                             time.perf_counter() - epoch_start, done)
        history.epochs.append(result)
        if on_epoch is not None:
            on_epoch(result)
        if history.interrupted:
            break
        if scheduler is not None:
            scheduler.step()
    history.seconds = time.perf_counter() - start
    return history


def evaluate_split(trained: TrainedModel, loss_fn: Callable, dataset: data.ArrayDataset,
                   targets_encoded: np.ndarray) -> dict[str, float]:
    """Loss (in training units) and the task's metrics on a preprocessed dataset."""
    out = trained.outputs(dataset.features)
    with no_grad():
        loss = float(loss_fn(out, Tensor._wrap(targets_encoded)).data)
    if trained.task == "classification":
        metrics = task_metrics("classification", trained.head.decide(out.data), dataset.targets)
    else:
        scaler = trained.target_scaler
        predicted = scaler.inverse_transform(out.data) if scaler else out.data
        truth = scaler.inverse_transform(dataset.targets) if scaler else dataset.targets
        metrics = task_metrics("regression", predicted, truth)
    return {"loss": loss, **metrics}


# --- a whole run -----------------------------------------------------------------------------------

def load_split(config: TrainConfig) -> data.Split:
    """The config's data (a built-in dataset or a CSV), split and standardised, labels as indices."""
    dtype = np.dtype(config.dtype)
    if (config.dataset is None) == (config.csv is None):
        raise ValueError("give exactly one of a dataset name or a CSV file")
    if config.dataset is not None:
        return data.load_dataset(config.dataset, config.test_size, config.seed, dtype=dtype)
    if not config.target:
        raise ValueError("a CSV file needs the name of its target column")
    return data.load_csv(config.csv, config.target, features=config.features, task=config.task,
                         test_size=config.test_size, seed=config.seed, dtype=dtype)


@dataclass
class Run:
    """What ``run_training`` produced: the config used, the trained model and its history."""

    config: TrainConfig
    trained: TrainedModel
    history: History
    split: data.Split


def build(config: TrainConfig, split: data.Split) -> tuple[TrainedModel, nn.Module, optim.Optimizer,
                                                          optim.LRScheduler | None]:
    """The network, loss module, optimizer and schedule for a resolved config."""
    n_targets = split.train.targets.shape[1] if split.task == "regression" else 1
    head = Head.for_loss(config.loss, split.task, split.n_classes, n_targets)
    rng = np.random.default_rng(config.seed)
    if config.model == "cnn":
        model: nn.Module = nn.CNN(IMAGE_SHAPES[config.dataset], config.hidden, head.n_outputs,
                                  config.activation, head.output_activation, dropout=config.dropout,
                                  rng=rng, dtype=config.dtype)
    else:
        sizes = [split.n_features, *config.hidden, head.n_outputs]
        model = nn.MLP(sizes, config.activation, head.output_activation, dropout=config.dropout,
                       rng=rng, dtype=config.dtype)
    loss_kwargs = {"delta": config.delta} if config.loss == "huber_loss" else {}
    reduction = {"reduction": "mean"}  # per-sample average, whatever the functional default
    loss_fn = nn.loss_module(config.loss, **reduction, **loss_kwargs)
    opt_kwargs: dict[str, Any] = {"lr": config.lr}
    if config.weight_decay is not None:
        opt_kwargs["weight_decay"] = config.weight_decay
    if config.optimizer.lower() == "sgd":
        opt_kwargs["momentum"] = config.momentum
    opt = optim.get_optimizer(config.optimizer)(model.parameters(), **opt_kwargs)
    scheduler = None
    if config.schedule == "step":
        scheduler = optim.StepLR(opt, step_size=max(1, config.epochs // 3), gamma=0.1)
    elif config.schedule == "cosine":
        scheduler = optim.CosineAnnealingLR(opt, T_max=config.epochs)
    info = {"dataset": config.dataset, "csv": os.path.basename(config.csv) if config.csv else None,
            "seed": config.seed, "test_size": config.test_size, "config": _jsonable(asdict(config))}
    trained = TrainedModel(model, head, split.feature_names, split.target_name, split.classes,
                           split.feature_scaler, split.target_scaler, info)
    return trained, loss_fn, opt, scheduler


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit NumPy's BLAS to ``n`` threads while active (``None``: leave it alone).

    A training step multiplies small matrices (a batch of 64 rows); spreading each product over
    several threads costs more in synchronisation than it gains, and on a busy machine the
    waiting threads spin: we measured a digits run at 1 s on one thread and 22 s on two while
    other processes held the cores. Uses ``threadpoolctl`` (installed with scikit-learn) when
    it is importable, and does nothing otherwise.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if n is None or threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def run_training(config: TrainConfig, *, stop: StopRequest | None = None,
                 on_batch: Callable[[int, int, int, float], None] | None = None,
                 on_epoch: Callable[[EpochResult], None] | None = None,
                 split: data.Split | None = None, threads: int | None = 1) -> Run:
    """Load the data, build the network and train it: ``chainrule train`` without the printing.

    ``threads`` caps BLAS threads during training (see ``blas_threads``; None: no cap).
    """
    split = split if split is not None else load_split(config)
    config = resolve_config(config, split.task)
    trained, loss_fn, opt, scheduler = build(config, split)
    dtype = np.dtype(config.dtype)
    train = data.ArrayDataset(split.train.features, trained.head.encode(split.train.targets, dtype))
    test_targets = trained.head.encode(split.test.targets, dtype)
    loader = data.DataLoader(train, config.batch_size, shuffle=True, seed=config.seed)
    with blas_threads(threads):
        history = fit(trained.model, loss_fn, opt, loader, config.epochs,
                      evaluate=lambda: evaluate_split(trained, loss_fn, split.test, test_targets),
                      scheduler=scheduler, stop=stop, on_batch=on_batch, on_epoch=on_epoch)
    last = history.last()
    trained.info["results"] = {"epochs_run": len(history.epochs), "interrupted": history.interrupted,
                               "test": last.metrics if last else {}, "seconds": round(history.seconds, 3)}
    return Run(config, trained, history, split)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def plot_history(history: History, path: str | os.PathLike, title: str = "") -> None:
    """Training loss and test metrics per epoch, as an image (format from the suffix), atomically."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib; install it with: pip install 'chainrule[plot]'") from None
    from chainrule._io import atomic_open

    epochs = [e.epoch for e in history.epochs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [e.train_loss for e in history.epochs], label="train loss")
    if history.epochs and "loss" in history.epochs[0].metrics:
        left.plot(epochs, [e.metrics["loss"] for e in history.epochs], label="test loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    names = [k for k in (history.epochs[0].metrics if history.epochs else {}) if k != "loss"]
    for name in names:
        right.plot(epochs, [e.metrics[name] for e in history.epochs], label=f"test {name}")
    right.set_xlabel("epoch")
    right.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    try:
        with atomic_open(path, "wb", encoding=None) as handle:
            fig.savefig(handle, format=suffix)
    finally:
        plt.close(fig)
