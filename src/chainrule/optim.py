"""Optimizers and learning-rate schedules with PyTorch's update rules, defaults and state layout.

Each optimizer updates its parameters in place on ``.data`` (no graph is recorded), reading
``.grad``; a parameter whose ``.grad`` is None is skipped, as in PyTorch. The arithmetic keeps
each parameter's dtype (float32 stays float32). Parameters come as an iterable of tensors or,
as in PyTorch, a list of parameter groups (dicts with ``params`` and per-group settings).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.autodiff import bump
from chainrule.tensor import Tensor


def _check_nonnegative(name: str, value: float) -> None:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _check_lr(lr: Any) -> None:
    numeric = isinstance(lr, (int, float, np.floating)) and not isinstance(lr, bool)
    if not numeric or not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"learning rate lr must be a finite number > 0, got {lr!r}")


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and (de)serialisation."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: dict[int, dict[str, Any]] = {}  # keyed by id(parameter)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of tensors (e.g. model.parameters()), "
                            "got a single Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer parameters must be Tensors, got {type(p).__name__}")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError("optimizer parameters must be leaf tensors with requires_grad=True")
            if id(p) in seen:
                raise ValueError("a parameter appears in more than one parameter group")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        _check_lr(group["lr"])
        group.setdefault("initial_lr", group["lr"])
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        pass

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad`` (to None by default, as PyTorch 2 does)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = np.zeros_like(p.data)

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, np.asarray(p.grad, dtype=p.data.dtype),
                                 self.state.setdefault(id(p), {}), group)
                    bump(p)  # changed in place: a graph that saved p refuses its backward

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [...]}`` with parameters numbered in order."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            numbered = {k: v for k, v in group.items() if k != "params"}
            numbered["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(numbered)
        state = {index[pid]: copy.deepcopy(s) for pid, s in self.state.items() if pid in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in groups]
        if sizes != [len(own["params"]) for own in self.param_groups]:
            raise ValueError("loaded state dict has a different number of parameter groups or "
                             "parameters than this optimizer")
        by_index = {i: p for g, own in zip(groups, self.param_groups, strict=True)
                    for i, p in zip(g["params"], own["params"], strict=True)}
        for g, own in zip(groups, self.param_groups, strict=True):
            own.update({k: v for k, v in g.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = by_index[int(i)]
            s = copy.deepcopy(s)
            for key, value in s.items():
                if isinstance(value, np.ndarray):
                    s[key] = value.astype(p.data.dtype, copy=False)
            self.state[id(p)] = s

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    g = grad + weight_decay * p;  with momentum: b = g on the first step, then
    b = momentum * b + (1 - dampening) * g, and g = g + momentum * b (Nesterov) or g = b;
    finally p = p - lr * g.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _check_group(self, group: dict[str, Any]) -> None:
        for key in ("momentum", "dampening", "weight_decay"):
            _check_nonnegative(key, group[key])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        # ``grad`` may be the parameter's own .grad: read it, never write into it.
        momentum, wd = group["momentum"], group["weight_decay"]
        if wd:
            grad = grad + wd * p.data
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                if group["dampening"]:
                    buf += (1 - group["dampening"]) * grad
                else:
                    buf += grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        np.subtract(p.data, group["lr"] * grad, out=p.data)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

    g = grad + weight_decay * p (L2 penalty, coupled);  m = b1 m + (1-b1) g;
    v = b2 v + (1-b2) g^2;  p = p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    ``amsgrad`` uses the running maximum of v.
    """

    decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _check_group(self, group: dict[str, Any]) -> None:
        b1, b2 = group["betas"]
        for name, beta in (("betas[0]", b1), ("betas[1]", b2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta!r}")
        _check_nonnegative("eps", group["eps"])
        _check_nonnegative("weight_decay", group["weight_decay"])

    def _update(self, p: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        b1, b2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        if wd:
            if self.decoupled:
                p.data *= 1 - lr * wd  # AdamW: decay the weights, not the gradient
            else:
                grad = grad + wd * p.data
        state["step"] += 1
        t = state["step"]
        # Every update in place, through one scratch array (a parameter's step used to allocate
        # eight temporaries): same operations in the same order, so the same rounding.
        m, v = state["exp_avg"], state["exp_avg_sq"]
        scratch = np.multiply(grad, 1 - b1)
        m *= b1
        m += scratch
        np.multiply(grad, 1 - b2, out=scratch)
        scratch *= grad
        v *= b2
        v += scratch
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - b1 ** t
        bias_correction2 = 1 - b2 ** t
        denom = np.sqrt(v, out=scratch)
        denom /= math.sqrt(bias_correction2)
        denom += eps
        step = np.divide(m, denom, out=scratch)
        step *= lr / bias_correction1
        np.subtract(p.data, step, out=p.data)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    p = p - lr * weight_decay * p, then the Adam step on the raw gradient. Default
    weight_decay is 0.01, PyTorch's.
    """

    decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get_optimizer(name: str) -> type[Optimizer]:
    """The optimizer class called ``name`` (case-insensitive): sgd, adam or adamw."""
    try:
        return OPTIMIZERS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}") from None


# --- learning-rate schedules -------------------------------------------------------------------

class LRScheduler:
    """Sets each group's ``lr`` from its ``initial_lr`` and the epoch count; ``step()`` once per epoch."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"a scheduler needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base, self.last_epoch)

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._apply()


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size), as ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        _check_nonnegative("gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2 (SGDR without restarts).

    The closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` (PyTorch computes it
    recursively; the two agree to rounding).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 (PyTorch's name)
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        _check_nonnegative("eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


SCHEDULERS: dict[str, type[LRScheduler]] = {"step": StepLR, "cosine": CosineAnnealingLR}
