"""chainrule models as ONNX graphs, checked by ``onnx.checker``, runnable by ONNX Runtime.

``to_onnx(model)`` takes a network (``chainrule.nn.Module``: input ``"input"`` of shape
``(N, in_features)``, output ``"output"``) or a trained model (``chainrule.train.TrainedModel``,
what ``chainrule train --out`` saves), whose graph starts from raw feature rows: it includes the
input standardisation fitted at training time, so ONNX Runtime on the rows of a CSV file gives
what ``chainrule predict`` gives. A trained model's outputs are

- regression: ``"prediction"`` ``(N, targets)``, in the target's own units (the target
  standardisation undone, as ``predict``);
- classification: ``"scores"`` (the network's raw outputs), ``"index"`` (int64 class indices,
  ``argmax`` or the threshold of a one-output head, as ``predict``) and, for the losses that
  define them (cross-entropy, the logistic losses), ``"probabilities"`` ``(N, classes)``.

The class labels, feature names and task are in the model's ``metadata_props`` (JSON).

Each layer becomes standard ONNX operators of opset 17: ``Linear`` is ``Gemm`` (``transB=1``:
PyTorch's ``(out, in)`` weight layout, as ``torch.onnx`` exports it), activations their ONNX
namesakes; GELU (an ONNX operator only from opset 20) is written out with ``Erf``/``Tanh`` as
in its definition; Softplus keeps PyTorch's ``beta`` and ``threshold``. ``Dropout`` and
``Identity`` export as nothing (inference). ``Conv1d``/``2d`` are ``Conv`` (padding 'same'
as explicit pads, the odd one at the end as PyTorch pads), the pools ``MaxPool``/``AveragePool``,
``BatchNorm1d``/``2d`` ``BatchNormalization`` with the running statistics (evaluation mode),
``LayerNorm`` ``LayerNormalization``, ``Flatten()`` ``Flatten`` and ``Unflatten(1, shape)``
``Reshape``: chainrule's ``CNN`` exports whole. Settings without a faithful ONNX form
(non-zero padding modes, ``ceil_mode`` average pooling, ``divisor_override``, ``return_indices``,
batch norm without running statistics, ``Embedding``) are a ``TypeError`` naming the layer.

The graph computes in float32 unless ``dtype``
says float64 (valid ONNX either way; ONNX Runtime's CPU kernels lack float64 ``Erf``, so
run a float64 graph with exact GELU elsewhere). Needs the ``onnx`` package
(``pip install "chainrule[onnx]"``), not PyTorch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import nn
from chainrule._io import atomic_write_bytes

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # pragma: no cover - exercised only where onnx is missing
    raise ImportError('chainrule.interop.onnx needs the onnx package: pip install "chainrule[onnx]"') from exc

__all__ = ["to_onnx", "save_onnx", "OPSET"]

OPSET = 17
_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


class _Graph:
    """Nodes and initializers under construction, with fresh value names."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: Any, hint: str, dtype: Any = None, exact: bool = False) -> str:
        name = hint if exact else self.name(hint)
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


# --- layers -----------------------------------------------------------------------------------


def _linear(g: _Graph, m: nn.Linear, x: str, where: str) -> str:
    # initializers named by their state-dict keys, as torch.onnx.export names them
    prefix = f"{where}." if where else ""
    inputs = [x, g.const(m.weight.data, f"{prefix}weight", exact=True)]
    if m.bias is not None:
        inputs.append(g.const(m.bias.data, f"{prefix}bias", exact=True))
    return g.op("Gemm", inputs, where, transB=1)


def _gelu(g: _Graph, m: nn.Module, x: str, where: str) -> str:
    half = g.const(0.5, "half")
    one = g.const(1.0, "one")
    if m.kwargs["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", [g.op("Mul", [x, x]), x])
        inner = g.op("Add", [x, g.op("Mul", [g.const(0.044715, "c"), cube])])
        t = g.op("Tanh", [g.op("Mul", [g.const(math.sqrt(2.0 / math.pi), "k"), inner])])
    else:  # 0.5 x (1 + erf(x / sqrt 2)): x Phi(x)
        t = g.op("Erf", [g.op("Div", [x, g.const(math.sqrt(2.0), "sqrt2")])])
    return g.op("Mul", [g.op("Mul", [half, x]), g.op("Add", [one, t])], where)


