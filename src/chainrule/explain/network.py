"""The network file: a small MLP, its data and its loss, in TOML.

    title = "3-2-1 sigmoid network, L2 loss"
    sizes = [3, 2, 1]             # inputs, then the units of each layer
    activation = "sigmoid"        # every layer's; a [[layers]] entry may override it
    seed = 0                      # draws any weights/biases the file leaves out

    [loss]
    name = "l2_loss"              # any loss of chainrule.functional; other keys are its parameters
    reduction = "sum"

    [data]
    input = [0.02, 0.03, -2.06]   # one sample, or a list of samples (a batch)
    target = 0.61

    [[layers]]                    # one entry per layer, first to last
    weights = [[0.36, 0.74, -0.28],   # row j: the weights into unit j, one per input
               [0.29, -0.27, -0.84]]  # (PyTorch's (out_features, in_features) layout)
    bias = [0.7, 0.17]            # or false for a layer without bias

More of what hand-worked exercises use (README, "The network file"):

    bias = 0.35                   # one bias shared by all units of the layer (Mazur's b1)
    fixed = ["bias"]              # held constant: no gradient shown, not updated ("weights" too)
    layout = "in-out"             # weights written row i = from input i ("out-in": PyTorch's,
                                  # the default; "bias-first": row j = [b_j, w_1j, ..., w_nj])
    [loss] name = "none"          # no loss: explain the scalar output itself (df/dx, df/dw)
    [data] requires_grad = true   # also dL/dx_i for every input
    delta = "-dL/dz"              # name each unit's error term delta_{j-l} (or "dL/dz")
    [aliases]                     # the exercise's own names: net_h1 = "z_{1-1}", w5 = "w_{11-2}"

``load_network`` validates all of it and raises ``NetworkFileError`` (a ValueError) naming the
file, the key and what was expected. ``NetworkSpec.build`` makes the network out of chainrule
tensors through ``F.linear``, the activations and the loss, so the explainer reads the same
graph that training would build.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.explain.layered import DELTA_CONVENTIONS, double_squashing
from chainrule.explain.model import Explanation
from chainrule.explain.trace import explain
from chainrule.tensor import Tensor

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NO_ACTIVATION = ("none", "identity", "linear")
_TOP_KEYS = {
    "title",
    "description",
    "sizes",
    "activation",
    "seed",
    "loss",
    "data",
    "layers",
    "layout",
    "delta",
    "aliases",
}
_LAYER_KEYS = {"units", "activation", "weights", "bias", "fixed", "layout"}
LAYOUTS = ("out-in", "in-out", "bias-first")
NO_LOSS = "none"


class NetworkFileError(ValueError):
    """A network file that cannot be used; the message names the file, the key and what was expected."""


def reference_path() -> Path:
    """The reference network (part 3 of the worked solution), shipped with the package."""
    return Path(str(resources.files("chainrule").joinpath("examples", "reference.toml")))


def example_paths() -> list[Path]:
    """Every example file shipped with chainrule."""
    folder = Path(str(resources.files("chainrule").joinpath("examples")))
    return sorted(folder.glob("*.toml"))


@dataclass
class NetworkSpec:
    """A validated network file: sizes, activations, loss, data and parameters (PyTorch layout)."""

    sizes: list[int]
    activations: list[str | None]
    loss: str
    loss_params: dict[str, Any]
    input: np.ndarray
    target: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    title: str = ""
    description: str = ""
    source: str = "<network>"
    seed: int | None = None
    fixed: list[tuple[str, ...]] = field(default_factory=list)  # per layer: "weights", "bias"
    input_requires_grad: bool = False
    delta: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    # per layer, the file's layout ("out-in", "in-out", "bias-first"); weights above are always
    # PyTorch's (out, in): the layout says how the explanation shows them (a row per input i,
    # or a row per unit j)
    layouts: list[str] = field(default_factory=list)
    tensors: dict[str, Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def build(
        self, weights: list[np.ndarray] | None = None, biases: list[np.ndarray | None] | None = None
    ) -> Tensor:
        """The loss as a chainrule tensor, built layer by layer; parameters require grad unless
        ``fixed``. With ``[loss] name = "none"``, the network's scalar output itself.
        ``weights``/``biases`` replace the file's: arrays, or Tensors used as they are (an
        optimizer's parameters, which then get the gradients).

        The tensors are named (x, W1, b1, z1, y1, ..., L) and kept in ``self.tensors``.
        """
        from chainrule import functional as F

        weights = self.weights if weights is None else weights
        biases = self.biases if biases is None else biases
        h: Any = self.input
        tensors: dict[str, Tensor] = {}
        if self.input_requires_grad:
            h = tensors["x"] = Tensor(self.input, requires_grad=True, name="x")
        for li in range(1, self.n_layers + 1):
            fixed = self.fixed[li - 1] if self.fixed else ()
            W = _parameter(weights[li - 1], "weights" not in fixed, f"W{li}")
            b = None if biases[li - 1] is None else _parameter(biases[li - 1], "bias" not in fixed, f"b{li}")
            z = F.linear(h, W, b)
            z.name = f"z{li}"
            tensors.update({W.name: W, z.name: z})
            if b is not None:
                tensors[b.name] = b
            act = self.activations[li - 1]
            if act is not None:
                h = F.get_activation(act)(z)
                h.name = "yhat" if li == self.n_layers else f"y{li}"
                tensors[h.name] = h
            else:
                h = z
        if self.loss == NO_LOSS:
            if h.size != 1:
                raise NetworkFileError(
                    f'{self.source}: [loss] name = "none": the network\'s output must be one number '
                    f"(one output unit, one sample) to explain it without a loss, got shape {h.shape}"
                )
            self.tensors = tensors
            return h
        try:
            loss = F.get_loss(self.loss)(h, self.target, **self.loss_params)
        except (ValueError, TypeError) as exc:
            raise NetworkFileError(f"{self.source}: [loss] {self.loss} with [data] target: {exc}") from None
        if loss.size != 1:
            raise NetworkFileError(
                f"{self.source}: [loss] reduction: expected a scalar loss ('sum' or "
                f"'mean'), got shape {loss.shape}"
            )
        loss.name = "L"
        tensors["L"] = loss
        self.tensors = tensors
        return loss

    def display_layouts(self) -> list[str]:
        """How the explanation shows each weight matrix: as the file writes it (in-out: a row per
        input i; out-in and bias-first: a row per unit j)."""
        given = self.layouts or ["out-in"] * self.n_layers
        return ["in-out" if layout == "in-out" else "out-in" for layout in given]

    def with_parameters(self, weights: list[np.ndarray], biases: list[np.ndarray | None]) -> NetworkSpec:
        return replace(self, weights=weights, biases=biases, tensors={})


def _parameter(value: Any, trainable: bool, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return Tensor(value, requires_grad=trainable, name=name)


def _constant_layers(spec: NetworkSpec) -> int:
    """How many leading layers are constants to the engine (every parameter fixed, fed by an
    input without requires_grad): the explanation starts after them."""
    if spec.input_requires_grad:
        return 0
    count = 0
    for li, bias in enumerate(spec.biases):
        fixed = spec.fixed[li] if spec.fixed else ()
        if "weights" in fixed and (bias is None or "bias" in fixed):
            count += 1
        else:
            break
    return count


def explain_network(
    spec: NetworkSpec, *, notation: str = "reference", lr: float | None = None, digits: int = 4
) -> Explanation:
    """Build the network of a file through the engine and explain its loss (or, with
    ``[loss] name = "none"``, its output), with the file's delta names and aliases."""
    e = explain(
        spec.build(),
        notation=notation,
        lr=lr,
        digits=digits,
        title=spec.title or None,
        delta=spec.delta,
        layout=spec.display_layouts()[_constant_layers(spec):],
    )
    try:
        e.add_aliases(spec.aliases)
    except ValueError as exc:
        raise NetworkFileError(f"{spec.source}: [aliases] {exc}") from None
    return e


