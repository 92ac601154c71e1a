"""What an explanation holds: named scalars, graph nodes and gradient arrays.

An ``Explanation`` is data, read off the engine's graph by ``trace.explain``; every format
(text, markdown, LaTeX, JSON, HTML) renders the same object. Numbers are exact float64; the
renderers round for display only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any, ClassVar

import numpy as np

from chainrule.explain.numbers import DEFAULT_DIGITS

# Kinds of quantity, in the order a hand-worked solution meets them.
GIVEN_KINDS = ("input", "parameter", "target")
FORWARD_KINDS = ("forward", "loss")
KINDS = GIVEN_KINDS + FORWARD_KINDS + ("local", "chain", "update")

Lookup = Callable[[str], float]


@dataclass(frozen=True)
class ClosedForm:
    """A local derivative in closed form, from the function's ``Formula.local``.

    ``text`` (Python syntax) and ``latex`` are ``string.Template`` strings whose placeholders
    are ``operands``' keys; each operand is the name of a quantity of the explanation, so the
    renderers can write the expression with names (yhat * (1 - yhat)) and with numbers
    (0.7137 * (1 - 0.7137)). Constants (a Huber delta, 1/n of a mean) are already in the text.
    """

    text: str
    latex: str
    operands: Mapping[str, str]

    def with_names(self) -> str:
        return _display(Template(self.text).substitute(self.operands))

    def with_latex(self, latex_of: Callable[[str], str]) -> str:
        # an operand raised to a power is braced: the square of y_{1-1}^{(2)} (a batch's sample)
        # is {y_{1-1}^{(2)}}^{2}, where y_{1-1}^{(2)}^{2} is a double superscript TeX rejects
        template = re.sub(r"(\$\{?\w+\}?)(?=\^)", r"{\1}", self.latex)
        return Template(template).substitute({k: latex_of(n) for k, n in self.operands.items()})

    def with_numbers(self, number_of: Callable[[str], str]) -> str:
        return _display(Template(self.text).substitute({k: number_of(n) for k, n in self.operands.items()}))

    def evaluate(self, value_of: Callable[[str], float]) -> float:
        """The expression's value with each operand's value (the renderers use it to check that
        a row shown with numbers follows from the numbers shown)."""
        code = Template(self.text).substitute({k: f"({value_of(n)!r})" for k, n in self.operands.items()})
        return float(eval(code, {"__builtins__": {}}, _CLOSED_FORM_NAMES))  # our own templates only


# The functions the closed forms of functional/formulas.py use (Formula.local).
_CLOSED_FORM_NAMES = {"sign": np.sign, "abs": abs, "exp": np.exp}


def _display(python: str) -> str:
    return python.replace("**", "^")  # 1 - y^2, as written by hand


@dataclass
class Quantity:
    """One named scalar as a person writes it: ``z_{1-1} = x_1 w_{11-1} + ... = 1.3062``.

    ``terms`` is the right-hand side as a sum of products of other quantities' names (the
    expanded pre-activation, or the chain rule ``dL/dy_{1-1} * dy_{1-1}/dz_{1-1}``); ``formula``
    is a right-hand side that is not such a sum (``sigmoid(z_{1-1})``). ``equals`` names the
    quantity a local derivative equals (dz_{1-2}/dw_{11-2} = y_{1-1}); ``closed_form`` is a local
    derivative's expression in other quantities (yhat * (1 - yhat)). ``recompute`` gives this
    value again from other values (looked up by name), through the engine's own primitives: the
    worksheet checker uses it to follow a hand-worked sheet's carried rounding.
    """

    name: str
    latex: str
    kind: str
    value: float
    terms: tuple[tuple[str, ...], ...] = ()
    formula: str = ""
    formula_latex: str = ""
    equals: str = ""
    layer: int | None = None
    uses: tuple[str, ...] = ()
    recompute: Callable[[Lookup], float] | None = field(default=None, repr=False, compare=False)
    closed_form: ClosedForm | None = None

    @property
    def is_given(self) -> bool:
        return self.kind in GIVEN_KINDS


@dataclass
class GraphNode:
    """One tensor of the engine's graph: how it was made, its value, and dL/d(it)."""

    name: str
    op: str | None  # primitive name; None for a leaf
    expression: str  # text, e.g. "W1 @ x" or "sigmoid(z1)"
    expression_latex: str
    value: np.ndarray
    gradient: np.ndarray | None
    parents: tuple[str, ...] = ()  # names of the arguments (constants written by value)
    local: dict[str, np.ndarray | None] = field(default_factory=dict)  # d(self)/d(parent), Jacobian

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)


@dataclass
class GradientArray:
    """A parameter's gradient laid out as the reference solution writes it (dL/dw_1 as a matrix)."""

    name: str  # "dL/dW_1"
    latex: str
    element_names: list[list[str]]  # the quantity names, row by row
    values: np.ndarray  # 2-D, same layout
    layout: str = ""  # a weight matrix's: "in-out" (a row per input i) or "out-in" (a row per unit j)
    inputs: str = ""  # a weight matrix's: what unit i below is ("input x_i", "hidden unit i of layer 1 ...")


