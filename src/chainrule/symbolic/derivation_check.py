"""Grade a hand-written derivation (Markdown with ``$$`` math, or a LaTeX document) step by step.

A document is read as students write one:

* each display formula is a chain ``A = B = C``; one that starts with ``=`` continues the chain
  before it; ``\\Rightarrow`` and "Hence" start a new claim; ``\\begin{aligned}`` rows are one
  chain;
* a formula whose left side is a name being defined (``\\sigma(x) = ...``, "Let ŷ = f(x, w)",
  ``J(y, \\hat{y}) = ...``, ``\\hat{y}_{ij} = ...``) is a definition, used by every later step;
  definitions written as a remark after ``\\quad`` (``|y| = \\sqrt{...}``) too;
* remarks after ``\\quad`` or in ``\\text{...}`` are ignored, and so is struck-out work in
  ``\\cancel{...}`` (the report says so).

Each step (one ``=`` between two expressions) gets a verdict: *follows* (proved by SymPy, or
checked numerically at N points), *does not follow* (a point where the two sides differ, both
values, and, where it can tell, what was dropped: a sign, a factor, a term), or *not checked*
(what could not be read). A step is judged against the line before it, so one slip does not
make every later line wrong; a line that does not follow from the line before but does from an
earlier one (the slip undone, or an "(OR)" alternative) is said to follow from that line. Each
chain that starts with a derivative ends with a *result* record: its last line against the
derivative it started from.

Numeric work (part 3 of the reference solution: lines such as ``z_{1-1} = ... = 1.3062``) is
not a derivation: ``numeric_work.py`` reads it into a worksheet on the network that the
document's parameters describe, and the worksheet checker (``chainrule.explain.worksheet``)
grades it; its report is the ``worksheet`` of the ``DerivationReport``.

Where the math is found: ``documents.py``; the verdicts and their text/JSON forms:
``derivation_report.py``; reading one formula: ``latex_reader.py``; judging one equality:
``verify.py``. This module holds the walk through the document (definitions, chains, diagnosis).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef

from chainrule.symbolic import latex_reader as lr
from chainrule.symbolic import numeric_work
from chainrule.symbolic.derivation_report import (
    FOLLOWS,
    NOT_CHECKED,
    WRONG,
    DerivationReport,
    Record,
    _one_line,
    _short,
)
from chainrule.symbolic.documents import Block, DerivationError, latex_blocks, markdown_blocks
from chainrule.symbolic.render import text
from chainrule.symbolic.verify import DIFFERS, NUMERIC, PROVED, UNKNOWN, Verification, value_at, verify

_SHOWN = {"hat_y": ("ŷ", r"\hat{y}")}  # the reader's name for ŷ, shown as the document writes it


def show(expr: sp.Basic) -> str:
    """``expr`` in one line of unicode, ŷ written ŷ (not the reader's hat_y)."""
    return text(expr, _SHOWN)


# --- the checker --------------------------------------------------------------------------------

_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)?(\s*(\\times|\\cdot)\s*10\^\{?-?\d+\}?)?\s*$")
_LEAD = re.compile(r"^\s*\\text\{\s*([^{}]*?)\s*\}\s*")


#: "Σ_j y_ij = 1", "\sum_{v=1}^{C} y_{iv} = 1": each row of the target sums to 1 (a one-hot y)
_ROWS_SUM_TO_ONE = re.compile(r"\\sum_?(?:\{\s*[a-z]\s*(?:=\s*1\s*)?\}|[a-z])?(?:\s*\^\s*(?:\{[^{}]*\}|\w))?"
                              r"\s*y_\{?[a-z]+\}?\s*=\s*1(?![\d.])")
_NUMBERING = re.compile(r"\\label\{[^{}]*\}|\\tag\{[^{}]*\}|\\(nonumber|notag)(?![a-zA-Z])")
_NETWORK_NAME = re.compile(r"_\{\d+-\d+\}")
_HEADING = re.compile(r"^\s*(#{1,6}\s+\S|\(?[a-z]\)\s*\S|\d+\)\s*$|\d+\.\s+[A-Z]|[\u2460-\u2473]"
                      r"|\\(sub)*section\b|part\b)", re.I)
_PROSE_DEFINITION = re.compile(r"\b(?:let|if|suppose|assume|where|with|define|given)\s+\$([^$]+)\$", re.I)
_CLAIMS_DERIVATIVE = re.compile(r"\\partial|\\d?frac\{\s*(?:\\mathrm\{)?d|'|\\prime|d\s*/\s*d")
_INLINE_MATH = re.compile(r"(?<![$\\])\$([^$]+)\$(?!\$)")


def _is_numeric_work(tex: str, after_numeric: bool = False) -> bool:
    """A line of numeric work (part 3: values of a network's quantities), not a derivation: it
    names a unit of a layer (``z_{1-1}``), writes a decimal number (``= 0.1037``), sets a plain
    name to a number (``x_1 = 2``), or continues (``= \\sigma(0.9136)``) numeric work."""
    if _NETWORK_NAME.search(tex):
        return True
    main = lr.split_top(tex, ("\\quad", "\\qquad"))[0]
    parts = [p.strip() for p in lr.split_top(main, ("=",))]
    if after_numeric and parts and not parts[0]:
        return True
    if any(_DECIMAL.match(p) for p in parts[1:]):
        return True
    return len(parts) >= 2 and bool(_NUMERIC.match(parts[-1])) and "\\partial" not in tex \
        and "\\frac{\\partial" not in tex and not re.search(r"[a-z]_\{?[a-z]", tex)


_DECIMAL = re.compile(r"^\s*\(?\s*-?\d*\.\d+\s*\)?(\s*(\\times|\\cdot)\s*10\^\{?-?\d+\}?)?\s*$"
                      r"|^\s*-?\d+(\.\d+)?\s*(\\times|\\cdot)\s*10\^")


@dataclass
class _Def:
    params: tuple[sp.Basic, ...]
    body: sp.Basic


