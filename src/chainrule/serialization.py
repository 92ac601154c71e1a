"""Model files: the architecture and the weights in one ``.npz``, never pickle.

Layout of a model file (a NumPy ``.npz`` zip; every entry is a plain array):

- ``__format__``: the string ``"chainrule.model"``; ``__version__``: the format version (int);
- ``__architecture__``: JSON (a NumPy unicode array) describing the module tree, e.g.
  ``{"type": "MLP", "config": {"sizes": [64, 128, 10], "activation": "relu", ...}}``;
- ``__metadata__``: JSON with whatever the caller attached (task, class names, ...);
- ``param/<dotted name>``: each parameter, e.g. ``param/0.weight`` (PyTorch's state-dict names);
- ``array/<name>``: extra arrays the caller attached (e.g. the input standardisation).

The same model can be written as a safetensors file (``save_safetensors``, what ``chainrule
export --to safetensors`` writes): the tensors are exactly the state dict, under PyTorch's names,
so ``safetensors.torch.load_file`` gives what ``to_torch(model).load_state_dict`` takes; the
architecture, metadata and extra arrays are JSON strings in the header's ``__metadata__``
(``chainrule.architecture``, ``chainrule.metadata``, ``chainrule.arrays``). ``load_model`` reads
both kinds, telling them apart by their first bytes, not by the file name.

Files are read with ``allow_pickle=False`` and written through ``chainrule._io.atomic_open``
(temporary file, then rename), so a failed save never leaves a half-written file over a good
one. Anything that is not such a file raises ``ValueError`` saying why.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import nn
from chainrule._io import atomic_open

FORMAT = "chainrule.model"
VERSION = 1
_PARAM, _ARRAY = "param/", "array/"


def module_to_spec(module: nn.Module) -> dict[str, Any]:
    """A JSON-able description of ``module`` from which ``module_from_spec`` rebuilds it."""
    name = type(module).__name__
    if nn.MODULES.get(name) is not type(module):
        raise ValueError(f"cannot save a {name}: model files describe chainrule's built-in modules "
                         f"({', '.join(nn.MODULES)}); save its state_dict() yourself instead")
    spec: dict[str, Any] = {"type": name, "config": module.get_config()}
    if type(module) is nn.Sequential:
        spec["children"] = [module_to_spec(m) for m in module]
    return spec


def module_from_spec(spec: Any) -> nn.Module:
    """Rebuild a module (with freshly initialised weights) from ``module_to_spec``'s output."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ValueError(f"architecture entry must be an object with a 'type', got {spec!r:.80}")
    cls = nn.MODULES.get(spec["type"])
    if cls is None:
        raise ValueError(f"unknown module type {spec['type']!r} in the architecture")
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"config of {spec['type']} must be an object, got {config!r:.80}")
    if cls is nn.Sequential:
        children = spec.get("children", [])
        if not isinstance(children, list):
            raise ValueError("Sequential children must be a list")
        return nn.Sequential(*(module_from_spec(c) for c in children))
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"invalid config for {spec['type']}: {exc}") from None


@dataclass
class SavedModel:
    """What ``load_model`` returns: the rebuilt module, its metadata and extra arrays."""

    model: nn.Module
    metadata: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    version: int = VERSION