@dataclass
class Layer:
    """A layer of the network view (for tables and the drawing)."""

    index: int  # 1-based
    units: int
    activation: str | None
    weight: str  # names of the engine tensors
    bias: str | None


@dataclass
class NetworkView:
    """The layered picture of an MLP: names of each unit's quantities, per layer and sample 0."""

    input_size: int
    layers: list[Layer]
    batch: int  # number of samples (1 for a single sample)
    loss: str
    input_names: list[str]  # x_i (sample 0)
    unit_names: list[list[dict[str, str]]]  # per layer, per unit: {"z", "y", "dz"} quantity names
    edge_names: list[list[list[dict[str, str]]]]  # per layer, [i][j]: {"w", "dw"} quantity names
    bias_names: list[list[dict[str, str]]]  # per layer, per unit: {"b", "db"}
    output_names: list[str]  # the prediction's names (sample 0)
    loss_name: str = "L"


@dataclass
class TrainingStep:
    """One step of SGD: the loss at the parameters it starts from, and the parameters after it
    (trainable ones, named as the explanation names them: (name, LaTeX, value))."""

    index: int  # 1-based
    loss: float
    parameters: list[tuple[str, str, float]]
    weights: list[np.ndarray]  # every layer's, as the engine keeps them: (out, in)
    biases: list[np.ndarray | None]


@dataclass
class Training:
    """Several steps of SGD after the explained pass (``explain --lr --steps N``).

    Many steps are shown readably: up to ``SHOW_ALL`` steps, every one; more, the first and last
    ``ENDS`` with their parameters and the loss every k-th step between (k a round number, about
    ``CHECKPOINTS`` rows), unless ``all_steps`` (``--all-steps``)."""

    lr: float
    momentum: float
    steps: list[TrainingStep]
    final_loss: float  # at the parameters after the last step
    layouts: list[str] = field(default_factory=list)  # each weight matrix's, as the explanation's
    all_steps: bool = False

    SHOW_ALL: ClassVar[int] = 20
    ENDS: ClassVar[int] = 5
    CHECKPOINTS: ClassVar[int] = 20

    @property
    def title(self) -> str:
        s = "" if len(self.steps) == 1 else "s"
        short = lambda v: np.format_float_positional(float(v), trim="-")  # noqa: E731
        return (
            f"Training: {len(self.steps)} step{s} of SGD (lr = {short(self.lr)}, "
            f"momentum = {short(self.momentum)}; torch.optim.SGD's update)"
        )

    @property
    def every(self) -> int:
        """k: between the first and last steps, the loss of every k-th step is shown (1: all)."""
        n = len(self.steps)
        if self.all_steps or n <= self.SHOW_ALL:
            return 1
        target = n / self.CHECKPOINTS
        return min(
            (m * 10**e for e in range(0, 12) for m in (1, 2, 5) if m * 10**e >= target), default=n
        )

    def rows(self) -> list[tuple[TrainingStep, bool]]:
        """The steps shown, in order, each with whether its parameters are shown."""
        n, k = len(self.steps), self.every
        if k == 1:
            return [(s, True) for s in self.steps]
        out = []
        for s in self.steps:
            detail = s.index <= self.ENDS or s.index > n - self.ENDS
            if detail or s.index % k == 0:
                out.append((s, detail))
        return out

    @property
    def note(self) -> str:
        """What a shortened table leaves out, and how to see it all ('' when nothing is left out)."""
        k = self.every
        if k == 1:
            return ""
        n = len(self.steps)
        return (
            f"{n} steps: the parameters after the first and last {self.ENDS}, the loss before every "
            f"{k}th step between them (--all-steps shows every step; JSON lists every loss)"
        )


