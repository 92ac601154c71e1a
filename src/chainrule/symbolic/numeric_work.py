"""A document's numeric work (part 3 of the reference solution) graded as a worksheet.

Part 3 of a hand-worked backpropagation solution is numbers, not algebra: the parameters of a
small network (``x_1 = 0.02``, ``w_{11-1} = 0.36``, ``B_{1-1} = 0.7``, ``\\text{Target} = 0.61``),
then each quantity's value (``z_{1-1} = ... = 1.3062``, ``\\frac{\\partial L}{\\partial \\hat{y}} =
... = 0.1037``, chain-rule products such as ``\\frac{\\partial \\lambda}{\\partial z_{1-2}} =
\\frac{\\partial \\lambda}{\\partial \\hat{y}} \\cdot \\frac{\\partial \\hat{y}}{\\partial z_{1-2}} =
0.1037 \\times 0.2043 = 0.0212``). This module reads those lines as they are written and hands
them to the worksheet checker (``chainrule.explain.worksheet.check``), which grades them; there
is no second grader here. What is read:

* the network, from the parameters the document writes: ``x_i`` (inputs), ``w_{ij-l}`` (weight
  from unit i of layer l-1 to unit j of layer l), ``B_{j-l}``/``b_{j-l}`` (biases), the target;
  each layer's activation from the function its outputs are written with (``y_{1-1} =
  \\sigma(z_{1-1})``: sigmoid; ``\\tanh``; ReLU), and the loss by comparing the document's
  ``L = \\frac{1}{2}(y - \\hat{y})^2`` with each registered loss's formula (SymPy);
* each quantity's value: the last plain number of its chain (lines starting with ``=`` continue
  it); a value after ``\\quad`` (``\\quad \\hat{y}(1 - \\hat{y}) = 0.2043``) is a second attempt;
  a value written again unchanged (the summary matrices at the end) is not a new attempt;
* the work of a chain-rule product, where a line writes one (the factors' names), so that the
  worksheet checker can say when the factors named are not the ones the chain rule needs;
* ``\\begin{bmatrix}`` of names set equal to a ``\\begin{bmatrix}`` of numbers, entry by entry.

Names as the worksheet checker takes them: ``\\frac{\\partial A}{\\partial B}`` is ``dA/dB``,
``\\hat{y}`` is ``yhat``, ``\\lambda`` is ``λ`` (the solution's other name for the loss).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from chainrule.symbolic import latex_reader as lr

_NUMBER = re.compile(r"^\s*\(?\s*(-?\s*\d+(?:\.\d+)?)\s*"
                     r"(?:(?:\\times|\\cdot)\s*10\s*\^\s*\{?\s*(-?\d+)\s*\}?)?\s*\)?\s*$")
_FRAC = re.compile(r"\\frac\s*\{\s*\\partial\s*([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}\s*"
                   r"\{\s*\\partial\s*([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_INPUT = re.compile(r"^x_\{?(\d+)\}?$")
_WEIGHT = re.compile(r"^w_\{(\d)(\d)-(\d+)\}$")
_BIAS = re.compile(r"^[Bb]_\{(\d+)-(\d+)\}$")
_UNIT_OUT = re.compile(r"^(?:y_\{(\d+)-(\d+)\}|yhat)$")
#: how the document writes an activation (as latex_reader reads it) -> chainrule's name
_ACTIVATIONS = {"sigma": "sigmoid", "tanh": "tanh", "ReLU": "relu"}


@dataclass
class Written:
    """One value as written: its name, the number's text, the line, the work (if any)."""

    name: str
    text: str
    line: int
    work: str = ""
    others: tuple[str, ...] = ()  # other names the chain gives it ("Loss = L = 0.0054")