def load_network(path: str | os.PathLike | None = None) -> NetworkSpec:
    """Read and validate a network file (the reference network when ``path`` is None)."""
    path = reference_path() if path is None else Path(path)
    return parse_network(read_toml(path), source=str(path))


def read_toml(path: str | os.PathLike) -> dict:
    """A TOML file as a dict; a syntax error becomes a ValueError naming the file and the line."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise NetworkFileError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise NetworkFileError(f"{path}: not a UTF-8 text file: {exc}") from None


def _fail(source: str, key: str, expected: str, got: Any = None) -> NetworkFileError:
    text = f"{source}: {key}: expected {expected}"
    if got is not None:
        shown = repr(got)
        text += f", got {shown if len(shown) <= 80 else shown[:77] + '...'}"
    return NetworkFileError(text)


def _numbers(value: Any, source: str, key: str, ndim: tuple[int, ...], what: str) -> np.ndarray:
    """A (nested) list of numbers as a float64 array of one of the allowed ``ndim``."""
    if isinstance(value, bool) or isinstance(value, (str, dict)):
        raise _fail(source, key, what, value)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(source, key, what + " (numbers only, rows of equal length)", value) from None
    if _has_bool_or_str(value):
        raise _fail(source, key, what + " (numbers only)", value)
    if array.ndim not in ndim:
        raise _fail(source, key, what, value)
    if not np.all(np.isfinite(array)):
        raise _fail(source, key, what + " (finite numbers)", value)
    return array


def _has_bool_or_str(value: Any) -> bool:
    if isinstance(value, (bool, str)):
        return True
    if isinstance(value, list):
        return any(_has_bool_or_str(v) for v in value)
    return False


def _activation(name: Any, source: str, key: str) -> str | None:
    from chainrule import functional as F

    if not isinstance(name, str):
        raise _fail(source, key, "an activation name (a string)", name)
    if name.lower() in NO_ACTIVATION:
        return None
    try:
        F.get_activation(name)
    except ValueError:
        known = ", ".join(list(F.ACTIVATIONS) + ["none"])
        raise _fail(source, key, f"an activation, one of {known}", name) from None
    return name


def _unknown_keys(table: dict, allowed: set[str], source: str, where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise NetworkFileError(
            f"{source}: {where}{extra[0]}: unknown key; expected one of {', '.join(sorted(allowed))}"
        )


def parse_network(doc: dict, source: str = "<network>") -> NetworkSpec:
    """Validate a parsed network document (see the module docstring for the format)."""
    from chainrule import functional as F

    if not isinstance(doc, dict):
        raise _fail(source, "network", "a table", doc)
    if "values" in doc and "data" not in doc:
        raise NetworkFileError(
            f"{source}: this is a worksheet (it has [values] to grade), not a network file: "
            f"grade it with `chainrule check {source}`"
        )
    _unknown_keys(doc, _TOP_KEYS, source, "")
    title = doc.get("title", "")
    if not isinstance(title, str):
        raise _fail(source, "title", "a string", title)
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", "a string", description)

    # data
    data = doc.get("data")
    if not isinstance(data, dict):
        raise _fail(source, "[data]", "a table with input and target", data)
    _unknown_keys(data, {"input", "target", "requires_grad"}, source, "[data] ")
    input_grad = data.get("requires_grad", False)
    if not isinstance(input_grad, bool):
        raise _fail(source, "[data] requires_grad", "true or false (show dL/dx for every input)", input_grad)
    if "input" not in data:
        raise _fail(source, "[data] input", "one sample (a list of numbers) or a batch (a list of lists)")
    x = _numbers(
        data["input"],
        source,
        "[data] input",
        (1, 2),
        "one sample (a list of numbers) or a batch (a list of lists)",
    )
    if x.size == 0:
        raise _fail(source, "[data] input", "at least one number", data["input"])
    loss_doc = doc.get("loss", "l2_loss")
    if isinstance(loss_doc, str):
        loss_doc = {"name": loss_doc}
    no_loss = isinstance(loss_doc, dict) and loss_doc.get("name") == NO_LOSS
    if "target" not in data and not no_loss:
        raise _fail(source, "[data] target", "the target value(s) of the prediction")
    layout_default = _layout(doc.get("layout", "out-in"), source, "layout")

    # layers and sizes
    layers = doc.get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(t, dict) for t in layers):
        raise _fail(source, "[[layers]]", "an array of tables, one per layer", layers)
    for k, table in enumerate(layers, start=1):
        _unknown_keys(table, _LAYER_KEYS, source, f"[[layers]] #{k} ")
    sizes = doc.get("sizes")
    if sizes is None:
        if not layers or any("weights" not in t for t in layers):
            raise _fail(
                source,
                "sizes",
                "a list of layer sizes [inputs, units of layer 1, ...] "
                "(needed unless every [[layers]] entry gives its weights)",
            )
        sizes = [int(x.shape[-1])]
        for k, table in enumerate(layers, start=1):
            w = _numbers(
                table["weights"], source, f"[[layers]] #{k} weights", (2,), "a matrix (list of rows)"
            )
            layout = _layout(table.get("layout", layout_default), source, f"[[layers]] #{k} layout")
            sizes.append(int(w.shape[1] if layout == "in-out" else w.shape[0]))
    if (
        not isinstance(sizes, list)
        or len(sizes) < 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)
    ):
        raise _fail(source, "sizes", "a list of at least two positive integers [inputs, units, ...]", sizes)
    n_layers = len(sizes) - 1
    if layers and len(layers) != n_layers:
        raise _fail(
            source,
            "[[layers]]",
            f"{n_layers} entries, one per layer of sizes = {sizes}",
            f"{len(layers)} entries",
        )
    if x.shape[-1] != sizes[0]:
        raise _fail(
            source, "[data] input", f"{sizes[0]} numbers per sample (sizes[0] = {sizes[0]})", data["input"]
        )

    default_act = doc.get("activation", "sigmoid")
    if isinstance(default_act, list):
        if len(default_act) != n_layers:
            raise _fail(source, "activation", f"one name or a list of {n_layers} names", default_act)
        acts = [_activation(a, source, f"activation[{k}]") for k, a in enumerate(default_act)]
    else:
        acts = [_activation(default_act, source, "activation")] * n_layers

    seed = doc.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise _fail(source, "seed", "a non-negative integer", seed)
    rng = np.random.default_rng(seed) if seed is not None else None

    weights: list[np.ndarray] = []
    biases: list[np.ndarray | None] = []
    fixed: list[tuple[str, ...]] = []
    layouts: list[str] = []
    for li in range(1, n_layers + 1):
        table = layers[li - 1] if layers else {}
        fan_in, units = sizes[li - 1], sizes[li]
        where = f"[[layers]] #{li}"
        if "units" in table and table["units"] != units:
            raise _fail(source, f"{where} units", f"{units} (sizes = {sizes})", table["units"])
        if "activation" in table:
            acts[li - 1] = _activation(table["activation"], source, f"{where} activation")
        bound = 1 / math.sqrt(fan_in)  # torch.nn.Linear's default initialisation
        layout = _layout(table.get("layout", layout_default), source, f"{where} layout")
        row_bias = None
        if "weights" in table:
            w, row_bias = _weights(table["weights"], layout, units, fan_in, sizes, li, source, where)
        elif rng is not None:
            w = rng.uniform(-bound, bound, size=(units, fan_in))
        else:
            raise _fail(source, f"{where} weights", "a matrix of weights, or a top-level seed to draw them")
        bias_value = table.get("bias", None)
        if row_bias is not None:
            if "bias" in table:
                raise _fail(
                    source,
                    f"{where} bias",
                    'no bias key with layout = "bias-first" (each row starts with it)',
                )
            b = row_bias
        elif bias_value is False:
            b = None
        elif isinstance(bias_value, (int, float)) and not isinstance(bias_value, bool):
            if not math.isfinite(bias_value):
                raise _fail(source, f"{where} bias", "a finite number", bias_value)
            b = np.array(float(bias_value))  # one bias shared by the layer's units
        elif bias_value is None:
            if rng is None:
                raise _fail(
                    source, f"{where} bias", "a list of biases (or false), or a top-level seed to draw them"
                )
            b = rng.uniform(-bound, bound, size=units)
        else:
            b = _numbers(
                bias_value,
                source,
                f"{where} bias",
                (1,),
                f"a list of {units} numbers, one number (shared by the units), or false",
            )
            if b.shape != (units,):
                raise _fail(source, f"{where} bias", f"{units} numbers (units of layer {li})", bias_value)
        weights.append(w)
        biases.append(b)
        layouts.append(layout)
        fixed.append(_fixed(table.get("fixed", []), source, f"{where} fixed", b is not None))

    # loss
    if not isinstance(loss_doc, dict) or not isinstance(loss_doc.get("name"), str):
        raise _fail(source, "[loss] name", "a loss name (a string)", loss_doc)
    loss_name = loss_doc["name"]
    extras = _extras(doc, source)
    if no_loss:
        if len(loss_doc) > 1:
            raise _fail(
                source, f"[loss] {sorted(set(loss_doc) - {'name'})[0]}", 'nothing else with name = "none"'
            )
        spec = NetworkSpec(
            sizes=list(sizes),
            activations=acts,
            loss=NO_LOSS,
            loss_params={},
            input=x,
            target=np.zeros(0),
            weights=weights,
            biases=biases,
            title=title,
            description=description,
            source=source,
            seed=seed,
            fixed=fixed,
            layouts=layouts,
            input_requires_grad=input_grad,
            **extras,
        )
        spec.build()  # surfaces an output that is not one number now, with the file named
        _check_aliases(spec)
        return spec
    try:
        loss_fn = F.get_loss(loss_name)
    except ValueError:
        raise _fail(source, "[loss] name", f"a loss, one of {', '.join(F.LOSSES)}", loss_name) from None
    params = {k: v for k, v in loss_doc.items() if k != "name"}
    accepted = {
        p.name
        for p in inspect.signature(loss_fn).parameters.values()
        if p.kind == inspect.Parameter.KEYWORD_ONLY
    }
    for key, value in params.items():
        if key not in accepted:
            raise _fail(
                source,
                f"[loss] {key}",
                f"a parameter of {loss_fn.__name__}: {', '.join(sorted(accepted)) or 'none'}",
                value,
            )
    if "reduction" in params and params["reduction"] not in ("sum", "mean"):
        raise _fail(
            source,
            "[loss] reduction",
            "'sum' or 'mean' (the explainer needs a scalar loss)",
            params["reduction"],
        )

    reason = double_squashing(acts[-1], loss_fn.__name__)
    if reason:  # never silent: a softmax before cross_entropy would apply softmax twice
        raise NetworkFileError(f"{source}: [loss] name: {reason}")
    target = _target(data["target"], source, x, sizes[-1])
    spec = NetworkSpec(
        sizes=list(sizes),
        activations=acts,
        loss=loss_fn.__name__,
        loss_params=params,
        input=x,
        target=target,
        weights=weights,
        biases=biases,
        title=title,
        description=description,
        source=source,
        seed=seed,
        fixed=fixed,
        layouts=layouts,
        input_requires_grad=input_grad,
        **extras,
    )
    spec.build()  # surfaces a loss/target mismatch now, with the file named
    _check_aliases(spec)
    return spec


def _layout(value: Any, source: str, key: str) -> str:
    if value not in LAYOUTS:
        raise _fail(
            source,
            key,
            'one of "out-in" (row j = the weights into unit j, PyTorch\'s), "in-out" (row i = the '
            'weights from input i) or "bias-first" (row j = [b_j, w_1j, ..., w_nj])',
            value,
        )
    return value


def _weights(
    value: Any, layout: str, units: int, fan_in: int, sizes: list[int], li: int, source: str, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """A layer's weights in PyTorch's (units, fan_in) layout, and the bias of a bias-first layout."""
    rows, cols, what = {
        "out-in": (units, fan_in, "row j = the weights into unit j"),
        "in-out": (fan_in, units, "row i = the weights from input i"),
        "bias-first": (units, fan_in + 1, "row j = [b_j, w_1j, ..., w_nj]"),
    }[layout]
    w = _numbers(value, source, f"{where} weights", (2,), f"a {rows}x{cols} matrix (layout {layout}: {what})")
    if w.shape != (rows, cols):
        raise _fail(
            source,
            f"{where} weights",
            f"{rows} rows of {cols} numbers (layout {layout}: {what}; layer {li} has {units} units "
            f"and {fan_in} inputs, sizes = {sizes})",
            f"{w.shape[0]} rows of {w.shape[1]}",
        )
    if layout == "in-out":
        return np.ascontiguousarray(w.T), None
    if layout == "bias-first":
        return np.ascontiguousarray(w[:, 1:]), np.ascontiguousarray(w[:, 0])
    return w, None


def _fixed(value: Any, source: str, key: str, has_bias: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(v in ("weights", "bias") for v in value):
        raise _fail(source, key, 'a list of "weights" and/or "bias" (held constant)', value)
    if "bias" in value and not has_bias:
        raise _fail(source, key, '"weights" only: this layer has no bias', value)
    return tuple(dict.fromkeys(value))


def _check_aliases(spec: NetworkSpec) -> None:
    """Every alias names a quantity the explanation has (in the reference notation)."""
    if not spec.aliases:
        return
    explain_network(spec)  # raises NetworkFileError naming the alias


def _extras(doc: dict, source: str) -> dict[str, Any]:
    """The explanation's options a file may set: delta names and aliases."""
    delta = doc.get("delta")
    if delta is not None and delta not in DELTA_CONVENTIONS:
        raise _fail(source, "delta", f"one of {', '.join(repr(d) for d in DELTA_CONVENTIONS)}", delta)
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in aliases.items()
    ):
        raise _fail(source, "[aliases]", 'a table of name = "quantity" (net_h1 = "z_{1-1}")', aliases)
    return {"delta": delta, "aliases": dict(aliases)}


def _target(value: Any, source: str, x: np.ndarray, n_out: int) -> np.ndarray:
    key = "[data] target"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if _has_bool_or_str(value) or not isinstance(value, list):
        raise _fail(source, key, "numbers: one per output unit (and sample), or class indices", value)
    try:
        raw = np.array(value)
    except ValueError:
        raise _fail(source, key, "rows of equal length", value) from None
    if raw.dtype.kind not in "iuf":
        raise _fail(source, key, "numbers", value)
    pred_shape = (x.shape[0], n_out) if x.ndim == 2 else (n_out,)
    if raw.size == int(np.prod(pred_shape)):
        return raw.astype(np.float64).reshape(pred_shape)
    if raw.dtype.kind in "iu" and raw.size == (x.shape[0] if x.ndim == 2 else 1):
        return raw.astype(np.int64).reshape(pred_shape[:-1])  # class indices
    raise _fail(
        source,
        key,
        f"{int(np.prod(pred_shape))} numbers (shape {pred_shape}: samples x output units)"
        ", or one class index per sample",
        value,
    )
