"""chainrule modules to and from PyTorch modules, with PyTorch's parameter names and layouts.

``to_torch(module)`` builds the ``torch.nn`` module of the same architecture and copies every
parameter and buffer into it; ``from_torch(module)`` does the reverse. Both go through
``state_dict`` (``0.weight``, ``0.bias``, ...), whose keys and layouts are the same on both sides
(``Linear.weight`` is ``(out_features, in_features)`` in both), so a conversion is an exact copy:
no value is rounded and ``to_torch(from_torch(m))`` has ``m``'s state dict bit for bit.

Supported: ``Sequential`` (and chainrule's ``MLP`` and ``CNN``, which become a
``torch.nn.Sequential``), ``Linear``, ``Identity``, ``Dropout``, every activation module
(``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``GELU``, ``Softplus``, ``Softmax``,
``LogSoftmax``, ``LogSigmoid``, ``SiLU``, ``SELU``, ``CELU``, ``Mish``, ``Hardswish``,
``Hardsigmoid``, ``Hardtanh``, ``ReLU6``, ``Softsign``, ``Softmin``), ``Conv1d``/``Conv2d``,
``MaxPool1d``/``2d``, ``AvgPool1d``/``2d``,
``BatchNorm1d``/``2d`` (running statistics and ``num_batches_tracked`` included), ``LayerNorm``,
``Embedding``, ``Flatten`` and ``Unflatten``. A
torch module outside this table, or a custom ``torch.nn.Module`` subclass (its ``forward`` is
arbitrary Python that chainrule cannot read), is a ``TypeError`` naming it and its place in the
model. ``explain_torch`` explains a backward pass through a converted PyTorch model.

Needs PyTorch (``pip install "chainrule[torch]"``); importing this module without it raises an
``ImportError`` that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import nn

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only where torch is missing
    raise ImportError('chainrule.interop.torch needs PyTorch: pip install "chainrule[torch]"') from exc

__all__ = [
    "to_torch",
    "from_torch",
    "explain_torch",
    "supported_layers",
    "to_torch_program",
    "save_torch_program",
]

_NP_TO_TORCH = {
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}


def _torch_dtype(dtype: Any) -> torch.dtype:
    try:
        return _NP_TO_TORCH[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"no PyTorch floating-point dtype for {dtype}") from None


def _np_dtype(dtype: torch.dtype, where: str) -> np.dtype:
    for np_dtype, t_dtype in _NP_TO_TORCH.items():
        if t_dtype == dtype:
            return np_dtype
    raise TypeError(
        f"{where}: parameters of dtype {dtype} have no NumPy dtype chainrule can hold "
        "(use float32 or float64: module.double())"
    )


# --- the layer table: chainrule class <-> torch class, constructor arguments only -----------------
# Parameters and buffers are never copied here: both directions copy them afterwards through
# load_state_dict (strict), so a layer added to the table cannot forget one.


def _linear_to(m: nn.Linear) -> torch.nn.Module:
    return torch.nn.Linear(
        m.in_features, m.out_features, bias=m.bias is not None, dtype=_torch_dtype(m.weight.dtype)
    )


def _linear_from(t: torch.nn.Linear, where: str) -> nn.Module:
    return nn.Linear(
        t.in_features, t.out_features, bias=t.bias is not None, dtype=_np_dtype(t.weight.dtype, where)
    )


def _softmax_from(cls: type[nn.Module]) -> Callable[[Any, str], nn.Module]:
    def convert(t: Any, where: str) -> nn.Module:
        if t.dim is None:
            raise ValueError(
                f"{where}: torch.nn.{type(t).__name__}(dim=None) picks its axis from the "
                "input's rank (deprecated in PyTorch); give dim explicitly to convert it"
            )
        return cls(axis=t.dim)

    return convert


def _conv_to(m: Any) -> torch.nn.Module:
    cls = getattr(torch.nn, type(m).__name__)
    padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
    return cls(
        m.in_channels,
        m.out_channels,
        tuple(m.kernel_size),
        stride=tuple(m.stride),
        padding=padding,
        dilation=tuple(m.dilation),
        groups=m.groups,
        bias=m.bias is not None,
        padding_mode=m.padding_mode,
        dtype=_torch_dtype(m.weight.dtype),
    )


def _conv_from(t: Any, where: str) -> nn.Module:
    cls = getattr(nn, type(t).__name__)
    padding = t.padding if isinstance(t.padding, str) else tuple(t.padding)
    return cls(
        t.in_channels,
        t.out_channels,
        tuple(t.kernel_size),
        stride=tuple(t.stride),
        padding=padding,
        dilation=tuple(t.dilation),
        groups=t.groups,
        bias=t.bias is not None,
        padding_mode=t.padding_mode,
        dtype=_np_dtype(t.weight.dtype, where),
    )


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _max_pool_to(m: Any) -> torch.nn.Module:
    return getattr(torch.nn, type(m).__name__)(
        _plain(m.kernel_size),
        _plain(m.stride),
        _plain(m.padding),
        _plain(m.dilation),
        m.return_indices,
        m.ceil_mode,
    )


def _max_pool_from(t: Any, where: str) -> nn.Module:
    return getattr(nn, type(t).__name__)(
        _plain(t.kernel_size),
        _plain(t.stride),
        _plain(t.padding),
        _plain(t.dilation),
        t.return_indices,
        t.ceil_mode,
    )


def _avg_pool_to(m: Any) -> torch.nn.Module:
    args = [_plain(m.kernel_size), _plain(m.stride), _plain(m.padding), m.ceil_mode, m.count_include_pad]
    if type(m) is nn.AvgPool2d:
        args.append(m.divisor_override)
    return getattr(torch.nn, type(m).__name__)(*args)


def _avg_pool_from(t: Any, where: str) -> nn.Module:
    args = [_plain(t.kernel_size), _plain(t.stride), _plain(t.padding), t.ceil_mode, t.count_include_pad]
    if type(t) is torch.nn.AvgPool2d:
        args.append(t.divisor_override)
    return getattr(nn, type(t).__name__)(*args)


def _batch_norm_to(m: Any) -> torch.nn.Module:
    return getattr(torch.nn, type(m).__name__)(
        m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=_torch_dtype(m._dtype)
    )


def _batch_norm_from(t: Any, where: str) -> nn.Module:
    if t.affine and t.bias is None:
        raise ValueError(
            f"{where}: torch.nn.{type(t).__name__}(bias=False) has no chainrule equivalent "
            "(chainrule's affine batch norm has both weight and bias)"
        )
    held = [v for v in (t.weight, t.running_mean) if v is not None]
    dtype = held[0].dtype if held else torch.float32
    return getattr(nn, type(t).__name__)(
        t.num_features, t.eps, t.momentum, t.affine, t.track_running_stats, dtype=_np_dtype(dtype, where)
    )


def _layer_norm_to(m: Any) -> torch.nn.Module:
    return torch.nn.LayerNorm(
        m.normalized_shape, m.eps, m.elementwise_affine, m.bias is not None, dtype=_torch_dtype(m._dtype)
    )


def _layer_norm_from(t: Any, where: str) -> nn.Module:
    dtype = t.weight.dtype if t.weight is not None else torch.float32
    return nn.LayerNorm(
        tuple(t.normalized_shape),
        t.eps,
        t.elementwise_affine,
        t.bias is not None,
        dtype=_np_dtype(dtype, where),
    )


def _embedding_to(m: Any) -> torch.nn.Module:
    return torch.nn.Embedding(
        m.num_embeddings, m.embedding_dim, m.padding_idx, dtype=_torch_dtype(m.weight.dtype)
    )


def _embedding_from(t: Any, where: str) -> nn.Module:
    if t.max_norm is not None or t.scale_grad_by_freq or t.sparse:
        raise ValueError(
            f"{where}: torch.nn.Embedding with max_norm, scale_grad_by_freq or sparse has "
            "no chainrule equivalent (chainrule's Embedding is a plain lookup)"
        )
    return nn.Embedding(
        t.num_embeddings, t.embedding_dim, t.padding_idx, dtype=_np_dtype(t.weight.dtype, where)
    )


# chainrule class name -> (torch class name, chainrule -> torch, torch -> chainrule)
_TABLE: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any, str], nn.Module]]] = {
    "Linear": ("Linear", _linear_to, _linear_from),
    "Identity": ("Identity", lambda m: torch.nn.Identity(), lambda t, w: nn.Identity()),
    "Dropout": ("Dropout", lambda m: torch.nn.Dropout(m.p), lambda t, w: nn.Dropout(t.p)),
    "Sigmoid": ("Sigmoid", lambda m: torch.nn.Sigmoid(), lambda t, w: nn.Sigmoid()),
    "Tanh": ("Tanh", lambda m: torch.nn.Tanh(), lambda t, w: nn.Tanh()),
    "ReLU": ("ReLU", lambda m: torch.nn.ReLU(), lambda t, w: nn.ReLU()),
    "LeakyReLU": (
        "LeakyReLU",
        lambda m: torch.nn.LeakyReLU(m.kwargs["negative_slope"]),
        lambda t, w: nn.LeakyReLU(t.negative_slope),
    ),
    "ELU": ("ELU", lambda m: torch.nn.ELU(m.kwargs["alpha"]), lambda t, w: nn.ELU(t.alpha)),
    "GELU": (
        "GELU",
        lambda m: torch.nn.GELU(approximate=m.kwargs["approximate"]),
        lambda t, w: nn.GELU(t.approximate),
    ),
    "Softplus": (
        "Softplus",
        lambda m: torch.nn.Softplus(m.kwargs["beta"], m.kwargs["threshold"]),
        lambda t, w: nn.Softplus(t.beta, t.threshold),
    ),
    "Softmax": ("Softmax", lambda m: torch.nn.Softmax(m.kwargs["axis"]), _softmax_from(nn.Softmax)),
    "LogSoftmax": (
        "LogSoftmax",
        lambda m: torch.nn.LogSoftmax(m.kwargs["axis"]),
        _softmax_from(nn.LogSoftmax),
    ),
    "Conv1d": ("Conv1d", _conv_to, _conv_from),
    "Conv2d": ("Conv2d", _conv_to, _conv_from),
    "MaxPool1d": ("MaxPool1d", _max_pool_to, _max_pool_from),
    "MaxPool2d": ("MaxPool2d", _max_pool_to, _max_pool_from),
    "AvgPool1d": ("AvgPool1d", _avg_pool_to, _avg_pool_from),
    "AvgPool2d": ("AvgPool2d", _avg_pool_to, _avg_pool_from),
    "BatchNorm1d": ("BatchNorm1d", _batch_norm_to, _batch_norm_from),
    "BatchNorm2d": ("BatchNorm2d", _batch_norm_to, _batch_norm_from),
    "LayerNorm": ("LayerNorm", _layer_norm_to, _layer_norm_from),
    "Embedding": ("Embedding", _embedding_to, _embedding_from),
    "Flatten": (
        "Flatten",
        lambda m: torch.nn.Flatten(m.start_dim, m.end_dim),
        lambda t, w: nn.Flatten(t.start_dim, t.end_dim),
    ),
    "Unflatten": (
        "Unflatten",
        lambda m: torch.nn.Unflatten(m.dim, m.unflattened_size),
        lambda t, w: nn.Unflatten(t.dim, tuple(t.unflattened_size)),
    ),
}
# The newer activation modules: the same class name in torch.nn, settings under the same names
# (chainrule's axis is torch's dim).
for _name, _settings in {
    "LogSigmoid": (),
    "SiLU": (),
    "SELU": (),
    "Mish": (),
    "Hardswish": (),
    "Hardsigmoid": (),
    "ReLU6": (),
    "Softsign": (),
    "CELU": ("alpha",),
    "Hardtanh": ("min_val", "max_val"),
    "Softmin": ("axis",),
}.items():
    if hasattr(nn, _name) and hasattr(torch.nn, _name):

        def _to_act(m: Any, _name: str = _name, _settings: tuple = _settings) -> torch.nn.Module:
            return getattr(torch.nn, _name)(*(m.kwargs[k] for k in _settings))

        def _from_act(t: Any, where: str, _name: str = _name, _settings: tuple = _settings) -> nn.Module:
            values = [getattr(t, "dim" if k == "axis" else k) for k in _settings]
            if "axis" in _settings and values[0] is None:
                raise ValueError(
                    f"{where}: torch.nn.{_name}(dim=None) picks its axis from the input's rank; "
                    "give dim explicitly to convert it"
                )
            return getattr(nn, _name)(*values)

        _TABLE[_name] = (_name, _to_act, _from_act)

_FROM_TORCH_NAME = {torch_name: ours for ours, (torch_name, _, _) in _TABLE.items()}


def supported_layers() -> list[str]:
    """The ``torch.nn`` layer classes ``from_torch`` converts (besides ``Sequential``)."""
    return ["Sequential", *(torch_name for torch_name, _, _ in _TABLE.values())]


# --- the two directions ------------------------------------------------------------------------


def to_torch(module: nn.Module) -> torch.nn.Module:
    """The ``torch.nn`` module with ``module``'s architecture, parameters and buffers.

    ``Sequential`` and ``MLP`` become ``torch.nn.Sequential``; each layer becomes its namesake
    in ``torch.nn`` with the same settings and dtype (float64 stays float64). The state dicts
    of the two modules have the same keys, shapes and values (copies: later training of one
    leaves the other alone), and the training/evaluation mode is carried over.

    Raises ``TypeError`` for a module that is not chainrule's (naming it and where it sits).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"to_torch expects a chainrule.nn.Module, got {type(module).__name__}")
    converted = _to(module, "model")
    # np.array, not np.ascontiguousarray: that one makes a 0-d buffer (num_batches_tracked) 1-d
    state = {k: torch.from_numpy(np.array(v, order="C")) for k, v in module.state_dict().items()}
    converted.load_state_dict(state, strict=True)
    converted.train(module.training)
    return converted