@dataclass
class NumericWork:
    """What the numeric lines of a document say: parameters, values, and what could not be used."""

    inputs: dict[int, float] = field(default_factory=dict)
    weights: dict[tuple[int, int, int], float] = field(default_factory=dict)  # (i, j, layer)
    biases: dict[tuple[int, int], float] = field(default_factory=dict)  # (j, layer)
    target: float | None = None
    activations: dict[str, str] = field(default_factory=dict)  # output name -> activation
    loss_tex: str = ""
    values: list[Written] = field(default_factory=list)
    first_line: int = 0
    unknown: list[Written] = field(default_factory=list)  # names the network does not have


def number(tex: str) -> str | None:
    """``0.0212``, ``-2.06``, ``2.8 \\times 10^{-5}`` as a literal (``2.8e-5``); None otherwise."""
    m = _NUMBER.match(tex)
    if not m:
        return None
    mantissa = m.group(1).replace(" ", "")
    return f"{mantissa}e{m.group(2)}" if m.group(2) else mantissa


def name(tex: str) -> str | None:
    """A quantity's name as the worksheet checker spells it, or None when ``tex`` is no name."""
    s = " ".join(lr.strip_command(tex, "cancel").split())
    s = re.sub(r"^\\text\{\s*([A-Za-z]+)\s*\}$", r"\1", s)
    if s.lower() == "target":
        return "target"
    s = _FRAC.sub(lambda m: f"d{_plain(m.group(1))}/d{_plain(m.group(2))}", s)
    s = _plain(s)
    return s if re.fullmatch(r"[A-Za-zλ]+(_\{[0-9-]+\}|_[0-9])?(/d[A-Za-zλ]+(_\{[0-9-]+\}|_[0-9])?)?", s) \
        else None


def _plain(s: str) -> str:
    s = s.replace("\\hat{y}", "yhat").replace("\\hat y", "yhat").replace("\\lambda", "λ")
    return "".join(s.split())


def _work(tex: str) -> str:
    """``\\frac{∂λ}{∂ŷ} \\cdot \\frac{∂ŷ}{∂z_{1-2}}`` as ``dλ/dyhat * dyhat/dz_{1-2}``; "" when
    ``tex`` is not a product of two or more named derivatives."""
    factors = [f for f in lr.split_top(tex, ("\\cdot", "\\times")) if f.strip()]
    names = [name(f) for f in factors]
    if len(names) >= 2 and all(n and n.startswith("d") and "/" in n for n in names):
        return " * ".join(names)  # type: ignore[arg-type]
    return ""


def _matrix(tex: str) -> list[list[str]] | None:
    m = re.fullmatch(r"\s*\\begin\{bmatrix\}(.*)\\end\{bmatrix\}\s*", tex, re.S)
    if not m:
        return None
    return [[c.strip() for c in row.split("&")] for row in m.group(1).split("\\\\") if row.strip()]