def _memo_by_definitions(expand):
    """``Checker.expand`` (and ``_names``) once per (expression, names kept, definitions made so
    far): every step expands its line and the line before it, twice each (its judge, the
    undefined-names test), and a wrong step again for its diagnosis; expanding is a fifth of
    ``check``'s time on a long derivation. The answer is a function of those three,
    ``definitions_now``; each method has a cache of its own."""
    def memo(self, expr: sp.Basic, keep: frozenset = frozenset()) -> Any:
        cache = self.__dict__.setdefault("_memo_" + expand.__name__, {})
        key = (expr, keep, self.definitions_now())
        if key not in cache:
            cache[key] = expand(self, expr, keep)
        return cache[key]

    memo.__doc__, memo.__name__ = expand.__doc__, expand.__name__
    return memo


class Checker:
    """Walks the blocks in order, keeping definitions and the current chain."""

    def __init__(self) -> None:
        self.ctx = lr.Context()
        self.functions: dict[tuple[str, str], _Def] = {}  # (name, "scalar"|"vector") -> definition
        self.symbols: dict[sp.Basic, sp.Basic] = {}  # J -> its definition, |y| -> its norm
        self.indexed: dict[str, _Def] = {}  # "hat_y" -> ŷ_ij's definition over (i, j)
        self.aliases: dict[sp.Basic, sp.Symbol] = {}  # f(x, w) -> ŷ, from "Let ŷ = f(x, w)"
        self.records: list[Record] = []
        self.chain: list[tuple[int, str, sp.Basic | None]] = []  # (line, tex, expr) of the chain so far
        self.constraints: set[str] = set()
        self.seen: set[str] = set()  # names read in earlier formulas (θ first seen now is undefined)
        self.seen_now: set[str] = set()
        self.numeric_from = 0  # the line where numeric work starts, once it does
        self.numeric_last = False  # whether the block before was numeric work
        self.numbers = numeric_work.Reader()
        self.told: set[str] = set()  # conventions (σ undefined: the logistic sigmoid) already noted

    # definitions --------------------------------------------------------------------------
    def definitions_now(self) -> tuple:
        """Everything ``expand`` reads, as one hashable value: what the document has defined
        so far (names, functions, indexed names, aliases) and what the reader learnt of its
        names (vectors, sizes). Add here whatever ``expand`` comes to read."""
        return (tuple(self.symbols.items()),
                tuple((k, d.params, d.body) for k, d in self.functions.items()),
                tuple((k, d.params, d.body) for k, d in self.indexed.items()),
                tuple(self.aliases.items()), frozenset(self.ctx.vectors),
                tuple(sorted(self.ctx.sizes.items(), key=str)))

    @_memo_by_definitions
    def expand(self, expr: sp.Basic, keep: frozenset = frozenset()) -> sp.Basic:
        """Every defined name replaced by its definition (repeatedly: definitions use others).

        The sums inside a definition get fresh index names: J = Σ_i Σ_j ... used in ∂J/∂z_ij
        must not sum over the i and j of z_ij. A derivative with respect to a defined name
        (∂σ(z)/∂z with z = wx + b) is taken with that name still a variable, then the name is
        replaced. ``keep``: names (symbols, or an indexed name's label) left as they are.
        |y| of a vector the document does not define otherwise is its Euclidean norm."""
        if self.aliases:
            expr = _index_bare_vectors(expr.xreplace(self.aliases), self.ctx.vectors)
        expr = self._by_defined_variables(expr, keep)
        for _ in range(6):
            before = expr
            expr = expr.xreplace({k: _fresh(v) for k, v in self.symbols.items() if k not in keep})

            def call(e: sp.Basic) -> sp.Basic:
                vector = any(isinstance(a, sp.Symbol) and a.name in self.ctx.vectors for a in e.args)
                d = (self.functions.get((e.func.__name__, "vector")) if vector else None) or \
                    self.functions.get((e.func.__name__, "any"))
                if d is None or len(d.params) != len(e.args):
                    return e
                return _fresh(d.body).xreplace(dict(zip(d.params, e.args, strict=True)))

            expr = expr.replace(lambda e: isinstance(e, AppliedUndef), call)
            for base, d in self.indexed.items():
                if base in keep:
                    continue
                expr = expr.replace(
                    lambda e, b=base, d=d: isinstance(e, sp.Indexed) and str(e.base.label) == b
                    and len(e.indices) == len(d.params),
                    lambda e, d=d: _fresh(d.body).xreplace(dict(zip(d.params, e.indices, strict=True))))
            if expr == before:
                break
        return self._conventions(self._norms(expr))

    def _defined_variable(self, v: sp.Basic) -> Any:
        """What names ``v`` in ``keep`` when it is a defined name (z = wx + b, ŷ_i = σ(z_i))."""
        if isinstance(v, sp.Symbol) and v in self.symbols:
            return v
        if isinstance(v, sp.Indexed) and str(v.base.label) in self.indexed \
                and len(v.indices) == len(self.indexed[str(v.base.label)].params):
            return str(v.base.label)
        return None

    def _by_defined_variables(self, expr: sp.Basic, keep: frozenset) -> sp.Basic:
        def take(d: sp.Derivative) -> sp.Basic:
            names = keep | {self._defined_variable(v) for v in d.variables} - {None}
            return sp.Derivative(self.expand(d.expr, frozenset(names)), *d.variable_count).doit()

        if not expr.has(sp.Derivative):
            return expr
        return expr.replace(lambda e: isinstance(e, sp.Derivative) and any(
            self._defined_variable(v) is not None for v in e.variables), take)

    def _norms(self, expr: sp.Basic) -> sp.Basic:
        """|y| not defined by the document: √(Σ_k y_k²), over the size y's sums run to."""
        sub = {}
        for s in expr.free_symbols:
            m = re.fullmatch(r"\|(\w+)\|", getattr(s, "name", ""))
            if m and s not in self.symbols:
                base = sp.IndexedBase(m.group(1), real=True)
                k = sp.Dummy("k", **lr.INDEX)
                sub[s] = sp.sqrt(sp.Sum(base[k] ** 2, (k, 1, _size_of(expr, m.group(1)))))
        return expr.xreplace(sub) if sub else expr

    def _conventions(self, expr: sp.Basic) -> sp.Basic:
        """σ, ReLU and softplus that the document does not define mean what they mean in the
        field (the registry's formulas); f'(a) written at an argument is then evaluated."""
        def known(e: sp.Basic) -> bool:
            return isinstance(e, AppliedUndef) and len(e.args) == 1 and e.func.__name__ in _CONVENTIONS \
                and (e.func.__name__, "any") not in self.functions
        if any(known(e) for e in expr.atoms(AppliedUndef)):
            expr = expr.replace(known, lambda e: _convention(e.func.__name__)(e.args[0]))
        if expr.has(sp.Subs):
            expr = expr.replace(lambda e: isinstance(e, sp.Subs), lambda e: e.doit())
        return expr

    def _say_conventions(self, line: int, *exprs: sp.Basic) -> bool:
        """A note, the first time a step uses σ (ReLU, softplus) the document never defined,
        that it is read as the field's function. Returns False (the step is judged on)."""
        for e in sorted(set().union(*(x.atoms(AppliedUndef) for x in exprs)), key=str):
            name = e.func.__name__
            if name in _CONVENTIONS and (name, "any") not in self.functions and name not in self.told:
                self.told.add(name)
                shown, what, _ = _CONVENTIONS[name]
                self.records.append(Record(line, "note", "", detail=(
                    f"{shown} is not defined in the document: read as {what}, the field's convention")))
        return False

    def forget(self, lhs: sp.Basic) -> None:
        """A name defined again means what the new definition says, in every form it was
        defined before ("Let ŷ_i = f(x_i, w_j)" in the L2 part, "ŷ = ⟨ŷ_1, ..., ŷ_n⟩" in the
        cosine part: the cosine part's ŷ_i is not f(x_i, w_j))."""
        # (a function's new definition replaces the old one of its kind by itself; its other
        # kind stays: L(y, ŷ) = Σ_i L(y_i, ŷ_i) uses the L of numbers defined before it)
        if isinstance(lhs, sp.Indexed):
            name = str(lhs.base.label)
        elif isinstance(lhs, sp.Symbol):
            name = lhs.name
        else:
            return
        self.indexed.pop(name, None)
        for key in [k for k in self.symbols if str(k) == name]:
            del self.symbols[key]

    def define(self, lhs: sp.Basic, rhs: sp.Basic) -> bool:
        if lhs.has(sp.Derivative) or not isinstance(rhs, sp.Expr):
            return False
        self.forget(lhs)
        if isinstance(lhs, AppliedUndef) and all(isinstance(a, (sp.Symbol, sp.Indexed)) for a in lhs.args):
            # J(y, ŷ) = Σ_i ... indexes its arguments: a function of vectors; L(y, ŷ) = max(0, 1 − yŷ)
            # is a function of numbers, used as L(y_i, ŷ_i) too
            names = {a.name for a in lhs.args if isinstance(a, sp.Symbol)}
            kind = "vector" if any(str(ix.base.label) in names for ix in rhs.atoms(sp.Indexed)) else "any"
            self.functions[(lhs.func.__name__, kind)] = _Def(lhs.args, rhs)
            self.ctx.functions.add(lhs.func.__name__)
            # plain J means J(y, ŷ); dℓ/dw of ℓ(w) = log(1 + e^(−w)) means ℓ(w)
            self.symbols[sp.Symbol(lhs.func.__name__, real=True)] = lhs
            return True
        if isinstance(lhs, sp.Symbol) and lhs.name in self.ctx.vectors:
            # "Let ŷ = f(x, w)": ŷ is a function of w
            if rhs.free_symbols & {s for s in rhs.free_symbols if s.name == "w"}:
                self.constraints.add(f"depends on w:{lhs.name}")
            if isinstance(rhs, AppliedUndef):  # and f(x, w) written later is ŷ
                self.aliases[rhs] = lhs
                return True
            return False
        if isinstance(lhs, sp.Symbol):
            self.symbols[lhs] = rhs
            return True
        if isinstance(lhs, sp.Indexed) and all(isinstance(q, sp.Symbol) for q in lhs.indices):
            self.indexed[str(lhs.base.label)] = _Def(lhs.indices, rhs)
            return True
        return False

    # reading ------------------------------------------------------------------------------------
    def read(self, tex: str) -> sp.Basic:
        expr = lr.read(tex, self.ctx)
        self.seen_now |= {x.name for x in expr.free_symbols if isinstance(x, sp.Symbol)}
        for d in expr.atoms(sp.Derivative):  # ∂ŷ_i/∂w: ŷ is a function of w in this document
            for v in d.variables:
                if isinstance(v, sp.Symbol) and isinstance(d.expr, sp.Indexed):
                    self.constraints.add(f"depends on w:{d.expr.base.label}")
        return expr

    def judge(self, a: sp.Basic, b: sp.Basic) -> Any:
        try:
            return verify(self.expand(a), self.expand(b), constraints=tuple(sorted(self.constraints)))
        except (ValueError, TypeError, NotImplementedError, RecursionError, AttributeError) as exc:
            # SymPy refusing one step (an odd derivative, a form it cannot build) is a step not
            # checked, never the end of the whole report
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return Verification(UNKNOWN, reason=f"SymPy could not judge it ({first[:80]})")

    # one block ----------------------------------------------------------------------------------
    def block(self, blk: Block) -> None:
        self.seen |= self.seen_now
        self.seen_now = set()
        heading = any(_HEADING.match(line) for line in blk.before.splitlines())
        if heading or _PROSE_DEFINITION.search(blk.before):
            self._close_chain()  # judged by what held while it was written
            self.chain = []
        if heading:
            # a new part ("b) Hinge loss", "## 2."): the last part's assumptions (a one-hot y,
            # ŷ depending on w) are not this one's
            self.constraints = set()
        self._prose_definitions(blk)
        tex = _NUMBERING.sub(" ", blk.tex).strip()
        if self._assume(blk.line, tex):  # $$0 < \alpha < 1$$ on a line of its own
            return
        # a name written with an index anywhere in the line is a vector in the whole line: the
        # |y| of "|y| = \sqrt{\sum_j y_j^2}" is its norm, though |y| comes before y_j
        indexed = re.findall(r"(?<![\\A-Za-z])(\\hat\{y\}|[A-Za-z])_(?:\{[a-z, ]+\}|[a-z])(?!\s*\()", tex)
        self.ctx.vectors |= {"hat_y" if b.startswith("\\hat") else b for b in indexed}
        numeric = _is_numeric_work(tex, self.numeric_last)
        self.numeric_last = numeric
        if numeric:
            # part-3 style numeric work (w_{11-1} = 0.36, z_{1-1} = ... = 1.3062): the worksheet
            # checker grades it (numeric_work.py), after the derivation
            self._close_chain()
            self.chain = []
            if not self.numeric_from:
                self.numeric_from = blk.line
                self.records.append(Record(blk.line, "note", "", detail=(
                    "numeric work from here on (values of a network's quantities) is graded as a "
                    "worksheet: see below")))
            self.numbers.add(blk.line, tex)
            return
        struck = "\\cancel{" in tex
        if struck:
            self.records.append(Record(blk.line, "note", "", detail="struck-out work (\\cancel) ignored"))
        tex, remark = _split_remark(tex)
        if _ROWS_SUM_TO_ONE.search(remark + " " + tex) or _ROWS_SUM_TO_ONE.search(blk.before):
            # "i.e. Σ_j y_ij = 1", "[∵ Σ_v y_iv = 1]": a one-hot target, assumed from here on
            if "rows_sum_to_one" not in self.constraints:
                self.constraints.add("rows_sum_to_one")
                said = _ROWS_SUM_TO_ONE.search(remark + " " + tex) or _ROWS_SUM_TO_ONE.search(blk.before)
                written = _short(said.group(0).rsplit("=", 1)[0])
                self.records.append(Record(blk.line, "definition", "", written, "1",
                                           detail="assumed until the next part: each row of y sums to 1"))
            rest = re.sub(r"\\text\{[^{}]*\}|\\(?:because|therefore|quad|qquad)|[\s,.;:()\[\]]", "",
                          _ROWS_SUM_TO_ONE.sub("", tex))
            if not remark and not rest:  # the line says only that: nothing to judge
                return
        for name, value in _remark_definitions(remark):
            self._definition_from_text(blk.line, name, value)
        lead, tex = _lead_words(tex)
        prose = blk.before.strip().lower()
        new_claim = False
        if tex.startswith("\\Rightarrow"):
            tex, new_claim = tex[len("\\Rightarrow"):].strip(), True
        if any(w in lead for w in ("hence", "therefore", "then", "i.e")) or "hence" in prose[-40:]:
            new_claim = True
        parts: list[str] = []
        for n, row in enumerate(_aligned_rows(tex)):
            row = lr.split_top(row, ("&&",))[0]  # "&& \text{by the chain rule}": a remark
            row = " ".join(lr.split_top(row, ("&",)))  # alignment marks, not the cases' columns
            pieces = [p.strip() for p in lr.split_top(row, ("=",))]
            if n and not pieces[0]:
                pieces = pieces[1:]  # "&= C": the row continues the chain
            parts += pieces
        if struck:  # a struck-out expression is not part of the chain
            parts = [p for p in parts if "\\cancel{" not in p] or [""]
        continuation = not parts[0]
        if continuation:
            parts = parts[1:]
            if not self.chain:
                self.records.append(Record(blk.line, "step", NOT_CHECKED,
                                           rhs=_one_line(parts[0] if parts else ""),
                                           how="a line starting with = with nothing before it"))
                return
        elif not new_claim and len(parts) >= 2 and ("let" in lead or self._is_definition(parts[0])):
            self._definition(blk.line, parts)
            return
        lines = _lines(blk, parts)  # an align's rows are on lines of their own
        if len(parts) == 1 and not continuation:
            self._close_chain()
            self.chain = [(lines[0], parts[0], self._try_read(parts[0]))]
            return
        if not continuation:
            self._close_chain()
            self.chain = []
        # "= 0.25" closing a line of numbers is numeric work (graded as a worksheet) and "Σ_j p_ij = 1"
        # a fact the writer states; but a derivative claimed to be a number (∂/∂w (3w + 1) = 4) is a step
        claims_derivative = _CLAIMS_DERIVATIVE.search(tex)
        for k, part in enumerate(parts):
            if _NUMERIC.match(part) and k > 0 and not claims_derivative:
                continue
            expr = self._try_read(part)
            if not self.chain:
                self.chain = [(lines[k], part, expr)]
                continue
            self._step(lines[k], part, expr)

    def _prose_definitions(self, blk: Block) -> None:
        """"If $\\hat{y} = f(x, w)$, we get": a definition made in a sentence's inline math."""
        keyword = {m.start(1) for m in _PROSE_DEFINITION.finditer(blk.before)}
        for m in _INLINE_MATH.finditer(blk.before):
            line = blk.before_line + blk.before[:m.start()].count("\n")
            if self._assume(line, m.group(1)):
                continue
            if _CLAIMS_DERIVATIVE.search(m.group(1)) and "=" in m.group(1):
                # "So $\frac{\partial L}{\partial \hat{y}} = \hat{y} - y$." is a step, graded like one
                self.block(Block(line, m.group(1)))
                continue
            sides = lr.split_top(m.group(1), ("=",))
            if len(sides) != 2 or not sides[1].strip() or _NUMERIC.match(sides[1]):
                continue
            # "Let $ŷ = f(x, w)$", and a name given its meaning in passing ("scores $s_i = w x_i$")
            if m.start(1) in keyword or self._is_definition(sides[0]):
                self._definition_from_text(blk.before_line + blk.before[:m.start()].count("\n"), *sides)

    def _assume(self, line: int, tex: str) -> bool:
        """"Let $0 < \\alpha < 1$", "$\\delta > 0$": a range assumed for one name from here on
        (until the next part); every point a step is checked at lies inside it."""
        found = _assumed_range(tex)
        if found is None:
            return False
        name, lo, hi = found
        try:
            sym = lr.read(name, self.ctx)
        except lr.Unreadable:
            return False
        if not isinstance(sym, sp.Symbol):
            return False
        self.constraints = {c for c in self.constraints if not c.startswith(f"range:{sym.name}:")}
        self.constraints.add(f"range:{sym.name}:{lo}:{hi}")
        self.records.append(Record(line, "note", "", detail=(
            f"assumed until the next part: {_short(tex)} (every check draws {show(sym)} inside it)")))
        return True

    def _is_definition(self, lhs_tex: str) -> bool:
        try:
            lhs = lr.read(lhs_tex, self.ctx)
        except (lr.Unreadable, ValueError, TypeError, RecursionError):
            return False
        if lhs.has(sp.Derivative):
            return False
        if isinstance(lhs, AppliedUndef):
            return True
        if isinstance(lhs, sp.Symbol) and lhs.name not in lr.INDEX_LETTERS:
            return True
        if isinstance(lhs, sp.Indexed) and str(lhs.base.label) not in self.indexed and \
                all(isinstance(q, sp.Symbol) for q in lhs.indices) and str(lhs.base.label) != "y":
            return True
        return False

    def _definition(self, line: int, parts: list[str]) -> None:
        self._close_chain()
        lhs = self._try_read(parts[0])
        readable = [(p, self._try_read(p)) for p in parts[1:]]
        readable = [(p, e) for p, e in readable if e is not None]
        if lhs is not None and not readable:
            self.forget(lhs)  # "ŷ = ⟨ŷ_1, ..., ŷ_n⟩": whatever ŷ was before, it is not now
        if lhs is None or not readable:
            self.records.append(Record(line, "definition", NOT_CHECKED, _one_line(parts[0]),
                                       _one_line(parts[-1]),
                                       how="could not read it"))
            return
        # J(y, ŷ) = cos θ = Σ y_i ŷ_i / ...: a form with a name new to the document (θ) names
        # what is being defined; it is not a step to check
        def names(e: sp.Basic) -> set[str]:
            labels = {ix.base.label for ix in e.atoms(sp.Indexed)}
            return {x.name for x in e.free_symbols - labels if isinstance(x, sp.Symbol) and not x.is_integer}

        def new_names(k: int) -> set[str]:
            others = set().union(names(lhs), *(names(e) for j, (_, e) in enumerate(readable) if j != k))
            return names(readable[k][1]) - others - self.seen - {str(k) for k in self.symbols} - {"w"}
        if len(readable) >= 2:
            aliases = [p for k, (p, _) in enumerate(readable) if new_names(k)]
            readable = [r for k, r in enumerate(readable) if not new_names(k)] or readable
        else:
            aliases = []
        # the steps inside a definition (L = Σ max(...) = Σ L(y_i, ŷ_i)) use the definitions before it
        self.chain = [(line, readable[0][0], readable[0][1])]
        for p, e in readable[1:]:
            self._step(line, p, e)
        # J = cos θ = Σ y_i ŷ_i / ...: the last form that says what the name is, not another name
        body = readable[-1][1]
        for _, e in reversed(readable):
            if not (e.free_symbols - set(self.symbols)) <= {lhs} and not isinstance(e, sp.Symbol):
                body = e
                break
        readable = [(readable[0][0], body)]
        if isinstance(lhs, AppliedUndef) and any(isinstance(a, sp.Symbol) for a in lhs.args):
            for a in lhs.args:  # J(y, ŷ): y and ŷ are vectors when the body indexes them
                if isinstance(a, sp.Symbol) and any(str(ix.base.label) == a.name
                                                    for ix in readable[0][1].atoms(sp.Indexed)):
                    self.ctx.vectors.add(a.name)
        self.define(lhs, readable[0][1])
        self.records.append(Record(line, "definition", "", show(lhs), show(readable[0][1]), detail=(
            f"also written {', '.join(_short(a) for a in aliases)}, a name for it" if aliases else "")))
        self.chain = []

    def _definition_from_text(self, line: int, name: str, value: str) -> None:
        if not self._is_definition(name):  # "u = i" beside a line is a case, not a definition
            return
        try:
            lhs, rhs = lr.read(name, self.ctx), lr.read(value, self.ctx)
        except (lr.Unreadable, ValueError, TypeError, RecursionError):
            return
        if self.define(lhs, rhs):
            self.records.append(Record(line, "definition", "", show(lhs), show(rhs)))

    def _try_read(self, tex: str) -> sp.Basic | None:
        try:
            return self.read(tex)
        except lr.Unreadable as exc:
            self._last_error = str(exc)
            return None
        except (ValueError, TypeError, RecursionError) as exc:  # SymPy on odd input
            self._last_error = f"SymPy could not build it ({type(exc).__name__})"
            return None

    def _step(self, line: int, tex: str, expr: sp.Basic | None) -> None:
        prev_line, prev_tex, prev = self.chain[-1]
        rec = Record(line, "step", NOT_CHECKED, _one_line(prev_tex), _one_line(tex))
        if expr is not None and not isinstance(expr, sp.Expr):
            self._last_error = f"it reads as {show(expr)}, a comparison, not an expression"
            expr = None
        if expr is None or prev is None:
            rec.how = "could not read " + ("this line" if expr is None else "the line before") + \
                f": {getattr(self, '_last_error', '')}"
        elif self._say_conventions(line, prev, expr) or self._undefined(prev, expr):
            rec.how = f"{', '.join(self._undefined(prev, expr))} is not defined"
        else:
            v = self.judge(prev, expr)
            leaked = sorted(lr.leaked_indices(expr) - prev.free_symbols, key=str)
            if not v.ok and leaked:
                # Σ_v a_v − b_v: v used outside its sum; judge the readings the writer may have meant
                for alt, alt_tex in lr.readings(tex, self.ctx, leaked[0].name):
                    w = self.judge(prev, alt)
                    if w.ok:
                        v, expr = w, alt
                        rec.detail = (f"{leaked[0]} is used outside the sum over {leaked[0]} (brackets "
                                      f"not written); read as {_short(alt_tex)}")
                        break
                else:
                    rec.detail = f"{leaked[0]} is used outside the sum over {leaked[0]}"
            if v.ok:
                rec.verdict, rec.how = FOLLOWS, _how(v)
            elif v.status == DIFFERS:
                earlier = self._earlier(expr)
                if earlier is not None:
                    rec.verdict, rec.how = FOLLOWS, _how(earlier[1])
                    rec.follows_from_line = earlier[0]
                    rec.detail = f"from line {earlier[0]} (not from the line before, which is wrong)"
                elif (sizes := self._only_if_sizes_agree(prev, expr)):
                    # Σ_{i=1}^m = Σ_{i=1}^n "for m samples": right only if the two names are one number
                    rec.how = (f"it holds only if {' = '.join(sizes)}: the document writes these sizes "
                               "as different names; are they the same number?")
                else:
                    rec.verdict = WRONG
                    rec.how = v.describe()
                    rec.detail = "; ".join(d for d in (rec.detail, self._dropped(prev, expr)
                                                       or self._wrong_case(prev, expr, v.witness)) if d)
            else:
                rec.how = v.describe()
        self.records.append(rec)
        self.chain.append((line, tex, expr))

    def _only_if_sizes_agree(self, a: sp.Basic, b: sp.Basic) -> list[str]:
        """The size names (m, n) of a step that differs, when it holds with them one number."""
        both = self.expand(a) - self.expand(b)
        sizes = sorted({str(s) for s in both.free_symbols if isinstance(s, sp.Symbol) and s.is_integer
                        and str(s) in lr.SIZE_NAMES}, key=str)
        if "m" not in sizes and "M" not in sizes or len(sizes) < 2:
            return []
        cons = tuple(sorted(self.constraints | {"sizes_equal"}))
        return sizes if verify(self.expand(a), self.expand(b), constraints=cons).ok else []

    @_memo_by_definitions
    def _names(self, e: sp.Basic, keep: frozenset = frozenset()) -> frozenset[str]:
        """The plain names (not indices, not elements' bases) that ``e`` means, as expanded."""
        e = self.expand(e, keep)
        # ∂/∂w (wx + b) = x: b leaves with the derivative, it is not a name that vanished; but
        # ∂L/∂ŷ of an undefined L keeps L (what L is, the document does not say)
        kept = {d.expr.name for d in e.atoms(sp.Derivative) if isinstance(d.expr, sp.Symbol)}
        try:
            e = e.replace(lambda d: isinstance(d, sp.Derivative), lambda d: d.doit())
        except (ValueError, TypeError, NotImplementedError, AttributeError):
            pass
        labels = {ix.base.label for ix in e.atoms(sp.Indexed)}  # y of y_iv: elements are variables
        return frozenset(kept | {s.name for s in e.free_symbols - labels
                                 if isinstance(s, sp.Symbol) and not s.is_integer})

    def _undefined(self, a: sp.Basic, b: sp.Basic) -> list[str]:
        """Plain names (θ) that one side has, the other has not, and the document never defined."""
        na, nb = self._names(a), self._names(b)
        known = {"w"} | {str(s) for s in self.symbols} | set(self.indexed) | self.seen
        # an element (s_j) of a name that appears from nowhere: not defined, never seen before
        new_bases = {str(ix.base.label) for ix in self.expand(b).atoms(sp.Indexed)} - \
            {str(ix.base.label) for ix in self.expand(a).atoms(sp.Indexed)}
        # ∂L/∂z where nothing the document defines depends on z (ŷ = σ(z) never written): z is
        # not defined, and the derivative is not 0
        unlinked = {v.name for e in (a, b) for d in e.atoms(sp.Derivative) for v in d.variables
                    if isinstance(v, sp.Symbol) and not v.is_integer
                    and v not in self.expand(d.expr).free_symbols}
        return sorted(((na ^ nb) | new_bases | unlinked) - known)

    def _earlier(self, expr: sp.Basic):
        for line, _, e in reversed(self.chain[:-1]):
            if e is None:
                continue
            v = self.judge(e, expr)
            if v.ok:
                return line, v
        return None

    def _dropped(self, a: sp.Basic, b: sp.Basic) -> str:
        """What turns b back into a, where it is simple: a sign, a factor, or one term (named
        as the document writes it, σ(z)·x, not as its definitions expand)."""
        written_a, written_b = a, b
        a, b = self.expand(a), self.expand(b)
        cons = tuple(sorted(self.constraints))
        sizes = [s for s in (a.free_symbols | b.free_symbols)
                 if isinstance(s, sp.Symbol) and s.name in lr.SIZE_NAMES]
        for factor, words in [(-1, "a minus sign")] + [(f, f"a factor {show(f)}") for f in (
                2, sp.Rational(1, 2), *sizes, *(1 / s for s in sizes))]:
            if verify(a, factor * b, constraints=cons, points=3, prove=False).ok:
                return f"{words} was lost (the line before is {show(factor)} times this one)"
        for written in (written_a, a):
            terms = sp.Add.make_args(sp.expand(written))
            for term in terms if len(terms) > 1 else ():
                if verify(a - self.expand(term), b, constraints=cons, points=3, prove=False).ok:
                    return f"the term {show(term)} was dropped"
        for written in (written_b, b):
            terms = sp.Add.make_args(sp.expand(written))
            for term in terms if len(terms) > 1 else ():
                if verify(a, b - 2 * self.expand(term), constraints=cons, points=3, prove=False).ok:
                    return f"a minus sign was dropped: the term {show(term)} should be {show(-term)}"
        return ""

    def _wrong_case(self, a: sp.Basic, b: sp.Basic, witness: dict[str, Any]) -> str:
        """Which case of a Piecewise by index cases is wrong (where the two sides differ), and
        whether only its sign is."""
        from chainrule.symbolic.verify import _branch, _index_cases

        written = list(b.atoms(sp.Piecewise))  # the conditions as written (SymPy shortens them)
        a, b = self.expand(a), self.expand(b)
        for pw in _index_cases(b):
            k = _branch(pw, witness)
            if k is None:
                continue
            cond = pw.args[k][1]
            cases = [c for e, c in written[0].args if e is not sp.nan] if len(written) == 1 else []
            if len(cases) == len(pw.args):
                cond = cases[k]
            flipped = sp.Piecewise(*[(-e if n == k else e, c) for n, (e, c) in enumerate(pw.args)])
            cons = tuple(sorted(self.constraints))
            where = show(cond).replace(" & ", ", ")
            if verify(a, b.xreplace({pw: flipped}), constraints=cons, points=3, prove=False).ok:
                return f"a minus sign was lost in the case {where}"
            return f"the case {where} is wrong"
        return ""

    def _close_chain(self) -> None:
        """A chain that started from a derivative: its last line against that derivative."""
        if len(self.chain) < 3:
            return
        line0, tex0, first = self.chain[0]
        line, tex, last = self.chain[-1]
        if first is None or last is None or not first.has(sp.Derivative):
            return
        if any(r.kind == "step" and r.verdict == WRONG for r in self.records
               if r.line >= line0):  # only worth saying when a step in the chain went wrong
            v = self.judge(first, last)
            rec = Record(line, "result", FOLLOWS if v.ok else (WRONG if v.status == DIFFERS else NOT_CHECKED),
                         _one_line(tex0), _one_line(tex), how=_how(v) if v.ok else v.describe())
            self.records.append(rec)

    def finish(self) -> None:
        self._close_chain()


