"""THE bad-input table: every public entry point and command, fed what it must refuse.

One parametrised test. Each row is a bad input and what must come out:
- library rows: the exception type (ValueError/TypeError; OSError for a missing file;
  IndexError for an out-of-range index, as NumPy and PyTorch) and words the message must
  contain, naming what was expected and what came;
- command rows (run through ``chainrule.cli.main``): exit code 2, exactly one line on
  stderr, no traceback, and every file that existed before the run byte-identical after it.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule._katex import math as katex_math
from chainrule.cli import main
from chainrule.explain.render_interactive import render_interactive

F = pytest.importorskip("chainrule.functional", reason="chainrule.functional")
nn = pytest.importorskip("chainrule.nn", reason="chainrule.nn")
optim = pytest.importorskip("chainrule.optim", reason="chainrule.optim")
data = pytest.importorskip("chainrule.data", reason="chainrule.data")
serialization = pytest.importorskip("chainrule.serialization", reason="chainrule.serialization")
explain = pytest.importorskip("chainrule.explain", reason="chainrule.explain")

EXAMPLES = Path(cr.__file__).parent / "examples"
REFERENCE = (EXAMPLES / "reference.toml").read_text()
WORKSHEET = (EXAMPLES / "reference-worksheet.toml").read_text()
# Reported bugs (notes/reliability-bugs.md); each row marked with one is xfail(strict=True).
IRIS_HEADER = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"
GOOD_CSV = "a,b,label\n0.1,0.2,0\n0.3,0.1,1\n0.5,0.9,0\n0.7,0.3,1\n0.2,0.8,0\n0.9,0.4,1\n"


# --- files the rows use -----------------------------------------------------------------------


def write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def network(tmp: Path, text: str, name: str = "net.toml") -> str:
    return write(tmp, name, text)


def worksheet(tmp: Path, extra: str, replace: tuple[str, str] = ("", "")) -> str:
    write(tmp, "reference.toml", REFERENCE)
    text = WORKSHEET.replace('network = "reference.toml"', f'network = "{tmp / "reference.toml"}"')
    if replace[0]:
        assert replace[0] in text
        text = text.replace(*replace)
    return write(tmp, "sheet.toml", text + extra)


def model_file(tmp: Path) -> str:
    """A real model file, saved by the library (the good file the bad ones are made from)."""
    model = nn.MLP([2, 3, 2], activation="relu")
    path = str(tmp / "model.npz")
    serialization.save_model(path, model)
    return path


_TRAINED: dict[str, bytes] = {}


def trained_model(tmp: Path) -> str:
    """A model file from `chainrule train` (iris, one epoch), made once per session."""
    if "iris" not in _TRAINED:
        path = tmp / "trained-once.npz"
        assert main(["train", "--dataset", "iris", "--epochs", "1", "--out", str(path)]) == 0
        _TRAINED["iris"] = path.read_bytes()
        path.unlink()
    return write(tmp, "iris-model.npz", _TRAINED["iris"])


def truncated_model(tmp: Path) -> str:
    good = Path(model_file(tmp)).read_bytes()
    return write(tmp, "truncated.npz", good[: len(good) // 2])


def foreign_npz(tmp: Path) -> str:
    path = tmp / "foreign.npz"
    np.savez(path, weights=np.ones(3))  # a NumPy archive from another program
    return str(path)


def pickled_model(tmp: Path) -> str:
    return write(tmp, "model.pkl.npz", pickle.dumps({"weights": [1.0, 2.0]}))


def png_as_model(tmp: Path) -> str:
    return write(tmp, "image.npz", b"\x89PNG\r\n\x1a\n" + bytes(100))


def zip_without_arrays(tmp: Path) -> str:
    path = tmp / "notes.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    return str(path)


def safetensors_model(tmp: Path, cut: int = 0) -> str:
    """A model file as safetensors (what `chainrule export --to safetensors` writes), optionally cut short."""
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    path = tmp / ("truncated.safetensors" if cut else "model.safetensors")
    serialization.save_safetensors(path, nn.MLP([4, 3, 3], activation="relu"))
    if cut:
        path.write_bytes(path.read_bytes()[:-cut])
    return str(path)


def foreign_safetensors(tmp: Path) -> str:
    """A safetensors file from another program: tensors, no chainrule architecture."""
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    path = tmp / "foreign.safetensors"
    path.write_bytes(st.save({"embeddings.weight": np.ones((2, 2), dtype=np.float32)}))
    return str(path)


def torch_layer(name: str) -> Any:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    return getattr(torch.nn, name)


def interop(name: str) -> Any:
    # ImportError (not only ModuleNotFoundError): the module exists and says which package it needs
    module = pytest.importorskip(
        f"chainrule.interop.{name}",
        reason=f"chainrule.interop.{name} needs the {name} package",
        exc_type=ImportError,
    )
    return module


# --- the table ----------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    run: Callable[[Path], Any]  # library: does the bad call; command: returns argv
    command: bool = False
    raises: tuple[type[BaseException], ...] = (ValueError, TypeError)
    mentions: tuple[str, ...] = ()  # the message names what was expected and what came
    xfail: str | None = None  # a reported bug: see notes/reliability-bugs.md


def lib(
    id: str,
    run: Callable[[Path], Any],
    *mentions: str,
    raises: Any = (ValueError, TypeError),
    xfail: str | None = None,
) -> Row:
    return Row(id, run, False, raises if isinstance(raises, tuple) else (raises,), mentions, xfail)


def cmd(id: str, argv: Callable[[Path], list[str]], *mentions: str, xfail: str | None = None) -> Row:
    return Row(id, argv, True, (), mentions, xfail)


def T(*shape: int, dtype: Any = np.float64, grad: bool = True) -> cr.Tensor:
    return cr.tensor(np.ones(shape, dtype=dtype), requires_grad=grad)


def _params(rows_of_model: Callable[[], Any]) -> list:
    return [p for p in rows_of_model().parameters()]


ROWS: list[Row] = [
    # --- tensors and the engine ---
    lib("matmul-inner-dims", lambda tmp: T(2, 3) @ T(2, 3), "(2, 3) and (2, 3)"),
    lib("matmul-0d", lambda tmp: T() @ T(3), "0"),
    lib("add-shapes-do-not-broadcast", lambda tmp: T(2, 3) + T(4), "(2,3)", "(4,)"),
    lib("tensor-of-strings", lambda tmp: cr.tensor(["a", "b"]), "numeric"),
    lib("tensor-of-objects", lambda tmp: cr.tensor([{"a": 1}]), "numeric"),
    lib("tensor-ragged", lambda tmp: cr.tensor([[1.0], [1.0, 2.0]]), "tensor"),
    lib("int-tensor-requires-grad", lambda tmp: cr.tensor([1, 2], requires_grad=True), "float", "int64"),
    lib("backward-non-scalar", lambda tmp: (T(3) * 2).backward(), "scalar", "(3,)"),
    lib("backward-wrong-gradient-shape", lambda tmp: (T(3) * 2).backward(np.ones(4)), "(4,)", "(3,)"),
    lib(
        "backward-no-grad-graph",
        lambda tmp: T(3, grad=False).sum().backward(),
        "requires",
        raises=RuntimeError,
    ),  # PyTorch's type for this
    lib("zeros-negative-shape", lambda tmp: cr.zeros(-1, 2), "(-1, 2)"),
    lib("randn-bad-rng", lambda tmp: cr.randn(2, rng="seed"), "Generator", "str"),
    lib("reshape-size-mismatch", lambda tmp: T(6).reshape(4), "6", "(4,)"),
    lib("sum-axis-out-of-range", lambda tmp: T(2, 3).sum(axis=5), "axis 5", "2"),
    lib("index-out-of-range", lambda tmp: T(3)[5], "5", "3", raises=IndexError),
    lib("concatenate-nothing", lambda tmp: cr.concatenate([]), "at least one"),
    # --- issue 13: transforms, dispatch, in-place operations ---
    lib("tensor-of-list-holding-grad-tensor", lambda tmp: cr.tensor([T(), T()]), "requires grad",
        "cr.stack", raises=TypeError),
    lib("numpy-function-without-chainrule-version", lambda tmp: np.unwrap(T(3)), "numpy.unwrap",
        raises=TypeError),
    lib("numpy-ufunc-method-on-tensor", lambda tmp: np.add.reduce(T(3)), "numpy.add.reduce",
        raises=TypeError),
    lib("ndarray-out-drops-gradient", lambda tmp: np.add(np.zeros(3), T(3), out=np.zeros(3)),
        "drop the gradient", raises=TypeError),
    lib("inplace-on-leaf-requiring-grad", lambda tmp: T(3).__iadd__(1.0), "leaf", "+=",
        raises=RuntimeError),  # PyTorch's type for this
    lib("setitem-on-leaf-requiring-grad", lambda tmp: T(3).__setitem__(0, 1.0), "leaf",
        raises=RuntimeError),
    lib("inplace-result-would-broadcast", lambda tmp: T(3, grad=False).__iadd__(np.ones((2, 3))),
        "(2, 3)", "(3,)"),
    lib("inplace-float-into-int", lambda tmp: cr.tensor([1, 2]).__iadd__(0.5), "int64",
        raises=TypeError),
    lib("grad-outputs-twice", lambda tmp: cr.grad((T(2) * 2), [T(2)], np.ones(2),
                                                   grad_outputs=np.ones(2)), "not both"),
    lib("grad-several-outputs-seed-count", lambda tmp: cr.grad([T(2) * 2, (T(2) * 2).sum()],
                                                                [T(2)], [np.ones(2)]),
        "2 outputs but 1"),
    lib("grad-several-outputs-seed-not-a-sequence",
        lambda tmp: cr.grad([T(2) * 2, (T(2) * 2).sum()], [T(2)], np.ones(2)), "sequence",
        raises=TypeError),
    lib("grad-no-outputs", lambda tmp: cr.grad([], [T(2)]), "at least one"),
    lib("backward-several-outputs-missing-seed", lambda tmp: cr.backward([T(2) * 2]), "(2,)",
        "scalar"),
    lib("jacobian-unknown-strategy", lambda tmp: cr.jacobian(lambda t: t, T(2), strategy="fwd"),
        "forward-mode", "'fwd'"),
    lib("jacobian-forward-mode-without-vectorize",
        lambda tmp: cr.jacobian(lambda t: t, T(2), strategy="forward-mode"), "vectorize=True",
        raises=NotImplementedError),
    lib("jacobian-vectorize-with-strict",
        lambda tmp: cr.jacobian(lambda t: t, T(2), vectorize=True, strict=True), "strict",
        raises=RuntimeError),
    lib("vjp-v-missing-for-vector-output", lambda tmp: cr.vjp(lambda t: t * 2, T(2)),
        "may be omitted only", "(2,)"),
    lib("hvp-v-wrong-shape", lambda tmp: cr.hvp(lambda t: t.sum(), T(2), T(3)), "(3,)", "(2,)"),
    lib("hessian-of-a-vector", lambda tmp: cr.hessian(lambda t: t * 2, T(2)), "single element",
        "(2,)"),
    lib("jacobian-non-tensor-output", lambda tmp: cr.jacobian(lambda t: 3.0, T(1)), "Tensor",
        "float", raises=TypeError),
    lib("jacobian-integer-input", lambda tmp: cr.jacobian(lambda t: t, cr.tensor([1, 2])),
        "floating point", "int64", raises=TypeError),
    lib("softmax-0d-bad-axis", lambda tmp: F.softmax(cr.tensor(1.0), axis=1), "0 or -1", "1"),
    lib("concatenate-shapes", lambda tmp: cr.concatenate([T(2, 3), T(2, 4)], axis=0), "3", "4"),
    lib("clip-no-bounds", lambda tmp: cr.clip(T(3)), "min"),
    lib("grad-output-without-graph", lambda tmp: cr.grad(T(3, grad=False).sum(), [T(3)]), "requires grad"),
    lib("grad-unused-input", lambda tmp: cr.grad(T(3).sum(), [T(2)]), "allow_unused"),
    lib(
        "gradcheck-nothing-to-check",
        lambda tmp: cr.gradcheck(lambda x: x * 2, T(2, grad=False)),
        "requires_grad",
    ),
    lib("explain-non-scalar", lambda tmp: cr.explain(T(3) * 2), "scalar", "(3,)"),
    lib(
        "explain-unknown-layout", lambda tmp: cr.explain((T(3) * 2).sum(), layout="rows"), "in-out", "'rows'"
    ),
    lib(
        "interactive-page-of-a-graph-that-is-no-network",
        lambda tmp: render_interactive(cr.explain((T(3) * 2).sum())),
        "layered network",
    ),
    lib("katex-math-not-a-string", lambda tmp: katex_math(1.5), "str"),
    # --- NumPy's operations (chainrule.numpy_api) ---
    lib("einsum-operand-count", lambda tmp: cr.einsum("ij,jk->ik", T(2, 3)), "2 operand", "(2, 3)"),
    lib("einsum-subscripts-vs-dims", lambda tmp: cr.einsum("ij->i", T(3)), "'ij'", "(3,)"),
    lib("einsum-sizes-differ", lambda tmp: cr.einsum("ij,jk->ik", T(2, 3), T(4, 2)), "'j'", "3", "4"),
    lib("einsum-unknown-output", lambda tmp: cr.einsum("ij->k", T(2, 3)), "'k'", "(2, 3)"),
    lib("einsum-bad-character", lambda tmp: cr.einsum("i1->i", T(2, 3)), "'i1'"),
    lib("einsum-not-a-string", lambda tmp: cr.einsum(3, T(2)), "str", "int"),
    lib("tensordot-axes-mismatch", lambda tmp: cr.tensordot(T(2, 3), T(4, 2), axes=1), "(2, 3)", "(4, 2)"),
    lib("dot-not-aligned", lambda tmp: cr.dot(T(2, 3), T(2, 3)), "(2, 3)", "not aligned"),
    lib("diagonal-of-1d", lambda tmp: cr.diagonal(T(3)), "2 dimensions", "(3,)"),
    lib("diagonal-same-axes", lambda tmp: cr.diagonal(T(2, 2), 0, 1, 1), "axis1", "1"),
    lib("diag-of-3d", lambda tmp: cr.diag(T(2, 2, 2)), "1-D or 2-D", "(2, 2, 2)"),
    lib("split-unequal", lambda tmp: cr.split(T(5), 2), "2 sections", "5", "array_split"),
    lib("array-split-zero-sections", lambda tmp: cr.array_split(T(5), 0), "larger than 0", "0"),
    lib("pad-unknown-mode", lambda tmp: cr.pad(T(3), 1, mode="median"), "'median'", "constant"),
    lib("pad-reflect-too-wide", lambda tmp: cr.pad(T(3), 3, mode="reflect"), "'reflect'", "(3, 3)"),
    lib("pad-negative-width", lambda tmp: cr.pad(T(3), -1), "non-negative", "-1"),
    lib("pad-width-shape", lambda tmp: cr.pad(T(2, 2), [1, 2, 3]), "pad_width", "[1, 2, 3]"),
    lib("take-along-axis-ndim", lambda tmp: cr.take_along_axis(T(2, 3), np.array([0, 1]), 1), "(2,)",
        "(2, 3)"),
    lib("take-along-axis-float-indices",
        lambda tmp: cr.take_along_axis(T(3), np.array([0.0]), 0), "integers", "float64"),
    lib("repeat-negative", lambda tmp: cr.repeat(T(3), -1), "non-negative", "-1"),
    lib("repeat-count-length", lambda tmp: cr.repeat(T(3), [1, 2], axis=0), "2 repeat counts", "3"),
    lib("moveaxis-out-of-range", lambda tmp: cr.moveaxis(T(2, 3), 2, 0), "axis 2", "2 dimension"),
    lib("flip-axis-out-of-range", lambda tmp: cr.flip(T(2), 1), "axis 1", "1 dimension"),
    lib("sort-0d", lambda tmp: cr.sort(T()), "0-d"),
    lib("tile-negative-reps", lambda tmp: cr.tile(T(2), -1), "non-negative", "-1"),
    lib("vstack-not-a-sequence", lambda tmp: cr.vstack(T(2, 3)), "sequence", "Tensor"),
    lib("var-out-array", lambda tmp: cr.var(T(3), out=np.zeros(())), "out="),
    lib("cumsum-dtype", lambda tmp: cr.cumsum(T(3), dtype=np.float32), "dtype=", "astype"),
    lib("nll-float-target", lambda tmp: F.nll_loss(T(2, 3), np.array([0.0, 1.0])), "integer", "float64"),
    lib("nll-target-shape", lambda tmp: F.nll_loss(T(2, 3), np.array([0, 1, 2])), "(2,)", "(3,)"),
    lib("nll-index-out-of-range", lambda tmp: F.nll_loss(T(2, 3), np.array([0, 3])), "class index 3",
        "3 classes"),
    lib("nll-weight-shape", lambda tmp: F.nll_loss(T(2, 3), np.array([0, 1]), weight=np.ones(2)),
        "(3,)", "(2,)"),
    lib("kl-div-reduction", lambda tmp: F.kl_div(T(2, 3), np.ones((2, 3)), reduction="avg"),
        "batchmean", "'avg'"),
    lib("kl-div-batchmean-0d", lambda tmp: F.kl_div(T(), np.ones(()), reduction="batchmean"),
        "batch", "()"),
    lib("kl-div-shapes", lambda tmp: F.kl_div(T(2, 3), np.ones(3)), "(2, 3)", "(3,)"),
    lib("smooth-l1-negative-beta", lambda tmp: F.smooth_l1_loss(T(3), np.ones(3), beta=-1.0), "beta",
        "-1.0"),
    lib("hardtanh-min-above-max", lambda tmp: F.hardtanh(T(3), min_val=2.0, max_val=1.0), "min_val",
        "2.0"),
    lib("celu-alpha-zero", lambda tmp: F.celu(T(3), alpha=0.0), "alpha", "0"),
    lib("softmin-0d-bad-axis", lambda tmp: F.softmin(T(), axis=1), "0 or -1"),  # axis 0/-1: one class
    # --- activations and losses ---
    lib("sigmoid-string-input", lambda tmp: F.sigmoid(np.array(["a"])), "numeric", "<U1"),
    lib("cross-entropy-string-target", lambda tmp: F.cross_entropy(T(2, 3), np.array(["a", "b"])), "<U1"),
    lib(
        "mse-string-target",
        lambda tmp: F.mse_loss(T(3), np.array(["a", "b", "c"])),
        "mse_loss",
        "target",
    ),
    lib(
        "leaky-relu-string-slope",
        lambda tmp: F.leaky_relu(T(2), negative_slope="a"),
        "negative_slope",
    ),
    lib("mse-shapes-differ", lambda tmp: F.mse_loss(T(3, 1), np.ones(3)), "(3, 1)", "(3,)"),
    lib("l1-shapes-differ", lambda tmp: F.l1_loss(T(4), np.ones(5)), "(4,)", "(5,)"),
    lib("huber-delta-zero", lambda tmp: F.huber_loss(T(3), np.ones(3), delta=0.0), "delta", "0"),
    lib("huber-delta-negative", lambda tmp: F.huber_loss(T(3), np.ones(3), delta=-1.0), "delta", "-1"),
    lib("hinge-labels-not-pm1", lambda tmp: F.hinge_loss(T(3), np.array([1.0, 0.0, -1.0])), "-1", "+1", "0"),
    lib("cross-entropy-class-out-of-range", lambda tmp: F.cross_entropy(T(2, 3), np.array([0, 3])), "3"),
    lib("cross-entropy-negative-class", lambda tmp: F.cross_entropy(T(2, 3), np.array([0, -2])), "-2"),
    lib(
        "cross-entropy-fractional-class",
        lambda tmp: F.cross_entropy(T(2, 3), np.array([0.5, 1.0])),
        "integer",
        "float64",
    ),
    lib("cross-entropy-batch-mismatch", lambda tmp: F.cross_entropy(T(2, 3), np.array([0, 1, 2])), "(3,)"),
    lib("multi-margin-class-out-of-range", lambda tmp: F.multi_margin_loss(T(2, 3), np.array([3, 0])), "3"),
    lib(
        "bce-probability-above-one",
        lambda tmp: F.binary_cross_entropy(cr.tensor([0.5, 1.5]), np.ones(2)),
        "1.5",
    ),
    lib("loss-unknown-reduction", lambda tmp: F.mse_loss(T(3), np.ones(3), reduction="avg"), "'avg'", "mean"),
    lib("mse-empty", lambda tmp: F.mse_loss(T(0), np.ones(0)), "empty", "(0,)"),
    lib(
        "cross-entropy-empty-batch",
        lambda tmp: F.cross_entropy(T(0, 3), np.zeros(0, dtype=int)),
        "empty",
        "(0, 3)",
    ),
    lib("softmax-axis-out-of-range", lambda tmp: F.softmax(T(2, 3), axis=2), "axis", "2"),
    lib("gelu-unknown-approximation", lambda tmp: F.gelu(T(2), approximate="fast"), "'fast'", "tanh"),
    lib("unknown-activation-name", lambda tmp: F.get_activation("relux"), "relux", "relu"),
    lib("unknown-loss-name", lambda tmp: F.get_loss("crossentropyy"), "crossentropyy"),
    lib("formula-unknown-name", lambda tmp: cr.formula("swish"), "swish"),
    # --- convolution, pooling, normalisation, embedding, pad ---
    lib("conv2d-channels-do-not-fit", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 2, 3, 3)),
        "3 channels", "(1, 3, 5, 5)", "(4, 2, 3, 3)"),
    lib("conv2d-input-not-4d", lambda tmp: F.conv2d(T(5, 5), T(4, 3, 3, 3)), "(5, 5)", "4-D"),
    lib("conv2d-weight-not-4d", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3)), "4-D", "(4, 3, 3)"),
    lib("conv2d-kernel-larger-than-input", lambda tmp: F.conv2d(T(1, 3, 2, 2), T(4, 3, 3, 3)),
        "(3, 3)", "(2, 2)"),
    lib("conv2d-zero-stride", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3, 3), stride=0), "stride", "0"),
    lib("conv2d-stride-wrong-length", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3, 3), stride=(1, 2, 3)),
        "stride", "(1, 2, 3)"),
    lib("conv2d-negative-padding", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3, 3), padding=-1),
        "padding", "-1"),
    lib("conv2d-same-with-stride",
        lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3, 3), stride=2, padding="same"), "same", "stride"),
    lib("conv2d-groups-do-not-divide", lambda tmp: F.conv2d(T(1, 4, 5, 5), T(3, 2, 3, 3), groups=2),
        "3", "groups = 2"),
    lib("conv2d-bias-shape", lambda tmp: F.conv2d(T(1, 3, 5, 5), T(4, 3, 3, 3), T(3)), "(4,)", "(3,)"),
    lib("conv1d-input-not-3d", lambda tmp: F.conv1d(T(1, 1, 3, 5), T(4, 1, 3)), "(1, 1, 3, 5)", "3-D"),
    lib("max-pool-padding-over-half", lambda tmp: F.max_pool2d(T(1, 1, 4, 4), 3, padding=2),
        "padding 2", "half"),
    lib("max-pool-kernel-larger-than-input", lambda tmp: F.max_pool2d(T(1, 1, 2, 2), 3),
        "(1, 1, 2, 2)", "(3, 3)"),
    lib("batch-norm-one-sample-training", lambda tmp: F.batch_norm(T(1, 3), None, None, training=True),
        "more than 1", "(1, 3)"),
    lib("batch-norm-running-stats-shape", lambda tmp: F.batch_norm(T(4, 3), np.zeros(2), np.ones(3)),
        "running_mean", "(3,)", "(2,)"),
    lib("batchnorm2d-3d-input", lambda tmp: nn.BatchNorm2d(3)(T(2, 3, 4)), "4-D", "(2, 3, 4)"),
    lib("layer-norm-shape", lambda tmp: F.layer_norm(T(2, 3), (2,)), "(2,)", "(2, 3)"),
    lib("embedding-index-out-of-range", lambda tmp: F.embedding([0, 5], T(4, 2)), "5", "4 embeddings"),
    lib("embedding-float-indices", lambda tmp: F.embedding([0.5], T(4, 2)), "integers", "float64"),
    lib("pad-odd-length", lambda tmp: F.pad(T(2, 3), (1,)), "even", "(1,)"),
    lib("pad-reflect-too-wide", lambda tmp: F.pad(T(2, 3), (3, 0), mode="reflect"), "(3, 0)", "(2, 3)"),
    lib("conv2d-module-kernel-zero", lambda tmp: nn.Conv2d(3, 4, 0), "kernel_size", "0"),
    # --- nn and optim ---
    lib("linear-zero-features", lambda tmp: nn.Linear(0, 3), "in_features", "0"),
    lib("linear-negative-features", lambda tmp: nn.Linear(2, -1), "out_features", "-1"),
    lib("linear-wrong-input-width", lambda tmp: nn.Linear(3, 2)(T(4, 5)), "3", "5"),
    lib("dropout-p-out-of-range", lambda tmp: nn.Dropout(1.5), "1.5"),
    lib("mlp-unknown-activation", lambda tmp: nn.MLP([2, 3, 1], activation="relux"), "relux"),
    lib("sgd-negative-lr", lambda tmp: optim.SGD(nn.Linear(2, 1).parameters(), lr=-0.1), "lr", "-0.1"),
    lib("sgd-zero-lr", lambda tmp: optim.SGD(nn.Linear(2, 1).parameters(), lr=0.0), "lr", "0"),
    lib(
        "adam-bad-betas",
        lambda tmp: optim.Adam(nn.Linear(2, 1).parameters(), lr=1e-3, betas=(1.2, 0.9)),
        "1.2",
    ),
    lib("sgd-no-parameters", lambda tmp: optim.SGD([], lr=0.1), "parameter"),
    lib(
        "sgd-nesterov-without-momentum",
        lambda tmp: optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1, nesterov=True),
        "momentum",
    ),
    lib("unknown-optimizer", lambda tmp: optim.get_optimizer("adamm"), "adamm"),
    # --- data ---
    lib(
        "dataloader-batch-size-zero",
        lambda tmp: data.DataLoader(data.ArrayDataset(np.ones((4, 2)), np.ones(4)), batch_size=0),
        "batch_size",
        "0",
    ),
    lib(
        "dataloader-batch-size-negative",
        lambda tmp: data.DataLoader(data.ArrayDataset(np.ones((4, 2)), np.ones(4)), batch_size=-3),
        "batch_size",
        "-3",
    ),
    lib("dataset-length-mismatch", lambda tmp: data.ArrayDataset(np.ones((4, 2)), np.ones(3)), "4", "3"),
    lib("unknown-dataset", lambda tmp: data.load_dataset("mnist"), "mnist", "digits"),
    lib("split-test-size-out-of-range", lambda tmp: data.train_test_split(10, test_size=1.5), "1.5"),
    lib(
        "csv-missing-file",
        lambda tmp: data.load_csv(tmp / "nope.csv", target="label"),
        "nope.csv",
        raises=OSError,
    ),
    lib(
        "csv-missing-target-column",
        lambda tmp: data.load_csv(write(tmp, "d.csv", GOOD_CSV), target="y"),
        "'y'",
        "label",
    ),
    lib(
        "csv-non-numeric-cell",
        lambda tmp: data.load_csv(
            write(tmp, "d.csv", GOOD_CSV.replace("0.3,0.1", "0.3,abc")), target="label"
        ),
        "abc",
        "b",
        "3",
    ),
    lib(
        "csv-nan-cell",
        lambda tmp: data.load_csv(
            write(tmp, "d.csv", GOOD_CSV.replace("0.3,0.1", "0.3,nan")), target="label"
        ),
        "nan",
        "b",
    ),
    lib(
        "csv-ragged-row",
        lambda tmp: data.load_csv(write(tmp, "d.csv", GOOD_CSV + "0.1,0.2\n"), target="label"),
        "2",
        "3",
    ),
    lib(
        "csv-truncated-header-only",
        lambda tmp: data.load_csv(write(tmp, "d.csv", "a,b,label\n"), target="label"),
        "no data rows",
    ),
    lib("csv-empty-file", lambda tmp: data.load_csv(write(tmp, "d.csv", ""), target="label"), "empty"),
    lib(
        "csv-binary-file",
        lambda tmp: data.load_csv(write(tmp, "d.csv", b"\x89PNG\r\n\x1a\n\x00\xff"), target="label"),
        "d.csv",
    ),
    # --- model files ---
    lib("model-missing", lambda tmp: serialization.load_model(tmp / "none.npz"), "none.npz", raises=OSError),
    lib("model-truncated", lambda tmp: serialization.load_model(truncated_model(tmp)), "truncated.npz"),
    lib("model-foreign-npz", lambda tmp: serialization.load_model(foreign_npz(tmp)), "foreign.npz"),
    lib("model-pickle", lambda tmp: serialization.load_model(pickled_model(tmp)), "pickle"),
    lib("model-png", lambda tmp: serialization.load_model(png_as_model(tmp)), "image.npz"),
    lib(
        "model-zip-without-arrays", lambda tmp: serialization.load_model(zip_without_arrays(tmp)), "notes.npz"
    ),
    # --- network files (library) ---
    lib(
        "network-malformed-toml",
        lambda tmp: explain.load_network(network(tmp, "sizes = [3, 2\n")),
        "net.toml",
    ),
    lib(
        "network-sizes-vs-weights",
        lambda tmp: explain.load_network(
            network(tmp, REFERENCE.replace("sizes = [3, 2, 1]", "sizes = [3, 4, 1]"))
        ),
        "net.toml",
        "4",
    ),
    # --- commands ---
    cmd(
        "explain-missing-file",
        lambda tmp: ["explain", str(tmp / "nope.toml"), "--output", "{out}"],
        "nope.toml",
    ),
    cmd(
        "explain-malformed-toml",
        lambda tmp: ["explain", network(tmp, "sizes = [3, 2\nactivation = "), "--output", "{out}"],
        "net.toml",
    ),
    cmd(
        "explain-truncated-toml",
        lambda tmp: ["explain", network(tmp, REFERENCE[: len(REFERENCE) // 2]), "--output", "{out}"],
        "net.toml",
    ),
    cmd(
        "explain-unknown-activation",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace('activation = "sigmoid"', 'activation = "sigmoidd"')),
            "--output",
            "{out}",
        ],
        "sigmoidd",
    ),
    cmd(
        "explain-unknown-loss",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace('name = "l2_loss"', 'name = "l3_loss"')),
            "--output",
            "{out}",
        ],
        "l3_loss",
    ),
    cmd(
        "explain-sizes-vs-weights",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace("sizes = [3, 2, 1]", "sizes = [3, 3, 1]")),
            "--output",
            "{out}",
        ],
        "net.toml",
    ),
    cmd(
        "explain-non-numeric-weight",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace("bias = [0.7, 0.17]", 'bias = [0.7, "x"]')),
            "--output",
            "{out}",
        ],
        "bias",
    ),
    cmd(
        "explain-nan-input",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace("input = [0.02, 0.03, -2.06]", "input = [0.02, nan, -2.06]")),
            "--output",
            "{out}",
        ],
        "input",
    ),
    cmd(
        "explain-negative-delta",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace('name = "l2_loss"', 'name = "huber_loss"\ndelta = -1.0')),
            "--output",
            "{out}",
        ],
        "delta",
    ),
    cmd("explain-negative-digits", lambda tmp: ["explain", "--digits", "-1", "--output", "{out}"], "digits"),
    # issue 11: the conventions and shapes of textbook exercises
    cmd("explain-zero-digits", lambda tmp: ["explain", "--digits", "0", "--output", "{out}"], "significant"),
    cmd("explain-steps-without-lr", lambda tmp: ["explain", "--steps", "3", "--output", "{out}"], "--lr"),
    cmd(
        "explain-save-updated-without-lr",
        lambda tmp: ["explain", "--save-updated", str(tmp / "next.toml"), "--output", "{out}"],
        "--lr",
    ),
    cmd("explain-zero-steps", lambda tmp: ["explain", "--lr", "0.5", "--steps", "0"], "positive integer"),
    cmd(
        "explain-negative-momentum",
        lambda tmp: ["explain", "--lr", "0.5", "--momentum", "-0.9", "--output", "{out}"],
        "momentum",
    ),
    cmd(
        "explain-steps-without-a-loss",
        lambda tmp: [
            "explain",
            network(
                tmp, REFERENCE.replace('name = "l2_loss"', 'name = "none"').replace('reduction = "sum"', "")
            ),
            "--lr",
            "0.5",
            "--steps",
            "2",
            "--output",
            "{out}",
        ],
        "no loss",
    ),
    cmd("explain-given-a-worksheet", lambda tmp: ["explain", worksheet(tmp, "")], "chainrule check"),
    cmd("check-given-a-network-file", lambda tmp: ["check", network(tmp, REFERENCE)], "chainrule explain"),
    cmd(
        "explain-softmax-before-cross-entropy",
        lambda tmp: [
            "explain",
            network(
                tmp,
                REFERENCE.replace('name = "l2_loss"', 'name = "cross_entropy"')
                .replace('activation = "sigmoid"', 'activation = ["sigmoid", "softmax"]')
                .replace("target = 0.61", "target = 0"),
            ),
        ],
        "softmax",
        "none",
    ),
    cmd(
        "explain-unknown-layout",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace("[[layers]]", '[[layers]]\nlayout = "cols"', 1)),
        ],
        "layout",
        "in-out",
    ),
    cmd(
        "explain-fixed-unknown-part",
        lambda tmp: [
            "explain",
            network(tmp, REFERENCE.replace("[[layers]]", '[[layers]]\nfixed = ["gain"]', 1)),
        ],
        "fixed",
    ),
    cmd(
        "explain-alias-to-nothing",
        lambda tmp: ["explain", network(tmp, REFERENCE + '\n[aliases]\nw5 = "w_{99-9}"\n')],
        "w5",
        "aliases",
    ),
    cmd(
        "explain-negative-lr",
        lambda tmp: ["explain", "--lr", "-0.5", "--output", "{out}"],
        "lr",
    ),
    cmd("explain-unknown-format", lambda tmp: ["explain", "--format", "pdf", "--output", "{out}"], "pdf"),
    cmd("explain-output-is-a-directory", lambda tmp: ["explain", "--output", str(tmp)], "directory"),
    cmd("explain-output-dir-missing", lambda tmp: ["explain", "--output", str(tmp / "no" / "out.txt")], "no"),
    cmd(
        "explain-output-under-a-file",
        lambda tmp: ["explain", "--output", "{out}/x.txt"],
        "existing-output.txt",
    ),
    cmd(
        "explain-diagram-bad-extension",
        lambda tmp: ["explain", "--diagram", str(tmp / "d.gif"), "--output", "{out}"],
        ".gif",
    ),
    cmd(
        "explain-interactive-not-html",
        lambda tmp: ["explain", "--interactive", "--format", "json", "--output", "{out}"],
        "--format html",
    ),
    cmd(
        "check-missing-file", lambda tmp: ["check", str(tmp / "nope.toml"), "--output", "{out}"], "nope.toml"
    ),
    cmd(
        "check-unknown-name",
        lambda tmp: ["check", worksheet(tmp, '\n"z_{9-9}" = 1.0\n'), "--output", "{out}"],
        "z_{9-9}",
    ),
    cmd(
        "check-updated-value-without-lr",
        lambda tmp: ["check", worksheet(tmp, '\n"w_{11-1}^{new}" = 0.1\n'), "--output", "{out}"],
        "add lr = <the learning rate",
    ),
    cmd(
        "check-non-numeric-value",
        lambda tmp: [
            "check",
            worksheet(tmp, "", ('"z_{1-2}" = 0.9136', '"z_{1-2}" = "abc"')),
            "--output",
            "{out}",
        ],
        "abc",
    ),
    cmd(
        "check-malformed-toml",
        lambda tmp: ["check", write(tmp, "sheet.toml", "[values\n"), "--output", "{out}"],
        "sheet.toml",
    ),
    cmd("derive-unknown-name", lambda tmp: ["derive", "swish"], "swish"),
    cmd("check-derivation-unclosed-math", lambda tmp: ["check", write(tmp, "d.md", "$$ x = 1\n")], "line 1"),
    cmd("check-derivation-missing-file", lambda tmp: ["check", str(tmp / "none.md")], "none.md"),
    # several files: a missing one stops the run before any is graded
    cmd("check-several-one-missing", lambda tmp: ["check", write(tmp, "d.md", "$$\\frac{d}{dx} x^2 = 2x$$\n"),
                                                  str(tmp / "none.md"), "--output", "{out}"], "none.md"),
    cmd("check-derivation-unclosed-tex-environment",
        lambda tmp: ["check", write(tmp, "d.tex", "\\[ x = 1 \\]\n\\begin{align}\n x &= 1\n")],
        "line 2"),
    cmd("derive-unreadable-expression", lambda tmp: ["derive", "log(1+exp(x", "--steps"], "could not read",
        "2 '(' never closed"),
    cmd("derive-unknown-function-in-expression", lambda tmp: ["derive", "tahn(x)"],
        "unknown function 'tahn'", "'tanh'"),
    cmd("derive-misspelt-registered-function", lambda tmp: ["derive", "sigmod(x)", "--steps"],
        "unknown function 'sigmod'", "'sigmoid'"),
    cmd("derive-registered-function-applied", lambda tmp: ["derive", "relu(x) + x"],
        "'relu' is a registered function", "chainrule derive relu"),
    cmd("derive-expression-ends-early", lambda tmp: ["derive", "x+"], "ends with '+'"),
    cmd("derive-unmatched-close", lambda tmp: ["derive", "x)+1"], "column 2 closes nothing"),
    cmd("derive-not-sympy-syntax", lambda tmp: ["derive", "x $ y"], "SymPy's syntax"),
    cmd("derive-wrt-not-a-variable", lambda tmp: ["derive", "x*y", "--wrt", "z", "--steps"], "'z'"),
    cmd("derive-several-variables-no-wrt", lambda tmp: ["derive", "a*b", "--steps"], "--wrt"),
    cmd("derive-wrt-on-a-registered-name", lambda tmp: ["derive", "sigmoid", "--wrt", "x", "--steps"],
        "--wrt"),
    cmd("derive-wrt-on-a-registered-name-without-steps", lambda tmp: ["derive", "sigmoid", "--wrt", "y"],
        "--wrt"),
    cmd("derive-steps-output-is-a-directory",
        lambda tmp: ["derive", "relu", "--steps", "--output", str(tmp)], "directory"),
    cmd("unknown-command", lambda tmp: ["fly"], "fly"),
    cmd("unknown-option", lambda tmp: ["explain", "--bogus", "--output", "{out}"], "unrecognized", "--bogus"),
    cmd("option-missing-its-value", lambda tmp: ["explain", "--digits"], "--digits", "expected one argument"),
    cmd("option-not-a-number", lambda tmp: ["explain", "--lr", "fast"], "--lr", "fast"),
    cmd("train-unknown-dataset", lambda tmp: ["train", "--dataset", "mnist", "--out", "{out}"], "mnist"),
    cmd("train-cnn-on-tabular-data",
        lambda tmp: ["train", "--dataset", "iris", "--model", "cnn", "--out", "{out}"],
        "cnn", "'iris'", "digits"),
    cmd(
        "train-negative-lr",
        lambda tmp: ["train", "--dataset", "iris", "--lr", "-1", "--out", "{out}"],
        "learning rate",
        "-1",
    ),
    cmd(
        "train-zero-lr",
        lambda tmp: ["train", "--dataset", "iris", "--lr", "0", "--out", "{out}"],
        "learning rate",
        "0",
    ),
    cmd(
        "train-zero-batch-size",
        lambda tmp: ["train", "--dataset", "iris", "--batch-size", "0", "--out", "{out}"],
        "batch",
    ),
    cmd(
        "train-negative-epochs",
        lambda tmp: ["train", "--dataset", "iris", "--epochs", "-2", "--out", "{out}"],
        "epochs",
    ),
    cmd(
        "train-bad-hidden",
        lambda tmp: ["train", "--dataset", "iris", "--hidden", "8,x", "--out", "{out}"],
        "8,x",
    ),
    cmd(
        "train-unknown-activation",
        lambda tmp: ["train", "--dataset", "iris", "--activation", "relux", "--out", "{out}"],
        "relux",
    ),
    cmd(
        "train-unknown-loss",
        lambda tmp: ["train", "--dataset", "iris", "--loss", "l3", "--out", "{out}"],
        "l3",
    ),
    cmd(
        "train-hinge-on-multiclass",
        lambda tmp: ["train", "--dataset", "iris", "--loss", "hinge", "--out", "{out}"],
        "hinge",
    ),
    cmd(
        "train-negative-huber-delta",
        lambda tmp: ["train", "--dataset", "diabetes", "--loss", "huber", "--delta", "-1", "--out", "{out}"],
        "delta",
    ),
    cmd(
        "train-csv-missing",
        lambda tmp: ["train", "--csv", str(tmp / "nope.csv"), "--target", "label", "--out", "{out}"],
        "nope.csv",
    ),
    cmd(
        "train-csv-missing-target",
        lambda tmp: ["train", "--csv", write(tmp, "d.csv", GOOD_CSV), "--target", "y", "--out", "{out}"],
        "y",
    ),
    cmd(
        "train-csv-non-numeric",
        lambda tmp: [
            "train",
            "--csv",
            write(tmp, "d.csv", GOOD_CSV.replace("0.7", "x7")),
            "--target",
            "label",
            "--out",
            "{out}",
        ],
        "x7",
    ),
    cmd(
        "train-csv-truncated",
        lambda tmp: [
            "train",
            "--csv",
            write(tmp, "d.csv", GOOD_CSV[:-9]),
            "--target",
            "label",
            "--out",
            "{out}",
        ],
        "d.csv",
    ),
    cmd(
        "train-csv-nan",
        lambda tmp: [
            "train",
            "--csv",
            write(tmp, "d.csv", GOOD_CSV.replace("0.7", "nan")),
            "--target",
            "label",
            "--out",
            "{out}",
        ],
        "nan",
    ),
    cmd(
        "train-out-dir-missing",
        lambda tmp: ["train", "--dataset", "iris", "--epochs", "1", "--out", str(tmp / "no" / "m.npz")],
        "no",
    ),
    cmd(
        "evaluate-model-missing",
        lambda tmp: ["evaluate", str(tmp / "none.npz"), "--dataset", "iris"],
        "none.npz",
    ),
    cmd(
        "evaluate-model-truncated",
        lambda tmp: ["evaluate", truncated_model(tmp), "--dataset", "iris"],
        "truncated.npz",
    ),
    cmd(
        "evaluate-model-foreign",
        lambda tmp: ["evaluate", foreign_npz(tmp), "--dataset", "iris"],
        "foreign.npz",
    ),
    cmd("evaluate-model-pickle", lambda tmp: ["evaluate", pickled_model(tmp), "--dataset", "iris"], "pickle"),
    cmd("evaluate-model-png", lambda tmp: ["evaluate", png_as_model(tmp), "--dataset", "iris"], "image.npz"),
    cmd(
        "evaluate-wrong-dataset-width",
        lambda tmp: ["evaluate", trained_model(tmp), "--dataset", "wine"],
        "4",
        "13",
    ),
    cmd(
        "evaluate-library-model-without-preprocessing",
        lambda tmp: ["evaluate", model_file(tmp), "--dataset", "iris"],
        "model.npz",
    ),
    cmd(
        "predict-model-truncated",
        lambda tmp: [
            "predict",
            truncated_model(tmp),
            "--csv",
            write(tmp, "rows.csv", "a,b\n0.1,0.2\n"),
            "--out",
            "{out}",
        ],
        "truncated.npz",
    ),
    cmd(
        "predict-csv-missing",
        lambda tmp: ["predict", trained_model(tmp), "--csv", str(tmp / "nope.csv"), "--out", "{out}"],
        "nope.csv",
    ),
    cmd(
        "predict-csv-wrong-columns",
        lambda tmp: [
            "predict",
            trained_model(tmp),
            "--csv",
            write(tmp, "rows.csv", "a\n0.1\n"),
            "--out",
            "{out}",
        ],
        "rows.csv",
    ),
    cmd(
        "predict-csv-non-numeric",
        lambda tmp: [
            "predict",
            trained_model(tmp),
            "--csv",
            write(tmp, "rows.csv", IRIS_HEADER + "\n5.1,zz,1.4,0.2\n"),
            "--out",
            "{out}",
        ],
        "zz",
    ),
    cmd(
        "predict-keep-columns-missing",
        lambda tmp: [
            "predict",
            trained_model(tmp),
            "--csv",
            write(tmp, "rows.csv", IRIS_HEADER + "\n5.1,3.5,1.4,0.2\n"),
            "--keep-columns",
            "id",
            "--out",
            "{out}",
        ],
        "'id'",
    ),
    cmd(
        "predict-kept-column-clashes-with-output",
        lambda tmp: [
            "predict",
            trained_model(tmp),
            "--csv",
            write(tmp, "rows.csv", IRIS_HEADER + ",prediction\n5.1,3.5,1.4,0.2,x\n"),
            "--out",
            "{out}",
        ],
        "'prediction' would appear twice",
    ),
    cmd(
        "train-test-size-out-of-range",
        lambda tmp: ["train", "--dataset", "iris", "--test-size", "1.5", "--out", "{out}"],
        "test size",
    ),
    # --- state dicts, interop and export (issue 15) ---
    lib(
        "state-dict-wrong-shape",
        lambda tmp: nn.MLP([2, 3, 2]).load_state_dict(
            {**nn.MLP([2, 3, 2]).state_dict(), "0.weight": np.ones((2, 2))}
        ),
        "0.weight",
        "(2, 2)",
        "(3, 2)",
    ),
    lib(
        "state-dict-missing-and-unexpected-keys",
        lambda tmp: nn.MLP([2, 3, 2]).load_state_dict({"0.weight": np.ones((3, 2)), "fc.bias": np.ones(3)}),
        "missing keys: 0.bias",
        "unexpected keys: fc.bias",
    ),
    lib(
        "state-dict-not-a-mapping",
        lambda tmp: nn.Linear(2, 2).load_state_dict([np.ones((2, 2))]),
        "mapping",
        "list",
    ),
    lib(
        "register-buffer-of-text",
        lambda tmp: nn.Linear(2, 2).register_buffer("mean", "zero"),
        "buffer",
        "str",
    ),
    lib(
        "safetensors-truncated",
        lambda tmp: serialization.load_model(safetensors_model(tmp, cut=7)),
        "truncated.safetensors",
        "truncated",
    ),
    lib(
        "safetensors-foreign",
        lambda tmp: serialization.load_model(foreign_safetensors(tmp)),
        "foreign.safetensors",
        "not a chainrule model",
    ),
    lib(
        "from-torch-unsupported-layer",
        lambda tmp: interop("torch").from_torch(torch_layer("Sequential")(torch_layer("Conv3d")(1, 1, 1))),
        "model.0",
        "Conv3d",
    ),
    lib(
        "from-torch-not-a-module",
        lambda tmp: interop("torch").from_torch({"0.weight": 1}),
        "torch.nn.Module",
        "dict",
    ),
    lib(
        "to-onnx-unexportable-layer",
        lambda tmp: interop("onnx").to_onnx(nn.Sequential(nn.MSELoss()), input_size=2),
        "MSELoss",
        "model.0",
    ),
    lib(
        "onnx-file-truncated",
        lambda tmp: interop("onnx").load_onnx(write(tmp, "m.onnx", b"\x08\x07\x12\x03ab")),
        "m.onnx",
        "not a valid ONNX model",
    ),
    cmd(
        "export-model-missing",
        lambda tmp: ["export", str(tmp / "none.npz"), "--to", "onnx", "-o", "{out}"],
        "none.npz",
    ),
    cmd(
        "export-unknown-format",
        lambda tmp: ["export", model_file(tmp), "--to", "keras", "-o", "{out}"],
        "keras",
        "safetensors",
    ),
    cmd(
        "export-model-truncated",
        lambda tmp: ["export", truncated_model(tmp), "--to", "safetensors", "-o", "{out}"],
        "truncated.npz",
    ),
    cmd(
        "export-model-pickle",
        lambda tmp: ["export", pickled_model(tmp), "--to", "onnx", "-o", "{out}"],
        "pickle",
    ),
    cmd(
        "export-safetensors-truncated",
        lambda tmp: ["export", safetensors_model(tmp, cut=3), "--to", "onnx", "-o", "{out}"],
        "truncated.safetensors",
    ),
    cmd(
        "export-safetensors-foreign",
        lambda tmp: ["export", foreign_safetensors(tmp), "--to", "onnx", "-o", "{out}"],
        "foreign.safetensors",
        "not a chainrule model",
    ),
    cmd(
        "export-out-directory-missing",
        lambda tmp: ["export", model_file(tmp), "--to", "onnx", "-o", str(tmp / "no" / "m.onnx")],
        "does not exist",
    ),
    cmd(
        "export-out-is-the-model",
        lambda tmp: ["export", model_file(tmp), "--to", "safetensors", "-o", str(tmp / "model.npz")],
        "model file itself",
    ),
    cmd(
        "export-out-is-a-directory",
        lambda tmp: ["export", model_file(tmp), "--to", "onnx", "-o", str(tmp)],
        "directory",
    ),
    cmd(
        "evaluate-safetensors-truncated",
        lambda tmp: ["evaluate", safetensors_model(tmp, cut=9), "--dataset", "iris"],
        "truncated.safetensors",
    ),
]

EXISTING = b"an existing file the user cares about\n"


def _param(row: Row) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=("cmd-" if row.command else "lib-") + row.id, marks=marks)


def _snapshot(tmp: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in tmp.rglob("*") if p.is_file()}


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if not row.command:
        with pytest.raises(row.raises) as info:
            row.run(tmp_path)
        message = str(info.value)
        assert message.strip(), "an error with no message"
        for word in row.mentions:
            assert word.lower() in message.lower(), f"message does not mention {word!r}: {message!r}"
        return

    out = tmp_path / "existing-output.txt"
    out.write_bytes(EXISTING)
    argv = [a.replace("{out}", str(out)) for a in row.run(tmp_path)]
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit code {code}, stderr {err!r}"
    assert "Traceback" not in err and "Traceback" not in captured.out
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not exactly one line: {err!r}"
    # One prefix for every error, ours and argparse's: "chainrule: error: ..."
    assert re.match(r"chainrule: error: \S", lines[0]), f"not the one error form: {err!r}"
    for word in row.mentions:
        assert word.lower() in err.lower(), f"message does not mention {word!r}: {err!r}"
    after = _snapshot(tmp_path)
    for path, content in before.items():
        assert after.get(path) == content, f"{path} was changed by a failed run"
    leftovers = sorted(set(after) - set(before))
    assert not leftovers, f"a failed run left files behind: {leftovers}"


def test_every_command_has_rows_in_the_table(tmp_path: Path):
    from chainrule import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = set(cli.COMMANDS) | set(sub.choices)
    covered = {r.run(tmp_path)[0] for r in ROWS if r.command}
    assert commands <= covered, f"commands with no bad-input row: {sorted(commands - covered)}"


def test_the_installed_command_fails_without_a_traceback(tmp_path: Path):
    """The real process: `python -m chainrule.cli` with a bad file, stderr one line, exit 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text("sizes = [3, 2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", "explain", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(cr.__file__).parent.parent,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and re.search(r"bad\.toml", proc.stderr)