class Reader:
    """Reads numeric display formulas one at a time (``add``), in document order."""

    def __init__(self) -> None:
        self.work = NumericWork()
        self.current: str | None = None  # the quantity a line starting with "=" continues

    def add(self, line: int, tex: str) -> None:
        if not self.work.first_line:
            self.work.first_line = line
        tex = re.sub(r"\\(left|right)(?![a-zA-Z])|\\[,;:!]", " ", tex)
        main, *remarks = lr.split_top(tex, ("\\quad", "\\qquad"))
        main = re.sub(r"^\s*\\text\{\s*[A-Za-z]+,\s*\}\s*", "", main)  # "\text{Then, }"
        parts = [p.strip() for p in lr.split_top(main, ("=",))]
        if any("\\begin{bmatrix}" in p for p in parts):  # [names] = [numbers]
            self._matrices(line, parts)
            self.current = None
            return
        if parts and not parts[0]:  # "= 1.3062": continues the chain before
            head = self.current
            parts = parts[1:]
        else:
            head = name(parts[0]) if parts else None
            self.current = head
            parts = parts[1:]
        if head is None:
            return
        for p in parts:
            self._form(head, p)
        values = [number(p) for p in parts]
        last = next((v for v in reversed(values) if v is not None), None)
        # "Target = 0.61 = y": the number is the target's whatever follows it
        work = next((w for w in map(_work, parts) if w), "")
        others = tuple(n for n in map(name, parts) if n and n != head and "/" not in n)
        if last is not None:
            self._value(head, last, line, work, others)
        for remark in remarks:  # "\quad \hat{y}(1 - \hat{y}) = 0.2043": another attempt
            rparts = [p.strip() for p in lr.split_top(remark, ("=",))]
            if len(rparts) >= 2 and number(rparts[-1]) is not None:
                self._value(head, number(rparts[-1]), line, "", others)  # type: ignore[arg-type]

    def _form(self, head: str, part: str) -> None:
        """What a formula says about the network: an activation, the loss."""
        if _UNIT_OUT.match(head):
            m = re.match(r"\s*(\\sigma|\\tanh|\\text\{ReLU\}|\\operatorname\{ReLU\}|ReLU)\s*\(", part)
            if m:
                key = m.group(1).strip("\\").replace("text{", "").replace("operatorname{", "").rstrip("}")
                self.work.activations[head] = _ACTIVATIONS.get(key, key)
        elif head in ("L", "λ", "J") and not self.work.loss_tex and "y" in part and number(part) is None:
            self.work.loss_tex = part

    def _value(self, head: str, text: str, line: int, work: str, others: tuple[str, ...] = ()) -> None:
        w = self.work
        if head not in ("target",) and "target" in others:  # "y = 0.61 = Target"
            head = "target"
        m_in, m_w, m_b = _INPUT.match(head), _WEIGHT.match(head), _BIAS.match(head)
        v = float(text)
        if m_in:
            w.inputs[int(m_in.group(1))] = v
        elif m_w:
            w.weights[(int(m_w.group(1)), int(m_w.group(2)), int(m_w.group(3)))] = v
        elif m_b:
            w.biases[(int(m_b.group(1)), int(m_b.group(2)))] = v
        elif head == "target":
            w.target = v
        else:
            w.values.append(Written(head, text, line, work, others))

    def _matrices(self, line: int, parts: list[str]) -> None:
        """``[names] = [numbers]``: each name gets its number."""
        mats = [_matrix(p) for p in parts]
        names = next((m for m in mats if m and all(name(c) for row in m for c in row)), None)
        nums = next((m for m in mats if m and all(number(c) for row in m for c in row)), None)
        if names and nums and [len(r) for r in names] == [len(r) for r in nums]:
            for rn, rv in zip(names, nums, strict=True):
                for cn, cv in zip(rn, rv, strict=True):
                    self._value(name(cn), number(cv), line, "")  # type: ignore[arg-type]


class NotANetwork(ValueError):
    """The numeric lines do not say enough to build the network (one line saying what is missing)."""


def network_document(work: NumericWork) -> dict[str, Any]:
    """The network file (as a parsed TOML table, ``chainrule.explain.network``'s format) that the
    document's parameters describe."""
    if not work.inputs:
        raise NotANetwork("no inputs x_1, x_2, ... are written")
    if work.target is None:
        raise NotANetwork("no target (Target = ... or y = ...) is written")
    layers = sorted({layer for (_, _, layer) in work.weights})
    if not layers or layers != list(range(1, len(layers) + 1)):
        raise NotANetwork("no weights w_{ij-l} for layers 1, 2, ... are written")
    sizes = [max(work.inputs)]
    for layer in layers:
        sizes.append(max(j for (_, j, lay) in work.weights if lay == layer))
    table: list[dict[str, Any]] = []
    for layer in layers:
        n_in, n_out = sizes[layer - 1], sizes[layer]
        try:
            weights = [[work.weights[(i, j, layer)] for i in range(1, n_in + 1)] for j in range(1, n_out + 1)]
        except KeyError as exc:
            i, j, lay = exc.args[0]
            raise NotANetwork(f"w_{{{i}{j}-{lay}}} is not written") from None
        entry: dict[str, Any] = {"weights": weights}
        if any(lay == layer for (_, lay) in work.biases):
            try:
                entry["bias"] = [work.biases[(j, layer)] for j in range(1, n_out + 1)]
            except KeyError as exc:
                j, lay = exc.args[0]
                raise NotANetwork(f"B_{{{j}-{lay}}} is not written") from None
        else:
            entry["bias"] = False
        act = _layer_activation(work, layer, len(layers))
        if act is None:
            raise NotANetwork(f"layer {layer}'s activation is not written "
                              f"(y_{{j-{layer}}} = \\sigma(z_{{j-{layer}}}))")
        entry["activation"] = act
        table.append(entry)
    return {
        "title": "the document's numeric work",
        "sizes": sizes,
        "loss": {"name": _loss(work), "reduction": "sum"},
        "data": {"input": [work.inputs[i] for i in range(1, sizes[0] + 1)], "target": work.target},
        "layers": table,
    }