@dataclass
class Explanation:
    """A forward and backward pass, every step named; render with ``to_text`` & co.

    ``quantities`` lists scalars in solution order (empty for graphs that are not an MLP, which
    are described by ``nodes`` alone). ``nodes`` lists every tensor of the graph in forward
    order, with its local derivatives and its gradient.
    """

    title: str
    loss: float
    nodes: list[GraphNode]
    quantities: list[Quantity] = field(default_factory=list)
    arrays: list[GradientArray] = field(default_factory=list)
    network: NetworkView | None = None
    notation: str = "reference"
    digits: int = DEFAULT_DIGITS
    lr: float | None = None
    update_arrays: list[GradientArray] = field(default_factory=list)
    training: Training | None = None  # --steps N: every step's loss and parameters

    aliases: dict[str, str] = field(default_factory=dict)
    # the aliases a person gave (a network file's [aliases], explain(aliases=...)), which the
    # renderers show beside chainrule's names; built-in ones (yhat for a linear output) are not
    shown_aliases: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name: dict[str, Quantity] = {q.name: q for q in self.quantities}

    # --- lookup ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Quantity:
        try:
            return self._by_name[self.resolve(name)]
        except KeyError:
            raise KeyError(f"no quantity named {name!r} in this explanation") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) in self._by_name

    def values(self) -> Mapping[str, float]:
        """Every named scalar: ``{"z_{1-1}": 1.3062..., "dL/dw_{31-1}": -0.0029...}``."""
        return {q.name: q.value for q in self.quantities}

    def section(self, *kinds: str) -> list[Quantity]:
        return [q for q in self.quantities if q.kind in kinds]

    def node(self, name: str) -> GraphNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no graph node named {name!r}")

    # --- aliases -----------------------------------------------------------------------------
    def add_aliases(self, aliases: Mapping[str, str]) -> None:
        """Other names for quantities (an exercise's own: net_h1 for z_{1-1}, w5 for w_{11-2}).

        An alias names a quantity or a variable inside derivative names: with ``w5`` for
        ``w_{11-2}`` and ``E`` for ``L``, ``dE/dw5`` is ``dL/dw_{11-2}``. Raises ValueError for
        an alias whose target is no quantity, or that would hide one.
        """
        for alias, target in aliases.items():
            if not isinstance(alias, str) or not isinstance(target, str) or not alias or not target:
                raise ValueError(f"an alias maps a name to a quantity's name, got {alias!r} = {target!r}")
            if target not in self._by_name and not any(
                q.name.startswith(f"d{target}/") or q.name.endswith(f"/d{target}") for q in self.quantities
            ):
                raise ValueError(f"alias {alias!r}: {target!r} is not a quantity of this explanation")
            if alias in self._by_name and alias != target:
                raise ValueError(f"alias {alias!r} would hide the quantity of that name")
            self.aliases[alias] = target
            self.shown_aliases[alias] = target

    def alias_of(self, name: str) -> str:
        """The name the given aliases write for quantity ``name`` ("" when they give none):
        ``out_h1`` for ``y_{1-1}``, ``w5^{new}`` for ``w_{11-2}^{new}``, ``dE_total/dw5`` for
        ``dL/dw_{11-2}``, ``dE_total/dout_h1|net_o2`` for a path's term. The first alias given
        for a quantity is used; a name is shown only if it resolves back to ``name``."""
        if not self.shown_aliases:
            return ""
        back: dict[str, str] = {}
        for alias, target in self.shown_aliases.items():
            back.setdefault(target, alias)

        def one(part: str) -> str:
            if part in back:
                return back[part]
            base, hat, sup = part.partition("^{")
            return back[base] + hat + sup if hat and base in back else part

        alias = one(name)
        if alias == name:
            m = re.fullmatch(r"d([^/]+)/d([^|]+)(?:\|(.+))?", name)
            if m is None:
                return ""
            num, wrt, via = m.groups()
            alias = f"d{one(num)}/d{one(wrt)}" + (f"|{one(via)}" if via else "")
        return alias if alias != name and self.resolve(alias) == name else ""

    def _alias(self, token: str) -> str:
        """The target of an alias, a superscript kept (w5^{new}, yhat_1^{(2)})."""
        if token in self.aliases:
            return self.aliases[token]
        base, hat, sup = token.partition("^{")
        if hat and base in self.aliases:
            return self.aliases[base] + hat + sup
        return token

    def resolve(self, name: str) -> str:
        """The quantity's own name for ``name``, which may use aliases (dE/dw5 -> dL/dw_{11-2};
        a path's term dE/dout_h1|net_o1 -> dL/dy_{1-1}|z_{1-2})."""
        if name in self._by_name or not self.aliases:
            return name
        direct = self._alias(name)
        if direct in self._by_name:
            return direct
        num, slash, den = name.partition("/")
        if slash and num.startswith("d") and den.startswith("d"):
            wrt, bar, via = den[1:].partition("|")  # a path's term: dE/dout_h1|net_o1
            full = f"d{self._alias(num[1:])}/d{self._alias(wrt)}" + (f"|{self._alias(via)}" if bar else "")
            for candidate in (full, self.aliases.get(full, "")):
                if candidate in self._by_name:
                    return candidate
        return direct

    # --- formats ---------------------------------------------------------------------------
    def render(self, format: str = "text", digits: int | None = None, color: bool = False) -> str:
        """Render in one of ``FORMATS`` (text, markdown, latex, json, html).

        The renderers register themselves in ``RENDERERS`` (``chainrule.explain`` imports them
        all), so this data module does not import its own renderers."""
        if format not in RENDERERS:
            raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
        if format == "text":
            return RENDERERS[format](self, digits=digits, color=color)
        return RENDERERS[format](self, digits=digits)

    def to_text(self, digits: int | None = None, color: bool = False) -> str:
        return self.render("text", digits=digits, color=color)

    def to_markdown(self, digits: int | None = None) -> str:
        return self.render("markdown", digits=digits)

    def to_latex(self, digits: int | None = None) -> str:
        return self.render("latex", digits=digits)

    def to_json(self, digits: int | None = None) -> str:
        return self.render("json", digits=digits)

    def to_html(self, digits: int | None = None) -> str:
        return self.render("html", digits=digits)

    def to_dict(self) -> dict:
        return RENDERERS["dict"](self)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:  # Jupyter
        return RENDERERS["html_fragment"](self)


# Each renderer module adds its functions here when imported (format -> function).
RENDERERS: dict[str, Callable[..., Any]] = {}


FORMATS = ("text", "markdown", "latex", "json", "html")
