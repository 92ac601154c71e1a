"""Neural-network modules in PyTorch's shape: ``Module``, ``Linear``, ``Sequential``, ``MLP``,
a module for every activation and loss of ``chainrule.functional``, ``Dropout``, and the
convolution, pooling, normalisation, embedding and reshaping layers (``Conv2d``, ``MaxPool2d``,
``BatchNorm2d``, ``LayerNorm``, ``Embedding``, ``Flatten``, ...).

Layers hold parameters and call the functional forms; the math lives in
``chainrule.functional`` (one place), never here. Buffers (``register_buffer``) hold state
that is not learned, such as batch norm's running statistics, under PyTorch's names.

Weight layout follows PyTorch: ``Linear.weight`` has shape ``(out_features, in_features)`` and
the layer computes ``y = x @ weight.T + bias``, so row ``j`` of the weight holds the incoming
weights of output unit ``j``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from chainrule import functional as F
from chainrule.tensor import RNG, Tensor, _generator


def _float_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"parameters need a floating-point dtype, got {dtype}")
    return dtype


class Parameter(Tensor):
    """A tensor that is a module's learnable parameter (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


# --- Module -------------------------------------------------------------------------------------

class Module:
    """Base class of layers and models (``torch.nn.Module``).

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so
    ``parameters()``, ``state_dict()`` and the repr find it. Subclasses call
    ``super().__init__()`` first and define ``forward``; calling the module runs ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        try:
            params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning attributes") from None
        buffers = self.__dict__.get("_buffers", {})
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in buffers:
            if value is not None and not isinstance(value, (Tensor, np.ndarray)):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r}: "
                                "expected a Tensor, an ndarray or None")
            buffers[name] = _as_buffer(value)
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r}: "
                                "expected a Parameter or None")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r}: "
                                "expected a Module or None")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:  # only called when normal lookup fails
        d = self.__dict__
        if name in d.get("_parameters", ()):
            return d["_parameters"][name]
        if name in d.get("_buffers", ()):
            return d["_buffers"][name]
        if name in d.get("_modules", ()):
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter expects a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register state that is not a parameter (``torch.nn.Module.register_buffer``).

        A buffer (e.g. BatchNorm's ``running_mean``) is kept as a ``Tensor`` that does not
        require grad; array-likes are wrapped. Persistent buffers are part of ``state_dict()``
        under the same dotted names as PyTorch's; ``persistent=False`` keeps one out of it.
        ``to(dtype)`` casts floating-point buffers and leaves integer ones (a step count) alone.
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"buffer name must be a non-empty string without '.', got {name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"attribute {name!r} already exists as a parameter or submodule")
        if tensor is not None and not isinstance(tensor, (Tensor, np.ndarray, np.generic, int, float, list)):
            raise TypeError(f"register_buffer expects a Tensor, an array-like or None, "
                            f"got {type(tensor).__name__}")
        self.__dict__.pop(name, None)
        self._buffers[name] = _as_buffer(tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module expects a Module or None, got {type(module).__name__}")
        self._modules[name] = module

    # --- running ------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, each once, depth-first (``torch.nn.Module.named_modules``)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_name, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, as ``torch.nn.Module.named_buffers``."""
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mod_name, m in mods:
            for name, b in m._buffers.items():
                if b is None or id(b) in seen:
                    continue
                seen.add(id(b))
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # --- modes and gradients ----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout active) or, with ``mode=False``, evaluation mode; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else np.zeros_like(p.data)

    def to(self, dtype: Any) -> Module:
        """Cast every parameter to ``dtype`` in place (e.g. ``np.float32``); returns self."""
        dtype = _float_dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for b in self.buffers():
            if b.data.dtype.kind == "f":
                b.data = b.data.astype(dtype)
        return self

    # --- state ----------------------------------------------------------------------------
    def _state_entries(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        # PyTorch's order: each module's parameters, then its persistent buffers, then its
        # children's, depth-first; a tensor shared by two modules appears under both names.
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and persistent buffers by dotted name (``torch.nn.Module.state_dict``).

        The keys and their order are PyTorch's for the same architecture (``0.weight``,
        ``0.bias``, ``1.running_mean``, ...). Unlike PyTorch, whose entries share storage with
        the module, the values are NumPy copies: saving one never aliases the live weights.
        """
        return {name: t.data.copy() for name, t in self._state_entries()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers in place (optimizers keep working on them).

        As ``torch.nn.Module.load_state_dict``: with ``strict=True`` (the default) missing and
        unexpected keys are an error listing them; a shape mismatch is always an error; values
        are cast to each entry's dtype; returns ``(missing_keys, unexpected_keys)``. Values may
        be NumPy arrays, chainrule tensors or anything with ``.numpy()`` (a CPU torch tensor).
        Unlike PyTorch, every entry is checked before any is copied: a ``ValueError`` (PyTorch:
        ``RuntimeError``) naming every bad key leaves the module unchanged.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        own = dict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and unexpected:
            errors.append(f"unexpected keys: {', '.join(map(str, unexpected))}")
        if strict and missing:
            errors.append(f"missing keys: {', '.join(missing)}")
        values: dict[str, np.ndarray] = {}
        for name, t in own.items():
            if name not in state_dict:
                continue
            value = _state_array(state_dict[name])
            if value is None or value.dtype.kind not in "biuf":
                kind = type(state_dict[name]).__name__ if value is None else f"dtype {value.dtype}"
                errors.append(f"state dict entry {name!r} holds {kind}, expected a numeric array")
            elif value.shape != t.data.shape:
                what = "parameter" if isinstance(t, Parameter) else "buffer"
                errors.append(f"size mismatch: state dict entry {name!r} has shape {value.shape}, "
                              f"the {what} has shape {t.data.shape}")
            else:
                values[name] = value
        if errors:
            raise ValueError(f"error loading state dict into {type(self).__name__}: {'; '.join(errors)}")
        for name, value in values.items():
            np.copyto(own[name].data, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # --- description ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able values, so the module can be rebuilt from a file."""
        raise NotImplementedError(f"{type(self).__name__} cannot describe its architecture "
                                  "(only chainrule's built-in modules can be saved)")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        kids = [f"({name}): {_indent(repr(m))}" for name, m in self.named_children()]
        if not kids:
            return f"{type(self).__name__}({extra})"
        lines = (extra.split("\n") if extra else []) + kids
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_buffer(value: Any) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    return Tensor(np.array(value), requires_grad=False)