#: what an undefined σ, ReLU or softplus means: (as shown, in words, the registered formula)
_CONVENTIONS = {"sigma": ("σ", "the logistic sigmoid σ(x) = 1/(1 + e^(−x))", "sigmoid"),
                "ReLU": ("ReLU", "ReLU(x) = max(0, x)", "relu"),
                "softplus": ("softplus", "softplus(x) = log(1 + e^x)", "softplus")}


def _convention(name: str) -> sp.Lambda:
    """The registry's definition of the function an undefined name means (one place for the
    math: ``chainrule.functional``'s formulas), as a one-argument ``Lambda``."""
    from chainrule.functional import FORMULAS

    definition, _, ns = FORMULAS[_CONVENTIONS[name][2]].symbolic()
    x = ns[FORMULAS[_CONVENTIONS[name][2]].wrt]
    definition = definition.xreplace({v: 1 for k, v in ns.items() if k == "beta"})  # softplus's β = 1
    return sp.Lambda(x, definition)


_NUMBER = r"(-?\s*\d+(?:\.\d+)?|-?\s*\\infty)"
_NAME = r"(\\[A-Za-z]+|[A-Za-z])"
_LESS = r"\s*(<|\\leq?|\\leqslant)\s*"
_MORE = r"\s*(>|\\geq?|\\geqslant)\s*"