def _to(module: nn.Module, where: str) -> torch.nn.Module:
    name = type(module).__name__
    if isinstance(module, nn.Sequential) and type(module) in (nn.Sequential, nn.MLP, nn.CNN):
        children = list(module.named_children())
        if [k for k, _ in children] != [str(i) for i in range(len(children))]:
            raise ValueError(
                f"{where}: a Sequential whose children are not named 0, 1, ... cannot be "
                "converted with the same state-dict keys"
            )
        return torch.nn.Sequential(*(_to(m, f"{where}.{k}") for k, m in children))
    entry = _TABLE.get(name)
    if entry is None or nn.MODULES.get(name) is not type(module):
        raise TypeError(
            f"{where}: cannot convert a {name} to PyTorch; to_torch converts "
            f"Sequential, MLP, CNN and {', '.join(_TABLE)}"
        )
    return entry[1](module)


def from_torch(module: torch.nn.Module) -> nn.Module:
    """The chainrule module with a PyTorch module's architecture, parameters and buffers.

    ``module`` is a ``torch.nn.Sequential`` (nested ones too) of supported layers, or one such
    layer (``supported_layers()``). Values are copied exactly, in the parameters' dtype (float32
    or float64; convert half precision first). The training/evaluation mode is carried over.

    Raises ``TypeError`` naming an unsupported layer and its key in the model (e.g. ``model.2:
    torch.nn.Conv3d``), including custom ``torch.nn.Module`` subclasses, whose ``forward`` is
    Python that chainrule cannot read; ``ValueError`` for a setting chainrule cannot express.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    converted = _from(module, "model")
    converted.load_state_dict(module.state_dict(), strict=True)
    converted.train(module.training)
    return converted


def _from(module: torch.nn.Module, where: str) -> nn.Module:
    cls = type(module)
    if cls is torch.nn.Sequential:
        return nn.Sequential(*(_from(m, f"{where}.{k}") for k, m in module.named_children()))
    name = _FROM_TORCH_NAME.get(cls.__name__)
    if name is None or getattr(torch.nn, cls.__name__, None) is not cls:
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.startswith("torch.nn"):
            qualified = f"torch.nn.{cls.__name__}"
        raise TypeError(
            f"{where}: unsupported torch layer {qualified}; from_torch converts "
            f"{', '.join(supported_layers())} (a custom Module's forward cannot be read)"
        )
    if module._forward_hooks or module._forward_pre_hooks:
        raise ValueError(
            f"{where}: torch.nn.{cls.__name__} has forward hooks, which change what it "
            "computes; remove them to convert it"
        )
    return _TABLE[name][2](module, where)


# --- explain a PyTorch model -----------------------------------------------------------------------


def explain_torch(
    model: torch.nn.Module,
    input: Any,
    target: Any,
    loss: str = "l2_loss",  # noqa: A002
    *,
    notation: str = "reference",
    lr: float | None = None,
    digits: int | None = None,
    title: str | None = None,
    **loss_kwargs: Any,
) -> Any:
    """Explain one forward and backward pass of a PyTorch model, step by step.

    ``model`` is converted with ``from_torch`` (same weights, same dtype: use float64 for
    gradients equal to ``torch.autograd``'s to rounding); ``input`` (a sample ``(in,)`` or a
    batch ``(N, in)``) and ``target`` are torch tensors or array-likes; ``loss`` names a loss
    of ``chainrule.functional`` ("l2_loss", "mse_loss", "cross_entropy", ...) and
    ``loss_kwargs`` its settings (``reduction="sum"``, ``delta=...``). The rest are
    ``chainrule.explain``'s arguments. The loss is built exactly as a network file builds it,
    so a model of ``Linear`` layers and activations gets the same named view (``w_{ij-l}``,
    ``z_{j-l}``) as the equivalent network file. Dropout follows the model's mode: call
    ``model.eval()`` first for a deterministic pass. Weight gradients are shown in PyTorch's
    (out, in) layout, as ``model[k].weight.grad`` holds them.

    Returns a ``chainrule.explain.Explanation``. Raises what ``from_torch`` raises, and
    ``ValueError`` for an unknown loss or a target that does not fit the output.
    """
    from chainrule import functional as F
    from chainrule.explain import explain
    from chainrule.explain.numbers import DEFAULT_DIGITS

    net = from_torch(model)
    x = _array(input, "input")
    y = _array(target, "target")
    first = next(net.parameters(), None)
    if x.dtype.kind in "iuf" and first is not None:
        x = x.astype(first.dtype)  # as the network file: the input in the weights' dtype
    loss_fn = F.get_loss(loss)
    value = loss_fn(net(x), y, **loss_kwargs)
    return explain(  # gradients laid out as the model's own weight.grad: PyTorch's (out, in) rows
        value,
        notation=notation,
        lr=lr,
        digits=DEFAULT_DIGITS if digits is None else digits,
        title=title,
        layout="out-in",
    )


def _array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must be a torch tensor or an array-like, got {type(value).__name__}: {exc}"
        ) from None


# --- a runnable PyTorch program (torch.export) ------------------------------------------------------


class _Predictor(torch.nn.Module):
    """Raw feature rows in, what ``chainrule predict`` computes from them out: the network's
    scores (classification) or predictions in the target's units (regression)."""

    def __init__(
        self,
        net: torch.nn.Module,
        dtype: torch.dtype,
        feature_mean: np.ndarray,
        feature_scale: np.ndarray,
        target_mean: np.ndarray | None,
        target_scale: np.ndarray | None,
    ):
        super().__init__()
        self.net = net
        self.register_buffer("feature_mean", torch.tensor(feature_mean, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.tensor(feature_scale, dtype=torch.float64))
        self.destandardise = target_mean is not None
        if self.destandardise:
            self.register_buffer("target_mean", torch.tensor(target_mean, dtype=torch.float64))
            self.register_buffer("target_scale", torch.tensor(target_scale, dtype=torch.float64))
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # standardise in float64, then cast, exactly as TrainedModel.predict does
        out = self.net(((x.double() - self.feature_mean) / self.feature_scale).to(self.dtype))
        if self.destandardise:
            out = (out.double() * self.target_scale + self.target_mean).to(self.dtype)
        return out


def to_torch_program(model: Any) -> Any:
    """A ``torch.export.ExportedProgram`` of a network or of a trained model.

    For a ``chainrule.nn.Module`` it is ``to_torch(model)`` traced on a batch of
    ``(N, in_features)`` inputs; for a ``TrainedModel`` it takes raw feature rows, standardises
    them as at training time and returns the network's scores (classification) or predictions
    in the target's units (regression), as ``chainrule predict`` does. The batch size is
    symbolic. ``torch.export.load(path).module()`` runs it without chainrule.
    """
    from chainrule.train import TrainedModel

    trained = model if isinstance(model, TrainedModel) else None
    network = trained.model if trained is not None else model
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"to_torch_program expects a chainrule.nn.Module or a TrainedModel, got {type(model).__name__}"
        )
    first = next(network.parameters(), None)
    dtype = _torch_dtype(first.dtype if first is not None else np.float64)
    net = to_torch(network).eval()
    if trained is not None:
        target = trained.target_scaler
        module = _Predictor(
            net,
            dtype,
            trained.feature_scaler.mean,
            trained.feature_scaler.scale,
            None if target is None else target.mean,
            None if target is None else target.scale,
        )
        n_in = len(trained.feature_names)
    else:
        module = net
        linear = next((m for m in network.modules() if isinstance(m, nn.Linear)), None)
        if linear is None:
            raise ValueError("cannot tell the network's input size (it has no Linear layer)")
        n_in = linear.in_features
    example = torch.zeros(2, n_in, dtype=dtype)
    batch = torch.export.Dim("N")
    return torch.export.export(module, (example,), dynamic_shapes=({0: batch},))


def save_torch_program(path: Any, model: Any) -> None:
    """Write ``to_torch_program(model)`` with ``torch.export.save``, atomically."""
    import io

    from chainrule._io import atomic_write_bytes

    buffer = io.BytesIO()
    torch.export.save(to_torch_program(model), buffer)
    atomic_write_bytes(path, buffer.getvalue())