def save_model(path: str | os.PathLike, model: nn.Module, metadata: dict[str, Any] | None = None,
               arrays: dict[str, Any] | None = None) -> None:
    """Write ``model`` (architecture and weights), ``metadata`` (JSON-able) and ``arrays`` atomically."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_model expects a chainrule.nn.Module, got {type(model).__name__}")
    entries: dict[str, np.ndarray] = {
        "__format__": np.array(FORMAT),
        "__version__": np.array(VERSION, dtype=np.int64),
        "__architecture__": np.array(json.dumps(module_to_spec(model))),
    }
    try:
        entries["__metadata__"] = np.array(json.dumps(metadata or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from None
    for name, value in model.state_dict().items():
        entries[_PARAM + name] = value
    for name, value in (arrays or {}).items():
        value = np.asarray(value)
        if value.dtype.kind not in "biufU":
            raise TypeError(f"array {name!r} has dtype {value.dtype}; model files hold numeric or "
                            "string arrays only (no objects, no pickle)")
        entries[_ARRAY + name] = value
    with atomic_open(path, "wb", encoding=None) as handle:
        np.savez(handle, **entries)


def _text(npz: Any, key: str, path: str) -> str:
    if key not in npz.files:
        raise ValueError(f"{path}: not a chainrule model file (no {key} entry)")
    value = npz[key]
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"{path}: {key} must be a string, got a {value.dtype} array")
    return str(value)


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read a model file written by ``save_model`` or ``save_safetensors``; ``ValueError`` for
    anything else.

    A missing file raises ``FileNotFoundError``; a corrupt, truncated, foreign or pickled
    file raises ``ValueError`` naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a directory, expected a model file", path)
    if is_safetensors(path):
        return _read_safetensors(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: not a chainrule model file (a single NumPy array, not an .npz)")
        with loaded as npz:
            return _read(npz, path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt or truncated model file ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        if "pickle" in str(exc):  # NumPy's word for "neither .npy nor .npz"
            if _starts_like_pickle(path):
                raise ValueError(f"{path}: not a chainrule model file (it holds pickled data, which "
                                 "chainrule never loads)") from None
            raise ValueError(f"{path}: not a chainrule model file (not an .npz archive)") from None
        raise ValueError(f"{path}: not a readable chainrule model file ({exc})") from None


def _starts_like_pickle(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"  # the PROTO opcode that starts pickles since protocol 2


def _read(npz: Any, path: str) -> SavedModel:
    fmt = _text(npz, "__format__", path)
    if fmt != FORMAT:
        raise ValueError(f"{path}: not a chainrule model file (format {fmt!r}, expected {FORMAT!r})")
    version = npz["__version__"] if "__version__" in npz.files else None
    if version is None or version.dtype.kind not in "iu" or version.ndim != 0:
        raise ValueError(f"{path}: the format version is missing or not an integer")
    version = int(version)
    if not 1 <= version <= VERSION:
        raise ValueError(f"{path}: model format version {version}; this chainrule reads versions "
                         f"1 to {VERSION} (upgrade chainrule to read it)")
    try:
        spec = json.loads(_text(npz, "__architecture__", path))
        metadata = json.loads(_text(npz, "__metadata__", path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt model file (bad JSON: {exc})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: corrupt model file (metadata is not a JSON object)")
    try:
        model = module_from_spec(spec)
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt model file ({exc})") from None
    state = {k[len(_PARAM):]: npz[k] for k in npz.files if k.startswith(_PARAM)}
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise ValueError(f"{path}: weights do not match the architecture ({exc})") from None
    arrays = {k[len(_ARRAY):]: npz[k] for k in npz.files if k.startswith(_ARRAY)}
    return SavedModel(model, metadata, arrays, version)


# --- the same model as a safetensors file ----------------------------------------------------------

_ST_KEYS = ("chainrule.format", "chainrule.version", "chainrule.architecture", "chainrule.metadata",
            "chainrule.arrays")


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError('reading and writing safetensors files needs the safetensors package: '
                          'pip install "chainrule[safetensors]"') from None
    return safetensors.numpy


def is_safetensors(path: str | os.PathLike) -> bool:
    """Whether the file starts like a safetensors file: an 8-byte little-endian header length,
    then the header's JSON object (the format's specification, huggingface/safetensors)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except (IsADirectoryError, FileNotFoundError, PermissionError):
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2


