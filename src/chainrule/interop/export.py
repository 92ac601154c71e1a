"""``export``: a chainrule model file to safetensors, ONNX or a PyTorch program (the library
behind ``chainrule export``).

A model file from ``chainrule train --out`` (a trained model: network plus the standardisation
fitted on its training data) exports whole: the ONNX graph and the PyTorch program take raw
feature rows, and the safetensors file keeps the metadata, so ``chainrule evaluate`` and
``predict`` read it as they read the ``.npz``. A file holding only a network (``save_model``)
exports the network.
"""

from __future__ import annotations

import importlib.util
import os

from chainrule.serialization import load_model, save_safetensors

FORMATS = {
    # name: (the package it needs, the extra that installs it)
    "safetensors": ("safetensors", "safetensors"),
    "onnx": ("onnx", "onnx"),
    "torch": ("torch", "torch"),
}


def missing_package(to: str) -> str | None:
    """Why exporting to ``to`` cannot run here (its package is not installed), or None."""
    if to not in FORMATS:
        raise ValueError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    package, extra = FORMATS[to]
    if importlib.util.find_spec(package) is None:
        return f'exporting to {to} needs the {package} package: pip install "chainrule[{extra}]"'
    return None


def export(source: str | os.PathLike, to: str, out: str | os.PathLike) -> str:
    """Read the model file ``source`` and write it as ``to`` ('safetensors', 'onnx' or
    'torch') to ``out``, atomically. Returns a one-line description of what was written.

    Raises ``ValueError`` (unreadable model file, unknown format, a layer the format cannot
    hold), ``ImportError`` (the format's package is missing), ``FileNotFoundError``.
    """
    why = missing_package(to)
    if why:
        raise ImportError(why)
    saved = load_model(source)
    trained = None
    if saved.metadata.get("kind") == "chainrule.trained_model":
        from chainrule.train import TrainedModel

        trained = TrainedModel.load(source)
    what = "trained model (standardisation included)" if trained is not None else "network"
    if to == "safetensors":
        save_safetensors(out, saved.model, saved.metadata, saved.arrays)
        keys = list(saved.model.state_dict())
        shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
        return f"wrote {out}: the {what}, {len(keys)} tensors under PyTorch's names ({shown})"
    if to == "onnx":
        from chainrule.interop.onnx import OPSET, save_onnx

        save_onnx(out, trained if trained is not None else saved.model)
        return f"wrote {out}: ONNX opset {OPSET}, the {what}, input 'input' (N, features)"
    from chainrule.interop.torch import save_torch_program

    save_torch_program(out, trained if trained is not None else saved.model)
    return f"wrote {out}: a torch.export program of the {what}; torch.export.load(path).module() runs it"