def _assumed_range(tex: str) -> tuple[str, float, float] | None:
    """``0 < \\alpha < 1``, ``\\alpha \\in (0, 1)``, ``\\delta > 0``, ``x \\le 2``: (name, low, high)."""
    def num(s: str) -> float:
        s = s.replace(" ", "")
        return float("-inf") if s == "-\\infty" else float("inf") if s == "\\infty" else float(s)

    t = tex.strip().rstrip(".,")
    if (m := re.fullmatch(_NUMBER + _LESS + _NAME + _LESS + _NUMBER, t)):
        return m.group(3), num(m.group(1)), num(m.group(5))
    if (m := re.fullmatch(_NAME + r"\s*\\in\s*[(\[]\s*" + _NUMBER + r"\s*,\s*" + _NUMBER + r"\s*[)\]]", t)):
        return m.group(1), num(m.group(2)), num(m.group(3))
    if (m := re.fullmatch(_NUMBER + _LESS + _NAME, t)):
        return m.group(3), num(m.group(1)), float("inf")
    if (m := re.fullmatch(_NUMBER + _MORE + _NAME, t)):
        return m.group(3), float("-inf"), num(m.group(1))
    if (m := re.fullmatch(_NAME + _MORE + _NUMBER, t)):
        return m.group(1), num(m.group(3)), float("inf")
    if (m := re.fullmatch(_NAME + _LESS + _NUMBER, t)):
        return m.group(1), float("-inf"), num(m.group(3))
    return None