def save_safetensors(path: str | os.PathLike, model: nn.Module, metadata: dict[str, Any] | None = None,
                     arrays: dict[str, Any] | None = None) -> None:
    """Write ``model`` as a safetensors file, atomically: the state dict as its tensors (PyTorch's
    names and layouts, dtypes kept), the architecture, ``metadata`` and ``arrays`` in the header.

    ``load_model`` reads it back exactly (every value bit for bit; the extra arrays are stored as
    JSON, whose floats round-trip exactly). No PyTorch needed. Raises ``TypeError`` for what
    ``save_model`` refuses, ``ImportError`` without the safetensors package.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_safetensors expects a chainrule.nn.Module, got {type(model).__name__}")
    st = _safetensors_numpy()
    header = {"format": "pt",  # the tensors are laid out as PyTorch's (what loaders check for)
              "chainrule.format": FORMAT, "chainrule.version": str(VERSION),
              "chainrule.architecture": json.dumps(module_to_spec(model))}
    try:
        header["chainrule.metadata"] = json.dumps(metadata or {}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from None
    extra = {}
    for name, value in (arrays or {}).items():
        value = np.asarray(value)
        if value.dtype.kind not in "biufU":
            raise TypeError(f"array {name!r} has dtype {value.dtype}; model files hold numeric or "
                            "string arrays only (no objects, no pickle)")
        extra[name] = {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    header["chainrule.arrays"] = json.dumps(extra)
    tensors = {k: np.array(v, order="C") for k, v in model.state_dict().items()}  # 0-d stays 0-d
    with atomic_open(path, "wb", encoding=None) as handle:
        handle.write(st.save(tensors, metadata=header))


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of any safetensors file as NumPy arrays, and its header metadata.

    For a state dict saved by PyTorch (``safetensors.torch.save_file(model.state_dict(), ...)``)
    this is what ``load_state_dict`` takes. ``ValueError`` names the file if it is not a
    complete safetensors file (truncated, foreign, or holding a dtype NumPy lacks: bfloat16).
    """
    path = os.fspath(path)
    _safetensors_numpy()  # ImportError naming the extra before anything else
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file", path)
    if not is_safetensors(path):
        raise ValueError(f"{path}: not a safetensors file (it does not start with a safetensors header)")
    from safetensors import safe_open

    try:
        with safe_open(path, framework="np") as handle:
            header = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # the Rust reader raises SafetensorError (an Exception) or TypeError
        raise ValueError(f"{path}: corrupt or truncated safetensors file ({exc})") from None
    return tensors, header


def _read_safetensors(path: str) -> SavedModel:
    tensors, header = read_safetensors(path)
    missing = [k for k in _ST_KEYS if k not in header]
    if header.get("chainrule.format") != FORMAT or missing:
        raise ValueError(f"{path}: a safetensors file but not a chainrule model (its header lacks "
                         f"{', '.join(missing) or 'the chainrule.format entry'}); read its tensors with "
                         "chainrule.serialization.read_safetensors and load them with load_state_dict")
    try:
        version = int(header["chainrule.version"])
    except ValueError:
        raise ValueError(f"{path}: the format version is not an integer") from None
    if not 1 <= version <= VERSION:
        raise ValueError(f"{path}: model format version {version}; this chainrule reads versions "
                         f"1 to {VERSION} (upgrade chainrule to read it)")
    try:
        spec = json.loads(header["chainrule.architecture"])
        metadata = json.loads(header["chainrule.metadata"])
        extra = json.loads(header["chainrule.arrays"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt model file (bad JSON in the header: {exc})") from None
    if not isinstance(metadata, dict) or not isinstance(extra, dict):
        raise ValueError(f"{path}: corrupt model file (metadata or arrays is not a JSON object)")
    arrays = {}
    for name, entry in extra.items():
        try:
            dtype = np.dtype(entry["dtype"])
            if dtype.kind not in "biufU":
                raise TypeError(f"dtype {dtype}")
            arrays[name] = np.array(entry["data"], dtype=dtype).reshape(entry["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: corrupt model file (array {name!r}: {exc})") from None
    try:
        model = module_from_spec(spec)
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt model file ({exc})") from None
    try:
        model.load_state_dict(tensors)
    except ValueError as exc:
        raise ValueError(f"{path}: weights do not match the architecture ({exc})") from None
    return SavedModel(model, metadata, arrays, version)
