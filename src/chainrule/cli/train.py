"""``chainrule train``, ``chainrule evaluate`` and ``chainrule predict``: a thin shell over chainrule.train.

Training prints one line per epoch on stdout (and a progress bar on stderr when it is a
terminal: rich's if installed, else a plain one), then a summary table. Ctrl-C stops after
the current batch, saves the model so far when --out is given, says so, and exits with 130.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from typing import Any

import numpy as np

from chainrule import data
from chainrule.cli import CommandError
from chainrule.train import (
    DATASET_DEFAULTS,
    MODELS,
    EpochResult,
    TrainConfig,
    TrainedModel,
    check_model,
    load_split,
    plot_history,
    resolve_config,
    run_training,
    stop_on_sigint,
)

EXIT_INTERRUPTED = 130  # the shell's code for "stopped by Ctrl-C"


def register(subparsers: Any) -> None:
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_predict(subparsers)


# --- train ------------------------------------------------------------------------------------------

def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train a network on a built-in dataset or a CSV file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a multilayer perceptron (or, on image datasets, --model cnn) with\n"
                    "chainrule's own engine.\n\n"
                    "Each dataset has its own defaults, so `chainrule train --dataset digits` alone\n"
                    "trains well. An option you give replaces only that setting; the others keep the\n"
                    "dataset's default: `--hidden 128,64` on digits still trains with dropout 0.5\n"
                    "(add --dropout 0 for none).",
        epilog="defaults (options left out):\n" + _defaults_table())
    source = p.add_argument_group("data")
    source.add_argument("--dataset", help=f"built-in dataset: {', '.join(data.DATASETS)} "
                                          "(needs scikit-learn: pip install 'chainrule[datasets]')")
    source.add_argument("--csv", metavar="FILE", help="your own data: a CSV file with a header row")
    source.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    source.add_argument("--features", metavar="COLUMNS",
                        help="the CSV's feature columns, comma-separated (default: all but --target)")
    source.add_argument("--task", choices=("classification", "regression"),
                        help="CSV only (default: classification for text or few integer labels)")
    source.add_argument("--test-size", type=float, default=0.2, metavar="FRACTION",
                        help="held-out fraction, stratified by class (default 0.2)")
    net = p.add_argument_group("network and training")
    net.add_argument("--model", choices=MODELS, help="mlp (default) or cnn: a small convolutional "
                                                     "network, for image datasets (digits)")
    net.add_argument("--hidden", metavar="SIZES", help="hidden layer sizes, e.g. 128,64 ('none': linear); "
                                                       "for --model cnn the channels of each convolution")
    net.add_argument("--activation", help="relu, tanh, sigmoid, leaky_relu, elu, gelu, softplus")
    net.add_argument("--loss", help="cross_entropy, multi_margin, hinge (binary), bce_with_logits, "
                                    "mse, l1, huber, l2")
    net.add_argument("--delta", type=float, default=1.0, help="Huber loss delta (default 1.0)")
    net.add_argument("--optimizer", help="sgd, adam or adamw")
    net.add_argument("--lr", type=float, help="learning rate")
    net.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    net.add_argument("--weight-decay", type=float, help="weight decay (default: the optimizer's)")
    net.add_argument("--schedule", choices=("step", "cosine"), help="learning-rate schedule (default none)")
    net.add_argument("--epochs", type=int)
    net.add_argument("--batch-size", type=int)
    net.add_argument("--dropout", type=float, help="dropout probability after each hidden layer "
                                                   "(default: the dataset's, 0.5 for digits, else 0)")
    net.add_argument("--seed", type=int, default=0, help="seeds the split, the weights and the "
                                                         "batch order (default 0)")
    net.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="MODEL", help="save the trained model here (.npz)")
    out.add_argument("--plot", metavar="PNG", help="save loss and metric curves here (needs matplotlib)")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    p.set_defaults(handler=_train)


def _defaults_table() -> str:
    from chainrule.train import TASK_DEFAULTS

    rows = [(name, d) for name, d in DATASET_DEFAULTS.items()]
    rows += [(f"--csv ({task})", d) for task, d in TASK_DEFAULTS.items()]
    width = max(len(name) for name, _ in rows)
    return "\n".join(
        f"  {name:<{width}}  hidden {','.join(map(str, d['hidden'])) or 'none'} {d['activation']}, "
        f"dropout {d['dropout']:g}, {d['loss']}, {d['optimizer']} lr {d['lr']:g}, "
        f"{d['epochs']} epochs, batch {d['batch_size']}"
        for name, d in rows)


def _parse_hidden(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CommandError(f"--hidden must be comma-separated integers such as 128,64, "
                           f"got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise CommandError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _check_writable(path: str | None, option: str) -> None:
    """Fail before training, not after it, when an output cannot be written."""
    if path is None:
        return
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a directory, expected a file path")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CommandError(f"{option} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise CommandError(f"{option} {path}: directory {directory} is not writable")


def _train(args: argparse.Namespace) -> int:
    if (args.dataset is None) == (args.csv is None):
        raise CommandError("give --dataset NAME or --csv FILE --target COLUMN (exactly one)")
    if args.csv is not None and not args.target:
        raise CommandError("--csv needs --target COLUMN, the column to predict")
    if args.dataset is not None and (args.target or args.task or args.features):
        raise CommandError("--target, --features and --task go with --csv, not with --dataset")
    try:
        check_model(args.model or "mlp", args.dataset)
    except ValueError as exc:
        raise CommandError(f"--model: {exc}") from None
    _check_writable(args.out, "--out")
    _check_writable(args.plot, "--plot")
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked now so a missing one fails before training)
        except ImportError:
            raise CommandError("--plot needs matplotlib: pip install 'chainrule[plot]'") from None
    config = TrainConfig(
        dataset=args.dataset, csv=args.csv, target=args.target, task=args.task,
        features=tuple(c.strip() for c in args.features.split(",")) if args.features else None,
        model=args.model, hidden=_parse_hidden(args.hidden), activation=args.activation, loss=args.loss,
        delta=args.delta,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        schedule=args.schedule, epochs=args.epochs, batch_size=args.batch_size, dropout=args.dropout,
        seed=args.seed, test_size=args.test_size, dtype=args.dtype)
    # Check every flag now, before scikit-learn (seconds to import) or the CSV file is loaded.
    if args.dataset is not None and args.dataset not in data.DATASETS:
        raise CommandError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(data.DATASETS)}")
    if args.csv is not None and not os.path.isfile(args.csv):
        raise CommandError(f"--csv {args.csv}: no such file")
    task = data.DATASETS[args.dataset][1] if args.dataset else (args.task or "classification")
    resolve_config(config, task)  # ValueError naming the bad value; the defaults it fills are dropped
    try:
        split = _load(lambda: load_split(config))
    except FileNotFoundError as exc:
        raise CommandError(f"--csv {exc.filename}: no such file") from None
    reporter = _Reporter(quiet=args.quiet)
    with stop_on_sigint() as stop, reporter:
        run = run_training(config, stop=stop, split=split, on_batch=reporter.batch,
                           on_epoch=reporter.epoch_factory(config, split))
    saved = None
    if args.out and run.history.epochs:
        run.trained.save(args.out)
        saved = args.out
    if args.plot and run.history.epochs:
        plot_history(run.history, args.plot, title=_title(run.config))
    _print_summary(run, saved, args.plot if run.history.epochs else None)
    if run.history.interrupted:
        last = run.history.last()
        where = f"epoch {last.epoch}, batch {last.batches}" if last else "the first batch"
        what = f"saved the model trained so far to {saved}" if saved else "nothing saved (no --out given)"
        print(f"chainrule: interrupted: stopped after {where}; {what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _load(loader: Any) -> data.Split:
    try:
        return loader()
    except ImportError as exc:  # scikit-learn missing: one line, like every user error
        raise CommandError(str(exc)) from None


def _title(config: TrainConfig) -> str:
    source = config.dataset or os.path.basename(config.csv or "")
    hidden = ",".join(map(str, config.hidden)) or "none"
    return (f"{source}: hidden {hidden}, {config.activation}, {config.loss}, "
            f"{config.optimizer} lr {config.lr:g}")


def _format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for key, value in metrics.items():
        if key == "loss":
            parts.append(f"test loss {value:.4f}")
        elif key == "accuracy":
            parts.append(f"accuracy {value:.2%}")
        elif key == "r2":
            parts.append(f"R^2 {value:.4f}")
        elif key == "mae":
            parts.append(f"MAE {value:.4g}")
    return "  ".join(parts)


class _Reporter:
    """The progress bar (stderr, terminals only) and the per-epoch lines (stdout)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.show_bar = not quiet and sys.stderr.isatty()
        self.rich_progress = None
        self.task = None
        self.epochs = 0

    def __enter__(self) -> _Reporter:
        if self.show_bar:
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            except ImportError:
                return self
            self.rich_progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                          MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                                          transient=True)
            self.rich_progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.rich_progress is not None:
            self.rich_progress.stop()
        elif self.show_bar:
            self._clear_plain()

    def batch(self, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        if not self.show_bar:
            return
        description = f"epoch {epoch}/{self.epochs}"
        if self.rich_progress is not None:
            if self.task is None or batch == 1:
                if self.task is not None:
                    self.rich_progress.remove_task(self.task)
                self.task = self.rich_progress.add_task(description, total=n_batches, loss="")
            self.rich_progress.update(self.task, completed=batch, loss=f"{loss:.4f}")
            return
        width = 30
        filled = width * batch // n_batches
        sys.stderr.write(f"\r{description} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{batch}/{n_batches} loss {loss:.4f}")
        sys.stderr.flush()

    def _clear_plain(self) -> None:
        sys.stderr.write("\r" + " " * 79 + "\r")
        sys.stderr.flush()

    def epoch_factory(self, config: TrainConfig, split: data.Split) -> Any:
        from chainrule.train import defaults_for

        defaults = defaults_for(config, split.task)
        self.epochs = config.epochs or defaults["epochs"]
        width = len(str(self.epochs))

        def epoch(result: EpochResult) -> None:
            if self.show_bar and self.rich_progress is None:
                self._clear_plain()
            if self.quiet:
                return
            line = (f"epoch {result.epoch:>{width}}/{self.epochs}  train loss {result.train_loss:.4f}  "
                    f"{_format_metrics(result.metrics)}  ({result.seconds:.2f} s)")
            print(line, flush=True)  # rich's Progress redirects stdout above its bar
        return epoch


def _summary_rows(run: Any, saved: str | None, plot: str | None) -> list[tuple[str, str]]:
    config, history = run.config, run.history
    source = config.dataset or config.csv
    split = run.split
    kind = (f"classification, {split.n_classes} classes" if split.task == "classification" else "regression")
    rows = [("data", f"{source} ({kind}; {len(split.train)} train / {len(split.test)} test, "
                     f"{split.n_features} features)"),
            ("network", _network(run.trained.model) + f" ({config.activation}"
                        + (f", dropout {config.dropout:g}" if config.dropout else "")
                        + f"; {run.trained.model.num_parameters()} parameters)"),
            ("loss", config.loss + (f" (delta {config.delta:g})" if config.loss == "huber_loss" else "")),
            ("optimizer", f"{config.optimizer} lr {config.lr:g}" + (f", {config.schedule} schedule"
                                                                    if config.schedule else "")),
            ("epochs", f"{len(history.epochs)} of {config.epochs}, batch size {config.batch_size}"
                       + (" (interrupted)" if history.interrupted else ""))]
    last = history.last()
    if last is not None:
        rows.append(("final train loss", f"{last.train_loss:.4f}"))
        rows.append(("final epoch", _format_metrics(last.metrics)))
        key = "accuracy" if split.task == "classification" else "r2"
        best = max(history.epochs, key=lambda e: e.metrics[key])
        rows.append((f"best test {'accuracy' if key == 'accuracy' else 'R^2'}",
                     (f"{best.metrics[key]:.2%}" if key == "accuracy" else f"{best.metrics[key]:.4f}")
                     + f" (epoch {best.epoch})"))
    rows.append(("time", f"{history.seconds:.2f} s ({history.seconds / max(len(history.epochs), 1):.3f} s "
                         "per epoch)"))
    rows.append(("seed", str(config.seed)))
    if saved:
        rows.append(("model saved to", saved))
    if plot:
        rows.append(("curves saved to", plot))
    return rows


def _network(model: Any) -> str:
    describe = getattr(model, "describe", None)  # a CNN describes its layers; an MLP has sizes
    return describe() if describe is not None else " -> ".join(map(str, model.sizes))


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    """A rich table on a terminal (when rich is installed); plain aligned text otherwise,
    so that logs and pipes get every value whole, never cut to a terminal width."""
    try:
        if not sys.stdout.isatty():
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(k) for k, _ in rows)
        print(title)
        for key, value in rows:
            print(f"  {key:<{width}}  {value}")
        return
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    Console(file=sys.stdout, highlight=False).print(table)