def _size_of(expr: sp.Basic, label: str) -> sp.Basic:
    """The upper limit of a sum over the elements of ``label`` in ``expr`` (n when none)."""
    for S in expr.atoms(sp.Sum):
        for var, _lo, hi in S.limits:
            if any(str(ix.base.label) == label and var in ix.indices for ix in S.function.atoms(sp.Indexed)):
                return hi
    return sp.Symbol("n", **lr.INDEX)


def _index_bare_vectors(expr: sp.Basic, vectors: set[str]) -> sp.Basic:
    """In a term of ``Σ_i``, a vector written without its index is its i-th element:
    ``Σ_i (ŷ_i − y_i) ∂f(x, w)/∂w`` with ŷ = f(x, w) is ``Σ_i (ŷ_i − y_i) ∂ŷ_i/∂w``."""
    def one(S: sp.Sum) -> sp.Sum:
        if len(S.limits) != 1:
            return S
        i = S.limits[0][0]
        hidden = {ix: sp.Dummy() for ix in S.function.atoms(sp.Indexed)}  # y_i's y is no bare y
        body = S.function.xreplace(hidden)
        bare = {x for x in body.free_symbols
                if isinstance(x, sp.Symbol) and x.name in vectors and not x.is_integer}
        args = {x for f in body.atoms(AppliedUndef) for x in f.args}
        sub = {x: sp.IndexedBase(x.name, real=True)[i] for x in bare - args}
        if not sub:
            return S
        body = body.xreplace(sub).xreplace({d: ix for ix, d in hidden.items()})
        return sp.Sum(body, *S.limits)

    return expr.replace(lambda e: isinstance(e, sp.Sum), one) if expr.has(sp.Sum) else expr