def _softplus(g: _Graph, m: nn.Module, x: str, where: str) -> str:
    # PyTorch's: log(1 + e^(beta x)) / beta, and x itself where beta x > threshold
    beta, threshold = m.kwargs["beta"], m.kwargs["threshold"]
    # log(1 + e^bx) written as max(bx, 0) + log(1 + e^-|bx|), the overflow-free form
    # chainrule.functional.softplus uses (ONNX Runtime has no float64 Softplus kernel)
    bx = g.op("Mul", [x, g.const(beta, "beta")])
    tail = g.op("Log", [g.op("Add", [g.const(1.0, "one"), g.op("Exp", [g.op("Neg", [g.op("Abs", [bx])])])])])
    soft = g.op("Div", [g.op("Add", [g.op("Max", [bx, g.const(0.0, "zero")]), tail]), g.const(beta, "beta")])
    above = g.op("Greater", [bx, g.const(threshold, "threshold")])
    return g.op("Where", [above, x, soft], where)


def _elu(g: _Graph, m: nn.Module, x: str, where: str) -> str:
    alpha = float(m.kwargs["alpha"])
    if g.dtype == np.float32:
        return g.op("Elu", [x], where, alpha=alpha)
    # ONNX Runtime has no float64 Elu kernel: x where x > 0, else alpha (e^x - 1), its definition
    negative = g.op("Mul", [g.const(alpha, "alpha"), g.op("Sub", [g.op("Exp", [x]), g.const(1.0, "one")])])
    return g.op("Where", [g.op("Greater", [x, g.const(0.0, "zero")]), x, negative], where)