def _layer_activation(work: NumericWork, layer: int, last: int) -> str | None:
    for head, act in work.activations.items():
        m = _UNIT_OUT.match(head)
        if (m.group(2) and int(m.group(2)) == layer) or (head == "yhat" and layer == last):
            return act
    return None


def _loss(work: NumericWork) -> str:
    """The registered loss whose formula is the document's ``L = ...`` (proved equal by SymPy)."""
    from chainrule.functional import FORMULAS, LOSSES
    from chainrule.symbolic.verify import verify

    if not work.loss_tex:
        raise NotANetwork("the loss is not written (L = \\frac{1}{2}(y - \\hat{y})^2)")
    try:
        written = lr.read(work.loss_tex)
    except lr.Unreadable as exc:
        raise NotANetwork(f"the loss could not be read: {exc}") from None
    y, yhat = sp.Symbol("y", real=True), sp.Symbol("hat_y", real=True)
    for loss in sorted(LOSSES):
        formula = FORMULAS.get(loss)
        if formula is None:
            continue
        try:
            definition, _, ns = formula.symbolic()
        except Exception:  # a formula SymPy cannot state; not this one
            continue
        if set(ns) - {"p", "y"} or definition.atoms(sp.Indexed) or formula.wrt != "p":
            continue
        if verify(written, definition.xreplace({ns["p"]: yhat, ns["y"]: y})).ok:
            return loss
    raise NotANetwork(f"the loss L = {work.loss_tex.strip()} is none of chainrule's losses")


def worksheet_document(work: NumericWork) -> dict[str, Any]:
    """The worksheet (``chainrule.explain.worksheet``'s format, as a parsed TOML table) that the
    document's values make: each quantity's distinct values in the order written, as strings
    (so that trailing zeros count), with the work of its last chain-rule line."""
    from chainrule.explain.network import explain_network, parse_network
    from chainrule.explain.worksheet import canonical_name

    net = network_document(work)
    e = explain_network(parse_network(net, source="the document's parameters"))
    values: dict[str, Any] = {}
    seen: dict[str, list[Written]] = {}
    work.unknown = []
    for w in work.values:
        known = [n for n in (w.name, *w.others) if canonical_name(n, e) in e]
        if not known:
            work.unknown.append(w)
            continue
        w.name = known[0]
        attempts = seen.setdefault(canonical_name(w.name, e), [])
        if attempts and float(attempts[-1].text) == float(w.text):
            continue  # the same value written again
        attempts.append(w)
        first = attempts[0].name
        texts = [a.text for a in attempts]
        value: Any = texts[0] if len(texts) == 1 else texts
        worked = next((a.work for a in reversed(attempts) if a.work), "")
        values[first] = {"value": value, "work": worked} if worked else value
    return {"title": "its numeric work, on the network its parameters describe", "network": net,
            "values": values}


def grade(work: NumericWork, source: str):
    """The worksheet checker's report (``chainrule.explain.worksheet.CheckReport``) on the
    document's numbers; raises ``NotANetwork`` when the network cannot be read off them and
    ``chainrule.explain.worksheet.WorksheetError`` for a value the network does not have."""
    from chainrule.explain.worksheet import check

    return check(worksheet_document(work), source=source)