def _lines(blk: Block, parts: list[str]) -> list[int]:
    """The line of the file where each part is written (found in order in the block's text)."""
    out, cursor, line = [], 0, blk.line
    for p in parts:
        probe = p.strip()[:30]
        k = blk.tex.find(probe, cursor) if probe else -1
        if k >= 0:
            line = blk.line + blk.tex.count("\n", 0, k)
            cursor = k + len(probe)
        out.append(line)
    return out


def _fresh(body: sp.Basic) -> sp.Basic:
    """The summation indices of ``body`` renamed to fresh dummies."""
    def rename(S: sp.Sum) -> sp.Sum:
        new = {lim[0]: sp.Dummy(lim[0].name, **lr.INDEX) for lim in S.limits}
        return sp.Sum(S.function.xreplace(new), *[(new[v], lo, hi) for v, lo, hi in S.limits])

    return body.replace(lambda e: isinstance(e, sp.Sum), rename) if body.has(sp.Sum) else body


def _how(v) -> str:
    if v.status == PROVED:
        return "proved"
    if v.status == NUMERIC:
        return f"checked numerically at {v.points} points"
    return v.describe()


def _split_remark(tex: str) -> tuple[str, str]:
    parts = lr.split_top(tex, ("\\quad", "\\qquad"))
    return parts[0].strip(), " ".join(parts[1:])