def _state_array(value: Any) -> np.ndarray | None:
    """A state-dict value as an ndarray: arrays, tensors, numbers, torch tensors (via .numpy())."""
    if isinstance(value, Tensor):
        return value.data
    if not isinstance(value, (np.ndarray, np.generic, int, float)) and hasattr(value, "numpy"):
        try:
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value.numpy()
        except (TypeError, RuntimeError):  # e.g. a bfloat16 torch tensor: NumPy has no such dtype
            return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return array


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


# --- weight initialisation --------------------------------------------------------------------

GLOROT_ACTIVATIONS = ("linear", "identity", "sigmoid", "tanh", "softmax", "log_softmax")
HE_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "softplus")


def xavier_uniform(shape: tuple[int, int], rng: RNG = None, gain: float = 1.0,
                   dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    Keeps the variance of activations and of gradients about equal across layers for
    activations that are linear near 0 (sigmoid, tanh): Glorot & Bengio (2010).
    """
    fan_out, fan_in = shape
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _generator(rng).uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal(shape: tuple[int, int], rng: RNG = None, negative_slope: float = 0.0,
                   dtype: Any = np.float64) -> np.ndarray:
    """He/Kaiming normal (fan_in): N(0, gain^2 / fan_in) with gain = sqrt(2 / (1 + slope^2)).

    ReLU zeroes half of its inputs, halving the variance; the factor 2 restores it:
    He et al. (2015).
    """
    fan_in = shape[1]
    std = math.sqrt(2.0 / (1.0 + negative_slope ** 2)) / math.sqrt(fan_in)
    return (_generator(rng).standard_normal(shape) * std).astype(dtype)


def init_weight(shape: tuple[int, int], nonlinearity: str | None = "linear", rng: RNG = None,
                dtype: Any = np.float64, negative_slope: float = 0.01) -> np.ndarray:
    """A weight of ``shape`` (out, in) initialised for the activation that follows the layer."""
    name = "linear" if nonlinearity is None else nonlinearity
    if name in GLOROT_ACTIVATIONS:
        return xavier_uniform(shape, rng, dtype=dtype)
    if name in HE_ACTIVATIONS:
        slope = negative_slope if name == "leaky_relu" else 0.0
        return kaiming_normal(shape, rng, negative_slope=slope, dtype=dtype)
    raise ValueError(f"unknown nonlinearity {nonlinearity!r} for initialisation; choose one of "
                     f"{', '.join(GLOROT_ACTIVATIONS + HE_ACTIVATIONS)}")


# --- layers -----------------------------------------------------------------------------------

class Linear(Module):
    """y = x @ weight.T + bias, with ``weight`` of shape (out_features, in_features) (PyTorch's layout).

    ``nonlinearity`` names the activation that follows the layer and picks the initialisation:
    Glorot/Xavier uniform for 'linear' (the default), 'sigmoid', 'tanh' and 'softmax';
    He/Kaiming normal for 'relu', 'leaky_relu', 'elu', 'gelu' and 'softplus'. The bias starts
    at 0. ``rng`` (a ``numpy.random.Generator`` or a seed) makes the draw reproducible.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 nonlinearity: str | None = "linear", rng: RNG = None, dtype: Any = np.float64):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {n!r}")
        dtype = _float_dtype(dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.nonlinearity = "linear" if nonlinearity is None else nonlinearity
        self.weight = Parameter(init_weight((self.out_features, self.in_features), self.nonlinearity,
                                            rng, dtype))
        if bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "nonlinearity": self.nonlinearity,
                "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Zero each input with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    Inverted dropout, as ``torch.nn.Dropout``: evaluation mode is the identity. The mask is a
    constant of the graph, so the gradient flows through the kept units times 1/(1-p).
    """

    def __init__(self, p: float = 0.5, rng: RNG = None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout probability p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = _generator(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, rng=self.rng)

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied in order; indexable, iterable, and named "0", "1", ... in state dicts."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, got {type(m).__name__} at position {i}")
            self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*mods[index])
        return mods[index]

    def get_config(self) -> dict[str, Any]:
        return {}


class MLP(Sequential):
    """A multilayer perceptron: ``sizes = [in, hidden..., out]`` with ``activation`` between layers.

    Each ``Linear`` is initialised for the activation that follows it (Glorot/Xavier or
    He/Kaiming, see ``Linear``); ``output_activation`` (None: raw scores/logits) follows the
    last one. ``dropout > 0`` adds ``Dropout`` after each hidden activation.
    """

    def __init__(self, sizes: Iterable[int], activation: str = "relu", output_activation: str | None = None,
                 *, bias: bool = True, dropout: float = 0.0, rng: RNG = None, dtype: Any = np.float64):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least [in_features, out_features], got sizes={sizes}")
        for name in (activation, output_activation):
            if name is not None and name not in ACTIVATIONS and name not in ("linear", "identity"):
                raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
        gen = _generator(rng)
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            last = i == len(sizes) - 2
            act = output_activation if last else activation
            layers.append(Linear(n_in, n_out, bias, nonlinearity=act, rng=gen, dtype=dtype))
            if act is not None:
                layers.append(activation_module(act))
            if not last and dropout > 0:
                layers.append(Dropout(dropout, rng=gen))
        super().__init__(*layers)
        self.sizes, self.activation, self.output_activation = sizes, activation, output_activation
        self.bias, self.dropout, self.dtype = bias, float(dropout), np.dtype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"sizes": self.sizes, "activation": self.activation,
                "output_activation": self.output_activation, "bias": self.bias,
                "dropout": self.dropout, "dtype": str(self.dtype)}


# --- activations: thin modules over chainrule.functional ---------------------------------------

class _Activation(Module):
    """An activation as a module; ``fn_name`` is its name in ``chainrule.functional``."""

    fn_name: str = ""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x: Tensor) -> Tensor:
        return getattr(F, self.fn_name)(x, **self.kwargs)

    def get_config(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class Identity(Module):
    def forward(self, x: Any) -> Any:
        return x

    def get_config(self) -> dict[str, Any]:
        return {}


class Sigmoid(_Activation):
    fn_name = "sigmoid"

    def __init__(self) -> None:
        super().__init__()


class Tanh(_Activation):
    fn_name = "tanh"

    def __init__(self) -> None:
        super().__init__()


class ReLU(_Activation):
    fn_name = "relu"

    def __init__(self) -> None:
        super().__init__()


class LeakyReLU(_Activation):
    fn_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__(negative_slope=negative_slope)


class ELU(_Activation):
    fn_name = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha=alpha)


class GELU(_Activation):
    fn_name = "gelu"

    def __init__(self, approximate: str = "none"):
        super().__init__(approximate=approximate)


class Softplus(_Activation):
    fn_name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(beta=beta, threshold=threshold)


class Softmax(_Activation):
    fn_name = "softmax"

    def __init__(self, axis: int = -1):
        super().__init__(axis=axis)


class LogSoftmax(_Activation):
    fn_name = "log_softmax"

    def __init__(self, axis: int = -1):
        super().__init__(axis=axis)


# PyTorch's other activations (issue 12), each its chainrule.functional form


class LogSigmoid(_Activation):
    fn_name = "logsigmoid"

    def __init__(self) -> None:
        super().__init__()


class SiLU(_Activation):
    fn_name = "silu"

    def __init__(self) -> None:
        super().__init__()


class SELU(_Activation):
    fn_name = "selu"

    def __init__(self) -> None:
        super().__init__()


class CELU(_Activation):
    fn_name = "celu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha=alpha)


class Mish(_Activation):
    fn_name = "mish"

    def __init__(self) -> None:
        super().__init__()


class Hardswish(_Activation):
    fn_name = "hardswish"

    def __init__(self) -> None:
        super().__init__()


class Hardsigmoid(_Activation):
    fn_name = "hardsigmoid"

    def __init__(self) -> None:
        super().__init__()


class Hardtanh(_Activation):
    fn_name = "hardtanh"

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__(min_val=min_val, max_val=max_val)


class ReLU6(_Activation):
    fn_name = "relu6"

    def __init__(self) -> None:
        super().__init__()


class Softsign(_Activation):
    fn_name = "softsign"

    def __init__(self) -> None:
        super().__init__()


class Softmin(_Activation):
    fn_name = "softmin"

    def __init__(self, axis: int = -1):
        super().__init__(axis=axis)


# functional name -> module class
ACTIVATIONS: dict[str, type[Module]] = {
    cls.fn_name: cls for cls in (Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softplus, Softmax, LogSoftmax,
                                 LogSigmoid, SiLU, SELU, CELU, Mish, Hardswish, Hardsigmoid, Hardtanh,
                                 ReLU6, Softsign, Softmin)
}


def activation_module(name: str, **kwargs: Any) -> Module:
    """The module for activation ``name`` (a ``chainrule.functional`` name), e.g. 'relu' -> ReLU()."""
    if name in ("linear", "identity"):
        return Identity()
    try:
        cls = ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None
    return cls(**kwargs)


# --- losses: thin modules over chainrule.functional ---------------------------------------------

class _Loss(Module):
    """A loss as a module: ``loss(input, target)`` calls the functional form with its settings."""

    fn_name: str = ""

    def __init__(self, reduction: str = "mean", **kwargs: Any):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self.kwargs = kwargs

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002 (PyTorch's name)
        return getattr(F, self.fn_name)(input, target, reduction=self.reduction, **self.kwargs)

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction, **self.kwargs}

    def extra_repr(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.reduction != type(self)().reduction:
            parts.insert(0, f"reduction={self.reduction!r}")
        return ", ".join(parts)


def _set(**kwargs: Any) -> dict[str, Any]:
    """The settings given, without those left at None (the functional form's default)."""
    return {k: v for k, v in kwargs.items() if v is not None}


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits; targets as class indices or probability rows.

    ``weight`` (one per class), ``ignore_index`` and ``label_smoothing`` as PyTorch's.
    """

    fn_name = "cross_entropy"

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0, *, weight: Any = None,
                 ignore_index: int = -100):
        super().__init__(reduction, label_smoothing=label_smoothing,
                         **_set(weight=weight, ignore_index=None if ignore_index == -100 else ignore_index))


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in (0, 1)."""

    fn_name = "binary_cross_entropy"


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (the stable form); ``weight`` and ``pos_weight`` as PyTorch's."""

    fn_name = "binary_cross_entropy_with_logits"

    def __init__(self, reduction: str = "mean", *, weight: Any = None, pos_weight: Any = None):
        super().__init__(reduction, **_set(weight=weight, pos_weight=pos_weight))


class HingeLoss(_Loss):
    """Binary SVM hinge loss max(0, 1 - y s), labels in {-1, +1}."""

    fn_name = "hinge_loss"


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss (``torch.nn.MultiMarginLoss``)."""

    fn_name = "multi_margin_loss"

    def __init__(self, reduction: str = "mean", margin: float = 1.0, *, p: int = 1, weight: Any = None):
        super().__init__(reduction, margin=margin, **_set(p=None if p == 1 else p, weight=weight))


class L1Loss(_Loss):
    fn_name = "l1_loss"


class HuberLoss(_Loss):
    """0.5 r^2 where |r| <= delta, else delta (|r| - delta/2)."""

    fn_name = "huber_loss"

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction, delta=delta)


class L2Loss(_Loss):
    """0.5 r^2 summed (the reference solution's L2 loss): like ``F.l2_loss``, reduction 'sum'."""

    fn_name = "l2_loss"

    def __init__(self, reduction: str = "sum"):
        super().__init__(reduction)


class MSELoss(_Loss):
    """r^2 averaged (PyTorch's MSELoss)."""

    fn_name = "mse_loss"


class CosineEmbeddingLoss(_Loss):
    """``loss(a, b, y)``: 1 - cos(a, b) for y = 1, max(0, cos(a, b) - margin) for y = -1."""

    fn_name = "cosine_embedding_loss"

    def __init__(self, reduction: str = "mean", margin: float = 0.0):
        super().__init__(reduction, margin=margin)

    def forward(self, a: Any, b: Any, target: Any) -> Tensor:  # type: ignore[override]
        return F.cosine_embedding_loss(a, b, target, reduction=self.reduction, **self.kwargs)


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices under log-probabilities (PyTorch's NLLLoss);
    ``weight`` (one per class) and ``ignore_index`` as PyTorch's."""

    fn_name = "nll_loss"

    def __init__(self, reduction: str = "mean", *, weight: Any = None, ignore_index: int = -100):
        super().__init__(reduction, **_set(weight=weight,
                                           ignore_index=None if ignore_index == -100 else ignore_index))


class SmoothL1Loss(_Loss):
    """(r^2 / (2 beta) where |r| < beta, else |r| - beta/2 (PyTorch's SmoothL1Loss)."""

    fn_name = "smooth_l1_loss"

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction, beta=beta)


class KLDivLoss(_Loss):
    """``loss(input, target)``: KL divergence of log-probabilities ``input`` from ``target``
    (PyTorch's KLDivLoss); ``reduction`` may also be 'batchmean'."""

    fn_name = "kl_div"

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        if reduction not in F.KL_REDUCTIONS:
            raise ValueError(f"reduction must be 'mean', 'batchmean', 'sum' or 'none', got "
                             f"{reduction!r}")
        super().__init__("mean", log_target=log_target)
        self.reduction = reduction


# functional name -> module class
LOSSES: dict[str, type[_Loss]] = {
    cls.fn_name: cls for cls in (CrossEntropyLoss, BCELoss, BCEWithLogitsLoss, HingeLoss, MultiMarginLoss,
                                 L1Loss, HuberLoss, L2Loss, MSELoss, CosineEmbeddingLoss, NLLLoss,
                                 SmoothL1Loss, KLDivLoss)
}


def loss_module(name: str, **kwargs: Any) -> _Loss:
    """The module for loss ``name`` (a ``chainrule.functional`` name), e.g. 'huber_loss' or 'huber'."""
    key = name if name in LOSSES else f"{name}_loss"
    try:
        cls = LOSSES[key]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
    return cls(**kwargs)


# --- convolution, pooling, normalisation, embedding, reshaping: thin modules over functional ---
#
# Parameter and buffer names, shapes and initialisation are PyTorch's, so state dicts map one to
# one onto torch's (``0.weight``, ``1.running_mean``, ``1.num_batches_tracked``, ...).

def _size(cls: str, name: str, value: Any, d: int) -> tuple[int, ...]:
    """A positive int or ``d`` of them (PyTorch's ``_pair``) as a tuple; ValueError otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * d
    if (not isinstance(value, (tuple, list)) or len(value) != d
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                       for v in value)):
        raise ValueError(f"{cls}: {name} must be a positive int or {d} of them, got {value!r}")
    return tuple(int(v) for v in value)


def _count(cls: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _ConvNd(Module):
    """``d``-dimensional convolution over ``F.conv{d}d`` (see ``Conv2d``)."""

    _d = 2
    PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str = 0,
                 dilation: int | tuple[int, ...] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, rng: RNG = None, dtype: Any = np.float64):
        super().__init__()
        cls, d = type(self).__name__, self._d
        self.in_channels = _count(cls, "in_channels", in_channels)
        self.out_channels = _count(cls, "out_channels", out_channels)
        self.groups = _count(cls, "groups", groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.kernel_size = _size(cls, "kernel_size", kernel_size, d)
        self.stride = _size(cls, "stride", stride, d)
        self.dilation = _size(cls, "dilation", dilation, d)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}: padding must be 'same', 'valid' or ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{cls}: padding='same' needs stride 1 (as in PyTorch), got "
                                 f"stride={stride!r}")
            self.padding: tuple[int, ...] | str = padding
        else:
            if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
                padding = (int(padding),) * d
            if (not isinstance(padding, (tuple, list)) or len(padding) != d
                    or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in padding)):
                raise ValueError(f"{cls}: padding must be a non-negative int or {d} of them, "
                                 f"'same' or 'valid', got {padding!r}")
            self.padding = tuple(int(v) for v in padding)
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {', '.join(self.PADDING_MODES)}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        dtype = _float_dtype(dtype)
        gen = _generator(rng)
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        # PyTorch's reset_parameters: kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        # and the bias is drawn from the same range.
        bound = 1 / math.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(gen.uniform(-bound, bound, size=shape).astype(dtype))
        if bias:
            self.bias = Parameter(gen.uniform(-bound, bound, size=self.out_channels).astype(dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        conv = getattr(F, f"conv{self._d}d")
        if self.padding_mode == "zeros":
            return conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        # Other modes pad first (F.pad, the last axis first), then convolve without padding.
        from chainrule.functional.conv import conv_padding
        pairs = conv_padding(type(self).__name__, self.padding, self.kernel_size, self.stride,
                             self.dilation)
        amounts = tuple(v for pair in reversed(pairs) for v in pair)
        x = F.pad(x, amounts, mode=self.padding_mode)
        return conv(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def get_config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": _listed(self.padding), "dilation": list(self.dilation),
                "groups": self.groups, "bias": self.bias is not None,
                "padding_mode": self.padding_mode, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,) * self._d:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._d:
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        return text


class Conv1d(_ConvNd):
    """1-D convolution layer (``torch.nn.Conv1d``): input (N, C_in, L) -> (N, C_out, L_out).

    ``weight`` (out_channels, in_channels/groups, kL) and ``bias`` (out_channels,) start
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels/groups * kL, as PyTorch's
    ``kaiming_uniform_(a=sqrt(5))``; ``rng`` (a Generator or a seed) makes the draw reproducible.
    Options as ``Conv2d``.
    """

    _d = 1


class Conv2d(_ConvNd):
    """2-D convolution layer (``torch.nn.Conv2d``): input (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    Computes ``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``. ``weight`` has
    shape (out_channels, in_channels/groups, kH, kW) and ``bias`` (out_channels,), both drawn
    from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels/groups * kH * kW, as
    PyTorch's ``kaiming_uniform_(a=sqrt(5))`` initialisation; ``rng`` (a Generator or a seed)
    makes the draw reproducible. ``padding``: ints, 'valid' or 'same'; ``padding_mode``:
    'zeros' (default), 'reflect', 'replicate' or 'circular' (``F.pad`` then convolve).
    """

    _d = 2


class _MaxPoolNd(Module):
    _d = 2

    def __init__(self, kernel_size: int | tuple[int, ...], stride: int | tuple[int, ...] | None = None,
                 padding: int | tuple[int, ...] = 0, dilation: int | tuple[int, ...] = 1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, bool(return_indices), bool(ceil_mode)

    def forward(self, x: Any) -> Any:
        return getattr(F, f"max_pool{self._d}d")(x, self.kernel_size, self.stride, self.padding,
                                                 self.dilation, self.ceil_mode, self.return_indices)

    def get_config(self) -> dict[str, Any]:
        return {"kernel_size": _listed(self.kernel_size), "stride": _listed(self.stride),
                "padding": _listed(self.padding), "dilation": _listed(self.dilation),
                "return_indices": self.return_indices, "ceil_mode": self.ceil_mode}

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling (``torch.nn.MaxPool1d``) over ``F.max_pool1d``; stride defaults to the kernel."""

    _d = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling (``torch.nn.MaxPool2d``) over ``F.max_pool2d``; stride defaults to the kernel.

    input (N, C, H, W) -> (N, C, H_out, W_out); the gradient goes to each window's first maximum.
    """

    _d = 2


class _AvgPoolNd(Module):
    _d = 2

    def __init__(self, kernel_size: int | tuple[int, ...], stride: int | tuple[int, ...] | None = None,
                 padding: int | tuple[int, ...] = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        if self._d == 1:
            return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                self.count_include_pad)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def get_config(self) -> dict[str, Any]:
        config = {"kernel_size": _listed(self.kernel_size), "stride": _listed(self.stride),
                  "padding": _listed(self.padding), "ceil_mode": self.ceil_mode,
                  "count_include_pad": self.count_include_pad}
        if self._d == 2:
            config["divisor_override"] = self.divisor_override
        return config

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, "
                f"padding={self.padding}")


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling (``torch.nn.AvgPool1d``) over ``F.avg_pool1d``."""

    _d = 1

    def __init__(self, kernel_size: int | tuple[int], stride: int | tuple[int] | None = None,
                 padding: int | tuple[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling (``torch.nn.AvgPool2d``) over ``F.avg_pool2d``."""

    _d = 2


class _BatchNorm(Module):
    """Batch normalisation with running statistics (see ``BatchNorm2d``)."""

    _dims: tuple[int, ...] = (4,)
    _layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, dtype: Any = np.float64):
        super().__init__()
        cls = type(self).__name__
        self.num_features = _count(cls, "num_features", num_features)
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"{cls}: eps must be a number > 0, got {eps!r}")
        if momentum is not None and not (isinstance(momentum, (int, float)) and 0 <= momentum <= 1):
            raise ValueError(f"{cls}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = _float_dtype(dtype)
        self._dtype = dtype
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Any) -> Tensor:
        shape = tuple(np.shape(x.data if isinstance(x, Tensor) else x))
        if len(shape) not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected {' or '.join(f'{d}-D' for d in self._dims)} "
                             f"input {self._layout}, got shape {shape}")
        # PyTorch's rules: in training with tracked statistics, update them (momentum None:
        # a cumulative average, 1/num_batches_tracked); in eval mode use them; without them,
        # always normalise by the batch.
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            if self.momentum is None:
                factor = 1.0 / (int(self.num_batches_tracked.data) + 1)
        use_batch = self.training or not self.track_running_stats
        y = F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                         self.running_var if not self.training or self.track_running_stats else None,
                         self.weight, self.bias, use_batch, factor, self.eps)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
        return y

    def get_config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "dtype": str(self._dtype)}

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs (``torch.nn.BatchNorm1d``).

    See ``BatchNorm2d``; statistics are per channel C, over N (and L).
    """

    _dims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs per channel (``torch.nn.BatchNorm2d``).

    Training mode normalises by the batch's mean and biased variance over (N, H, W) and updates
    the buffers ``running_mean`` (zeros at first), ``running_var`` (ones) and
    ``num_batches_tracked`` as PyTorch does (``momentum`` 0.1; None: cumulative average; the
    running variance is unbiased); evaluation mode (``eval()``) normalises by the running
    statistics. ``weight`` starts at ones and ``bias`` at zeros (``affine=False``: neither).
    ``track_running_stats=False``: always the batch statistics, no buffers.
    """

    _dims = (4,)
    _layout = "(N, C, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the last axes (``torch.nn.LayerNorm``) over ``F.layer_norm``.

    ``weight`` (ones) and ``bias`` (zeros) have ``normalized_shape``; ``elementwise_affine=False``
    drops both, ``bias=False`` the bias.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *, dtype: Any = np.float64):
        super().__init__()
        shape = ((normalized_shape,) if isinstance(normalized_shape, (int, np.integer))
                 else tuple(normalized_shape))
        self.normalized_shape = _size("LayerNorm", "normalized_shape", shape, len(shape)) if shape else ()
        if not self.normalized_shape:
            raise ValueError(f"LayerNorm: normalized_shape must not be empty, got {normalized_shape!r}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dtype = _float_dtype(dtype)
        self._dtype = dtype
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def get_config(self) -> dict[str, Any]:
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.bias is not None,
                "dtype": str(self._dtype)}

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim`` (``torch.nn.Embedding``).

    ``weight`` (num_embeddings, embedding_dim) starts N(0, 1), as PyTorch's, with the row
    ``padding_idx`` (if given) set to zeros; that row gets no gradient. ``rng`` seeds the draw.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 rng: RNG = None, dtype: Any = np.float64):
        super().__init__()
        self.num_embeddings = _count("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _count("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx!r}")
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        weight = _generator(rng).standard_normal((self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.weight = Parameter(weight.astype(_float_dtype(dtype)))

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def get_config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "padding_idx": self.padding_idx, "dtype": str(self.weight.dtype)}

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


def _axis(cls: str, name: str, value: Any, ndim: int, shape: tuple[int, ...]) -> int:
    if not -ndim <= value < ndim:
        raise ValueError(f"{cls}: {name}={value} is out of range for an input of shape {shape}")
    return value % ndim


class Flatten(Module):
    """Merge axes ``start_dim``..``end_dim`` into one (``torch.nn.Flatten``): (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))
        shape = x.shape
        if not shape:
            return x.reshape((1,))
        start = _axis("Flatten", "start_dim", self.start_dim, len(shape), shape)
        end = _axis("Flatten", "end_dim", self.end_dim, len(shape), shape)
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for an input of shape {shape}")
        return x.reshape((*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]))

    def get_config(self) -> dict[str, Any]:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size`` (``torch.nn.Unflatten``): (N, 64) -> (N, 1, 8, 8)."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...] | list[int]):
        super().__init__()
        self.dim = int(dim)
        self.unflattened_size = tuple(int(n) for n in unflattened_size)

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))
        shape = x.shape
        dim = _axis("Unflatten", "dim", self.dim, len(shape), shape) if shape else 0
        size = self.unflattened_size
        known = math.prod(n for n in size if n != -1)
        if not shape or (size.count(-1) == 0 and known != shape[dim]) or size.count(-1) > 1 \
                or (size.count(-1) == 1 and (known == 0 or shape[dim] % known)):
            raise ValueError(f"Unflatten: cannot split axis {self.dim} of input shape {shape} into "
                             f"{size}")
        return x.reshape((*shape[:dim], *size, *shape[dim + 1:]))

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class CNN(Sequential):
    """A small convolutional classifier for images given as flat rows (as ``chainrule train`` has them).

    ``Unflatten`` to ``input_shape`` (C, H, W), then per entry of ``channels``: ``Conv2d`` (kernel
    ``kernel_size``, 'same' padding), ``BatchNorm2d`` (if ``batch_norm``), the ``activation`` and
    ``MaxPool2d(2)`` (while the image is at least 2 x 2); then ``Flatten``, ``Dropout`` (if
    ``dropout`` > 0) and a ``Linear`` to ``n_outputs`` (initialised for ``output_activation``,
    which follows it when given). ``rng`` seeds every initial weight. Input (N, C*H*W), output
    (N, n_outputs). E.g. ``CNN((1, 8, 8), (16, 32), 10)`` for the 8 x 8 digits.
    """

    def __init__(self, input_shape: Iterable[int], channels: Iterable[int] = (16, 32), n_outputs: int = 10,
                 activation: str = "relu", output_activation: str | None = None, *, kernel_size: int = 3,
                 batch_norm: bool = True, dropout: float = 0.0, rng: RNG = None, dtype: Any = np.float64):
        shape = tuple(int(n) for n in input_shape)
        channels = [int(c) for c in channels]
        if len(shape) != 3 or min(shape) <= 0:
            raise ValueError(f"CNN: input_shape must be (channels, height, width), got {tuple(input_shape)}")
        if not channels or min(channels) <= 0:
            raise ValueError(f"CNN: channels must be positive integers, one per convolution, got {channels}")
        for name in (activation, output_activation):
            if name is not None and name not in ACTIVATIONS and name not in ("linear", "identity"):
                raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
        gen = _generator(rng)
        c, h, w = shape
        layers: list[Module] = [Unflatten(1, shape)]
        for out in channels:
            layers.append(Conv2d(c, out, kernel_size, padding="same", bias=not batch_norm, rng=gen,
                                 dtype=dtype))
            if batch_norm:
                layers.append(BatchNorm2d(out, dtype=dtype))
            layers.append(activation_module(activation))
            if min(h, w) >= 2:
                layers.append(MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        layers.append(Flatten())
        if dropout > 0:
            layers.append(Dropout(dropout, rng=gen))
        layers.append(Linear(c * h * w, n_outputs, nonlinearity=output_activation, rng=gen, dtype=dtype))
        if output_activation is not None:
            layers.append(activation_module(output_activation))
        super().__init__(*layers)
        self.input_shape, self.channels, self.n_outputs = list(shape), channels, int(n_outputs)
        self.activation, self.output_activation = activation, output_activation
        self.kernel_size, self.batch_norm, self.dropout = int(kernel_size), bool(batch_norm), float(dropout)
        self.dtype = np.dtype(dtype)

    def describe(self) -> str:
        """One line: ``1x8x8 -> conv 16 -> pool -> conv 32 -> pool -> 10``."""
        parts = ["x".join(map(str, self.input_shape))]
        for m in self:
            if isinstance(m, Conv2d):
                parts.append(f"conv{m.kernel_size[0]}x{m.kernel_size[1]} {m.out_channels}")
            elif isinstance(m, MaxPool2d):
                parts.append("maxpool")
            elif isinstance(m, Linear):
                parts.append(str(m.out_features))
        return " -> ".join(parts)

    def get_config(self) -> dict[str, Any]:
        return {"input_shape": self.input_shape, "channels": self.channels, "n_outputs": self.n_outputs,
                "activation": self.activation, "output_activation": self.output_activation,
                "kernel_size": self.kernel_size, "batch_norm": self.batch_norm, "dropout": self.dropout,
                "dtype": str(self.dtype)}


LAYERS: tuple[type[Module], ...] = (CNN, Conv1d, Conv2d, MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d,
                                    BatchNorm1d, BatchNorm2d, LayerNorm, Embedding, Flatten, Unflatten)


# every built-in module by class name: how a model file names its layers
MODULES: dict[str, type[Module]] = {
    cls.__name__: cls for cls in (Linear, Dropout, Sequential, MLP, Identity, *ACTIVATIONS.values(),
                                  *LAYERS)
}