def _pads(m: Any, d: int, where: str) -> list[int]:
    """ONNX's pads (all begins, then all ends) for a chainrule layer's ``padding``."""
    if m.padding == "valid":
        return [0] * (2 * d)
    if m.padding == "same":  # stride 1: total dilation*(k-1), the odd one at the end (PyTorch's)
        total = [dil * (k - 1) for dil, k in zip(m.dilation, m.kernel_size, strict=True)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    padding = _tuple(m.padding, d)
    return list(padding) * 2


def _tuple(value: Any, d: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * d


def _unsupported(where: str, what: str) -> TypeError:
    return TypeError(f"{'model.' + where if where else 'model'}: {what} has no ONNX export here")


def _conv(g: _Graph, m: Any, x: str, where: str) -> str:
    d = len(m.kernel_size)
    if m.padding_mode != "zeros":
        raise _unsupported(where, f"{type(m).__name__}(padding_mode={m.padding_mode!r})")
    prefix = f"{where}." if where else ""
    inputs = [x, g.const(m.weight.data, f"{prefix}weight", exact=True)]
    if m.bias is not None:
        inputs.append(g.const(m.bias.data, f"{prefix}bias", exact=True))
    return g.op(
        "Conv",
        inputs,
        where,
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        dilations=list(m.dilation),
        pads=_pads(m, d, where),
        group=m.groups,
    )


def _max_pool(g: _Graph, m: Any, x: str, where: str) -> str:
    d = 1 if type(m).__name__.endswith("1d") else 2
    if m.return_indices:
        raise _unsupported(where, f"{type(m).__name__}(return_indices=True)")
    kernel = _tuple(m.kernel_size, d)
    stride = _tuple(m.stride, d) if m.stride is not None else kernel
    return g.op(
        "MaxPool",
        [x],
        where,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=list(_tuple(m.padding, d)) * 2,
        dilations=list(_tuple(m.dilation, d)),
        ceil_mode=int(m.ceil_mode),
    )


def _avg_pool(g: _Graph, m: Any, x: str, where: str) -> str:
    d = 1 if type(m).__name__.endswith("1d") else 2
    if getattr(m, "divisor_override", None) is not None or m.ceil_mode:
        raise _unsupported(where, f"{type(m).__name__} with ceil_mode or divisor_override")
    kernel = _tuple(m.kernel_size, d)
    stride = _tuple(m.stride, d) if m.stride is not None else kernel
    return g.op(
        "AveragePool",
        [x],
        where,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=list(_tuple(m.padding, d)) * 2,
        count_include_pad=int(m.count_include_pad),
    )


def _batch_norm(g: _Graph, m: Any, x: str, where: str) -> str:
    # inference: the running statistics (what eval mode uses), as torch.onnx exports it
    if not m.track_running_stats:
        raise _unsupported(
            where,
            f"{type(m).__name__}(track_running_stats=False) (it normalises by each batch even in evaluation)",
        )
    prefix = f"{where}." if where else ""
    n = m.num_features
    scale = g.const(m.weight.data, f"{prefix}weight", exact=True) if m.affine else g.const(np.ones(n), "ones")
    bias = g.const(m.bias.data, f"{prefix}bias", exact=True) if m.affine else g.const(np.zeros(n), "zeros")
    mean = g.const(m.running_mean.data, f"{prefix}running_mean", exact=True)
    var = g.const(m.running_var.data, f"{prefix}running_var", exact=True)
    return g.op("BatchNormalization", [x, scale, bias, mean, var], where, epsilon=float(m.eps))


def _layer_norm(g: _Graph, m: Any, x: str, where: str) -> str:
    prefix = f"{where}." if where else ""
    shape = tuple(m.normalized_shape)
    inputs = [
        x,
        g.const(m.weight.data, f"{prefix}weight", exact=True)
        if m.weight is not None
        else g.const(np.ones(shape), "ones"),
    ]
    if m.bias is not None:
        inputs.append(g.const(m.bias.data, f"{prefix}bias", exact=True))
    return g.op("LayerNormalization", inputs, where, axis=-len(shape), epsilon=float(m.eps))


def _flatten(g: _Graph, m: Any, x: str, where: str) -> str:
    if (m.start_dim, m.end_dim) != (1, -1):
        raise _unsupported(where, f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) (only (1, -1))")
    return g.op("Flatten", [x], where, axis=1)


def _unflatten(g: _Graph, m: Any, x: str, where: str) -> str:
    if m.dim != 1:
        raise _unsupported(where, f"Unflatten(dim={m.dim}) (only dim=1 of (N, features) rows)")
    shape = g.const([0, *m.unflattened_size], "shape", np.int64)  # 0: keep N
    return g.op("Reshape", [x, shape], where)


def _simple(op_type: str, **attrs: Callable[[nn.Module], Any]) -> Callable[..., str]:
    def emit(g: _Graph, m: nn.Module, x: str, where: str) -> str:
        return g.op(op_type, [x], where, **{k: f(m) for k, f in attrs.items()})

    return emit


_LAYERS: dict[str, Callable[[_Graph, Any, str, str], str]] = {
    "Linear": _linear,
    "Identity": lambda g, m, x, w: x,
    "Dropout": lambda g, m, x, w: x,  # inference: the identity, as torch.onnx exports eval mode
    "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"),
    "ReLU": _simple("Relu"),
    "LeakyReLU": _simple("LeakyRelu", alpha=lambda m: float(m.kwargs["negative_slope"])),
    "ELU": _elu,
    "GELU": _gelu,
    "Softplus": _softplus,
    "Softmax": _simple("Softmax", axis=lambda m: int(m.kwargs["axis"])),
    "LogSoftmax": _simple("LogSoftmax", axis=lambda m: int(m.kwargs["axis"])),
    "Conv1d": _conv,
    "Conv2d": _conv,
    "MaxPool1d": _max_pool,
    "MaxPool2d": _max_pool,
    "AvgPool1d": _avg_pool,
    "AvgPool2d": _avg_pool,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "LayerNorm": _layer_norm,
    "Flatten": _flatten,
    "Unflatten": _unflatten,
}


def _emit(g: _Graph, module: nn.Module, x: str, where: str) -> str:
    name = type(module).__name__
    if type(module) in (nn.Sequential, nn.MLP, nn.CNN):
        for key, child in module.named_children():
            x = _emit(g, child, x, f"{where}.{key}" if where else key)
        return x
    emit = _LAYERS.get(name)
    if emit is None or nn.MODULES.get(name) is not type(module):
        raise TypeError(
            f"{'model.' + where if where else 'model'}: cannot export a {name} to ONNX; to_onnx exports "
            f"Sequential, MLP, CNN and {', '.join(_LAYERS)}"
        )
    return emit(g, module, x, where)


def _input_size(module: nn.Module) -> int:
    for m in module.modules():
        if isinstance(m, nn.Unflatten):  # a CNN's first layer: flat rows of C*H*W
            return math.prod(m.unflattened_size)
        if isinstance(m, nn.Linear):
            return m.in_features
    raise ValueError("cannot tell the network's input size (it has no Linear layer); pass input_size=")


# --- the model ----------------------------------------------------------------------------------


def to_onnx(
    model: Any, *, input_size: int | None = None, dtype: Any = np.float32, opset: int = OPSET
) -> onnx.ModelProto:
    """The ONNX model of a network or of a trained model (see the module docstring).

    ``input_size`` is the network's number of inputs (default: the first ``Linear``'s
    ``in_features``); the batch dimension is symbolic (``"N"``). ``dtype`` is the graph's
    float type (``float32``, ONNX Runtime's usual one, or ``float64``). The result passes
    ``onnx.checker.check_model(full_check=True)``. Raises ``TypeError`` naming a layer ONNX
    export does not cover, ``ValueError`` for a dtype other than float32/float64.
    """
    from chainrule.train import TrainedModel

    dtype = np.dtype(dtype)
    if dtype not in _ELEM:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    trained = model if isinstance(model, TrainedModel) else None
    network = trained.model if trained is not None else model
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"to_onnx expects a chainrule.nn.Module or a TrainedModel, got {type(model).__name__}"
        )
    g = _Graph(dtype)
    n_in = len(trained.feature_names) if trained is not None else (input_size or _input_size(network))
    x = "input"
    props: dict[str, str] = {"producer": "chainrule"}
    if trained is not None:
        scaler = trained.feature_scaler
        x = g.op(
            "Div",
            [g.op("Sub", [x, g.const(scaler.mean, "feature_mean")]), g.const(scaler.scale, "feature_scale")],
            "standardised",
        )
    scores = _emit(g, network, x, "")
    outputs: list[tuple[str, str, Any]] = []  # (graph value, output name, element type)
    elem = _ELEM[dtype]
    if trained is None:
        outputs.append((scores, "output", elem))
    else:
        props.update(
            {
                "chainrule.task": trained.task,
                "chainrule.feature_names": json.dumps(trained.feature_names),
                "chainrule.target_name": json.dumps(trained.target_name),
                "chainrule.head": json.dumps(trained.head.kind),
            }
        )
        if trained.task == "regression":
            value = scores
            if trained.target_scaler is not None:
                value = g.op(
                    "Add",
                    [
                        g.op("Mul", [scores, g.const(trained.target_scaler.scale, "target_scale")]),
                        g.const(trained.target_scaler.mean, "target_mean"),
                    ],
                )
            outputs.append((value, "prediction", elem))
        else:
            props["chainrule.classes"] = json.dumps([_plain(c) for c in trained.classes])
            outputs.extend(_classification(g, trained, scores))
    # name the outputs: an Identity from each internal value to its public name
    graph_outputs = []
    for value, name, out_elem in outputs:
        g.nodes.append(helper.make_node("Identity", [value], [name]))
        graph_outputs.append(
            helper.make_tensor_value_info(name, out_elem, ["N", None] if name != "index" else ["N"])
        )
    graph = helper.make_graph(
        g.nodes,
        "chainrule",
        [helper.make_tensor_value_info("input", elem, ["N", n_in])],
        graph_outputs,
        g.initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="chainrule"
    )
    from chainrule import __version__

    proto.producer_version = __version__
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _classification(g: _Graph, trained: Any, scores: str) -> list[tuple[str, str, Any]]:
    head, elem = trained.head, _ELEM[g.dtype]
    out = [(scores, "scores", elem)]
    if head.kind in ("multiclass", "onehot"):
        index = g.op("ArgMax", [scores], "argmax", axis=1, keepdims=0)  # first maximum, as np.argmax
    else:
        threshold = 0.5 if head.kind == "probability" else 0.0
        column = g.op("Squeeze", [scores, g.const([1], "axis", np.int64)])
        index = g.op(
            "Cast", [g.op("GreaterOrEqual", [column, g.const(threshold, "threshold")])], to=TensorProto.INT64
        )
    out.append((index, "index", TensorProto.INT64))
    if head.loss == "cross_entropy":
        out.append((g.op("Softmax", [scores], axis=1), "probabilities", elem))
    elif head.kind in ("logit", "probability"):
        p = scores if head.kind == "probability" else g.op("Sigmoid", [scores])
        q = g.op("Sub", [g.const(1.0, "one"), p])
        out.append((g.op("Concat", [q, p], axis=1), "probabilities", elem))
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def save_onnx(path: str | os.PathLike, model: Any, **kwargs: Any) -> None:
    """Write ``to_onnx(model, **kwargs)`` to ``path`` atomically (a failed export leaves no file)."""
    proto = to_onnx(model, **kwargs)
    atomic_write_bytes(path, proto.SerializeToString())


def load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Read and check an ONNX file; ``ValueError`` naming the file if it is truncated or foreign."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file", path)
    try:
        proto = onnx.load(path)
        onnx.checker.check_model(proto)
    except Exception as exc:  # DecodeError (protobuf), ValidationError (checker)
        raise ValueError(
            f"{path}: not a valid ONNX model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not proto.graph.node:
        raise ValueError(f"{path}: not a valid ONNX model (its graph is empty)")
    return proto