def _print_summary(run: Any, saved: str | None, plot: str | None) -> None:
    _print_table("summary", _summary_rows(run, saved, plot))


# --- evaluate ---------------------------------------------------------------------------------------

def _register_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score a saved model on a dataset or a labelled CSV file",
        description="Score a model saved by `chainrule train --out`. Without --dataset or --csv, "
                    "the built-in dataset the model file records that it was trained on. With a "
                    "dataset, the held-out test part of the split the model was trained with (same "
                    "seed and size) is used unless --split says otherwise.")
    p.add_argument("model", metavar="MODEL", help="a model file from `chainrule train --out`")
    p.add_argument("--dataset", help=f"built-in dataset: {', '.join(data.DATASETS)} (default: the "
                                     "one the model was trained on)")
    p.add_argument("--csv", metavar="FILE", help="a CSV file with the model's feature columns")
    p.add_argument("--target", metavar="COLUMN", help="the CSV's label/target column (default: the "
                                                      "model's target name)")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="which part of the dataset to score (default: test)")
    p.set_defaults(handler=_evaluate)


def _load_model(path: str) -> TrainedModel:
    if not os.path.exists(path):
        raise CommandError(f"model file {path}: no such file")
    return TrainedModel.load(path)


def _evaluate(args: argparse.Namespace) -> int:
    if args.dataset is not None and args.csv is not None:
        raise CommandError("give --dataset NAME or --csv FILE, not both")
    trained = _load_model(args.model)
    if args.dataset is None and args.csv is None:
        recorded = trained.info.get("dataset")
        if recorded not in data.DATASETS:
            raise CommandError(f"{args.model} was trained on a CSV file, not a built-in dataset; "
                               "give --csv FILE with labelled rows to score it on")
        args.dataset = recorded
    if args.dataset is not None:
        features, targets, names, _, classes, task = _load(lambda: data.load_raw(args.dataset))
        _check_features(trained, names, f"dataset {args.dataset}")
        if task != trained.task:
            raise CommandError(f"the model does {trained.task}, dataset {args.dataset} is {task}")
        if args.split != "all":
            info = trained.info
            seed = info.get("seed", 0) if info.get("dataset") == args.dataset else 0
            test_size = info.get("test_size", 0.2) if info.get("dataset") == args.dataset else 0.2
            train_idx, test_idx = data.train_test_split(
                len(features), test_size, seed, targets if task == "classification" else None)
            index = test_idx if args.split == "test" else train_idx
            features, targets = features[index], targets[index]
        if task == "classification":
            targets = trained.class_indices(np.asarray(classes, dtype=object)[targets])
        where = f"{args.dataset} ({args.split})"
    else:
        target = args.target or trained.target_name
        table = data.read_csv(args.csv, target=target, features=trained.feature_names)
        features, targets = table.features, table.target
        if trained.task == "classification":
            targets = trained.class_indices(targets)
        elif targets.dtype.kind not in "fiu":
            raise CommandError(f"{args.csv}: target column {target!r} is not numeric")
        where = args.csv
    metrics = trained.evaluate(features, targets)
    rows = [("data", f"{where}, {len(features)} samples")]
    for key, value in metrics.items():
        label = {"accuracy": "accuracy", "r2": "R^2", "mae": "MAE"}[key]
        rows.append((label, f"{value:.2%}" if key == "accuracy" else f"{value:.4f}"))
    _print_table(f"evaluate {args.model}", rows)
    return 0


