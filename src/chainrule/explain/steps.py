"""Several gradient-descent steps on a network file, and the network they leave behind.

``run_steps`` trains the file's network for N steps with ``chainrule.optim.SGD`` (PyTorch's
``torch.optim.SGD`` semantics, momentum included: the first step's buffer is the gradient
itself), through the same ``NetworkSpec.build`` graph that ``explain`` reads, so every loss and
parameter shown is the engine's. Constant (``fixed``) parameters are not updated.
``network_toml`` writes the network after the last step as a network file that
``chainrule explain`` accepts, so a student can carry on with the next epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chainrule.explain.layered import Notation
from chainrule.explain.model import Training, TrainingStep
from chainrule.explain.network import NO_LOSS, NetworkSpec
from chainrule.tensor import Tensor


@dataclass
class Step:
    """One step: the loss at the parameters it starts from, and the parameters after it."""

    index: int  # 1-based
    loss: float
    weights: list[np.ndarray]
    biases: list[np.ndarray | None]


@dataclass
class Steps:
    """N steps of SGD on a network file; ``spec`` is the network after the last one."""

    spec: NetworkSpec
    steps: list[Step]
    final_loss: float  # at the parameters after the last step
    lr: float
    momentum: float

    def training(self, notation: str = "reference", all_steps: bool = False) -> Training:
        """The steps as an explanation shows them (``Explanation.training``): each step's loss
        and its trainable parameters after it, named in ``notation``; the weight matrices laid
        out as the explanation lays them out (the file's way round; ``matrix``: out-in).
        ``all_steps``: show every step, however many (else many are shortened, see Training)."""
        nt = Notation(notation, False, self.spec.sizes[-1])
        fixed = self.spec.fixed or [()] * self.spec.n_layers
        out = []
        for step in self.steps:
            params: list[tuple[str, str, float]] = []
            for li, (w, b) in enumerate(zip(step.weights, step.biases, strict=True), start=1):
                if "weights" not in fixed[li - 1]:
                    rows, cols = w.shape
                    params += [(*nt.w(li, j, i), float(w[j, i])) for j in range(rows) for i in range(cols)]
                if b is not None and "bias" not in fixed[li - 1]:
                    if b.ndim == 0:
                        params.append((*nt.b(li), float(b)))
                    else:
                        params += [(*nt.b(li, j), float(b[j])) for j in range(b.shape[0])]
            out.append(TrainingStep(step.index, step.loss, params, step.weights, step.biases))
        layouts = self.spec.display_layouts() if notation == "reference" else ["out-in"] * self.spec.n_layers
        return Training(self.lr, self.momentum, out, self.final_loss, layouts, all_steps)

    def to_text(self, digits: int = 4) -> str:
        """Each step's loss and updated parameters, named as the explanation names them."""
        from chainrule.explain.render_text import training_lines

        return "\n".join(training_lines(self.training(), digits)) + "\n"


def run_steps(spec: NetworkSpec, steps: int, lr: float, momentum: float = 0.0) -> Steps:
    """Train ``spec``'s network for ``steps`` steps of SGD at ``lr`` (and ``momentum``).

    Raises:
        ValueError: steps not a positive integer, lr not a finite number > 0, momentum not a
            finite number >= 0, or a file without a loss (nothing to descend).
    """
    from chainrule.optim import SGD

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, (int, float))
        or not math.isfinite(momentum)
        or momentum < 0
    ):
        raise ValueError(f"momentum must be a finite number >= 0, got {momentum!r}")
    if spec.loss == NO_LOSS:
        raise ValueError(f'{spec.source}: [loss] name = "none": there is no loss to take steps on')
    fixed = spec.fixed or [()] * spec.n_layers
    weights: list[Any] = []
    biases: list[Any] = []
    params = []
    for li in range(spec.n_layers):
        w = Tensor(spec.weights[li].copy(), requires_grad="weights" not in fixed[li])
        weights.append(w)
        if w.requires_grad:
            params.append(w)
        b = spec.biases[li]
        if b is None:
            biases.append(None)
        else:
            bt = Tensor(np.array(b, dtype=np.float64), requires_grad="bias" not in fixed[li])
            biases.append(bt)
            if bt.requires_grad:
                params.append(bt)
    optimizer = SGD(params, lr=float(lr), momentum=float(momentum))
    record = []
    for k in range(1, int(steps) + 1):
        optimizer.zero_grad()
        loss = spec.build(weights, biases)
        loss.backward()
        optimizer.step()
        record.append(
            Step(
                k,
                float(loss.data),
                [w.data.copy() for w in weights],
                [None if b is None else b.data.copy() for b in biases],
            )
        )
    after = replace(
        spec,
        weights=[w.data.copy() for w in weights],
        biases=[None if b is None else b.data.copy() for b in biases],
        tensors={},
    )
    final_loss = float(after.build().data)
    return Steps(after, record, final_loss, float(lr), float(momentum))


# --- writing a network file ------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _toml_value(value: Any) -> str:
    """A TOML literal; floats as repr (the shortest string that reads back to the same double)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, np.ndarray):
        return _toml_value(value.tolist())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a network file")


def network_toml(spec: NetworkSpec, note: str = "") -> str:
    """The network as a network file (TOML) that ``load_network`` reads back to the same spec.

    Weights are written in the layout the file gave (in-out stays in-out; out-in and bias-first
    become PyTorch's (out, in) rows with a separate bias), every number exactly (``repr``)."""
    lines = []
    if note:
        lines += [f"# {line}" for line in note.splitlines()] + [""]
    if spec.title:
        lines.append(f"title = {_toml_string(spec.title)}")
    if spec.description:
        lines.append(f"description = {_toml_string(spec.description)}")
    lines.append(f"sizes = {_toml_value(list(spec.sizes))}")
    lines.append(f"activation = {_toml_value([a or 'none' for a in spec.activations])}")
    if spec.delta:
        lines.append(f"delta = {_toml_string(spec.delta)}")
    lines += ["", "[loss]", f"name = {_toml_string(spec.loss)}"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in spec.loss_params.items()]
    lines += ["", "[data]", f"input = {_toml_value(spec.input)}"]
    if spec.loss != NO_LOSS:
        lines.append(f"target = {_toml_value(spec.target)}")
    if spec.input_requires_grad:
        lines.append("requires_grad = true")
    fixed = spec.fixed or [()] * spec.n_layers
    layouts = spec.display_layouts()
    for li in range(spec.n_layers):
        b = spec.biases[li]
        if layouts[li] == "in-out":  # as the file wrote it (a bias-first file's rows are out-in)
            lines += ["", "[[layers]]", 'layout = "in-out"', f"weights = {_toml_value(spec.weights[li].T)}"]
        else:
            lines += ["", "[[layers]]", f"weights = {_toml_value(spec.weights[li])}"]
        lines.append("bias = false" if b is None else f"bias = {_toml_value(np.asarray(b))}")
        if fixed[li]:
            lines.append(f"fixed = {_toml_value(list(fixed[li]))}")
    if spec.aliases:
        lines += ["", "[aliases]"]
        lines += [f"{_toml_string(k)} = {_toml_string(v)}" for k, v in spec.aliases.items()]
    return "\n".join(lines) + "\n"