def _remark_definitions(remark: str) -> list[tuple[str, str]]:
    """``|y| &= \\sqrt{...}`` rows written beside a line."""
    out = []
    m = re.search(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", remark, re.S)
    rows = m.group(1).split("\\\\") if m else \
        lr.split_top(re.sub(r"\\text\{\s*(?:and|where|with)\s*\}", ",", remark), (",",))
    for row in rows:  # "|y| = \sqrt{...}" rows, or "p_i = \frac{...}{...}" after \qquad
        sides = lr.split_top(row.replace("&", ""), ("=",))
        if len(sides) == 2 and sides[0].strip() and sides[1].strip():
            out.append((sides[0].strip(), sides[1].strip()))
    return out


def _lead_words(tex: str) -> tuple[str, str]:
    words = []
    while True:
        m = _LEAD.match(tex)
        if not m or tex[m.end():].startswith("("):  # \text{ReLU}(x) is a function, not a word
            return " ".join(words).lower(), tex.strip()
        words.append(m.group(1))
        tex = tex[m.end():]


def _aligned_rows(tex: str) -> list[str]:
    m = re.fullmatch(r"\s*\\begin\{aligned\}(.*)\\end\{aligned\}\s*", tex, re.S)
    if not m:
        return [tex]
    return [r for r in lr.split_top(m.group(1), ("\\\\",)) if r.strip()]


# --- entry point ------------------------------------------------------------------------------

def check_derivation(path: str | Path) -> DerivationReport:
    """Grade the derivation in ``path`` (``.md`` or ``.tex``); see the module doc.

    Raises ``DerivationError`` (a ``ValueError``, one line with the line number) when the file
    cannot be used at all, ``OSError`` when it cannot be read.
    """
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    try:
        is_tex = path.suffix.lower() in (".tex", ".latex")
        blocks = latex_blocks(source) if is_tex else markdown_blocks(source)
    except DerivationError as exc:  # "line 1: $$ opened here is never closed": say in which file
        raise DerivationError(f"{path}: {exc}") from None
    if not blocks:
        raise DerivationError(f"{path}: no display math ($$ ... $$) found")
    checker = Checker()
    for blk in blocks:
        try:
            checker.block(blk)
        except lr.Unreadable as exc:
            checker.records.append(Record(blk.line, "step", NOT_CHECKED, how=str(exc)))
            checker.chain = []
        except (ValueError, TypeError, NotImplementedError, RecursionError) as exc:
            # SymPy refusing a form (∂/∂(x + 1)): this formula is not checked, the rest is
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            checker.records.append(Record(blk.line, "step", NOT_CHECKED,
                                          how=f"SymPy could not read it ({first[:80]})"))
            checker.chain = []
    checker.finish()
    for r in checker.records:  # the reader's name for ŷ in counterexamples: as the document writes it
        r.how, r.detail = r.how.replace("hat_y", "ŷ"), r.detail.replace("hat_y", "ŷ")
    report = DerivationReport(str(path), checker.records)
    if checker.numeric_from:
        _grade_numbers(report, checker.numbers.work)
    return report


def _grade_numbers(report: DerivationReport, work: numeric_work.NumericWork) -> None:
    """Part 3: the document's numbers graded by the worksheet checker, on the network its
    parameters describe; why not, where they do not describe one."""
    from chainrule.explain.network import NetworkFileError
    from chainrule.explain.worksheet import WorksheetError

    try:
        report.worksheet = numeric_work.grade(work, report.source)
    except (numeric_work.NotANetwork, NetworkFileError, WorksheetError) as exc:
        report.records.append(Record(work.first_line, "note", "", detail=(
            f"the numeric work is not graded: {exc}")))
        return
    for w in work.unknown:
        report.records.append(Record(w.line, "note", "", detail=(
            f"{w.name} = {w.text} is not graded: the network the document's parameters describe "
            f"has no quantity of that name")))


__all__ = ["DerivationError", "DerivationReport", "Record", "check_derivation", "FOLLOWS", "WRONG",
           "NOT_CHECKED", "UNKNOWN", "value_at"]