def _check_features(trained: TrainedModel, names: list[str], where: str) -> None:
    if list(names) != list(trained.feature_names):
        raise CommandError(f"the model was trained on {len(trained.feature_names)} features "
                           f"({', '.join(trained.feature_names[:3])}, ...); {where} has {len(names)} "
                           f"({', '.join(names[:3])}, ...)")


# --- predict ----------------------------------------------------------------------------------------

def _register_predict(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="predict for the rows of a CSV file with a saved model",
        description="Read the model's feature columns (by name) from a CSV file and write one "
                    "row per input row as CSV: first the input's other columns, unchanged (an id, "
                    "a label; choose them with --keep-columns), then the predicted class or value; "
                    "for classifiers also the class probabilities (cross-entropy, logistic "
                    "losses) or the raw scores (hinge and margin losses).")
    p.add_argument("model", metavar="MODEL", help="a model file from `chainrule train --out`")
    p.add_argument("--csv", metavar="FILE", required=True, help="rows to predict, with a header row")
    p.add_argument("--keep-columns", metavar="COLUMNS",
                   help="input columns to copy into the output, comma-separated, or 'none' "
                        "(default: every column that is not one of the model's features)")
    p.add_argument("--out", metavar="FILE", help="write the predictions here (default: stdout)")
    p.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    trained = _load_model(args.model)
    _check_writable(args.out, "--out")
    if args.keep_columns is None:
        keep: list[str] | str = "others"
    elif args.keep_columns.strip().lower() in ("", "none"):
        keep = []
    else:
        keep = [c.strip() for c in args.keep_columns.split(",")]
    table = data.read_csv(args.csv, target=None, features=trained.feature_names, keep=keep)
    result = trained.predict(table.features)
    header = ["prediction"]
    columns: list[list[str]] = []
    if trained.task == "regression":
        values = result["prediction"]
        if values.shape[1] == 1:
            columns.append([f"{v:.6g}" for v in values[:, 0]])
        else:
            header = [f"prediction_{j}" for j in range(values.shape[1])]
            columns.extend([f"{v:.6g}" for v in values[:, j]] for j in range(values.shape[1]))
    else:
        columns.append([str(v) for v in result["prediction"]])
        if "probabilities" in result:
            header += [f"p_{c}" for c in trained.classes]
            columns.extend([f"{p:.6f}" for p in result["probabilities"][:, j]]
                           for j in range(len(trained.classes)))
        else:  # margin losses: the raw scores (the sign of a hinge score decides its class)
            scores = result["scores"]
            header += ["score"] if scores.shape[1] == 1 else [f"score_{c}" for c in trained.classes]
            columns.extend([f"{v:.6g}" for v in scores[:, j]] for j in range(scores.shape[1]))
    clash = sorted(set(table.kept) & set(header))
    if clash:
        raise CommandError(f"--csv {args.csv}: column(s) {', '.join(map(repr, clash))} would appear "
                           "twice in the output, as an input column and as a prediction; choose the "
                           "columns to copy with --keep-columns")
    header = [*table.kept, *header]
    columns = [*table.kept.values(), *columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    if args.out:
        from chainrule._io import atomic_write_text

        atomic_write_text(args.out, buffer.getvalue())
        print(f"wrote {len(table.features)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(buffer.getvalue())
    return 0

