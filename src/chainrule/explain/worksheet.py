"""Grade a hand-worked backward pass: each value correct, off by carried rounding, or wrong.

A worksheet is TOML::

    network = "reference.toml"    # a network file (relative to the worksheet), or "reference"
                                  # (the built-in one); or a [network] table written inline
    # notation = "matrix"         # if the names below are W1[j,i]-style
    # lr = 0.5                    # to grade an update step too: "w_{11-1}^{new}", "L^{new}"

    [values]                      # names as `chainrule explain` prints them
    "z_{1-1}" = 1.3062
    "dL/dw_{31-1}" = -0.00285
    "dyhat/dz_{1-2}" = [0.0789, 0.2043]             # written twice: both graded, the last one used
    "dL/dw_{11-1}" = { value = 2.8e-5, work = "dL/dz_{2-1} * dz_{2-1}/dw_{11-1}" }
    "dL/dB_{1-1}" = "0.0140"                        # a string keeps trailing zeros

Verdicts, per written value, with a tolerance of half a unit in its last written place:

- correct: the exact value, rounded to the digits written, is what was written;
- rounding: off only by carried rounding, i.e. recomputed from the sheet's own earlier
  (rounded) values, through the engine's own primitives, it is right;
- wrong: neither. The report gives the exact value and the chain-rule expression it should have
  been; when the step itself was done right from an earlier value on the sheet that is wrong,
  that earlier value is named as the cause.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chainrule.explain.model import Explanation, Quantity
from chainrule.explain.network import (
    NetworkFileError,
    example_paths,
    explain_network,
    load_network,
    parse_network,
    read_toml,
)
from chainrule.explain.numbers import decimals_written
from chainrule.explain.render_common import show_factor

CORRECT, ROUNDING, WRONG = "correct", "rounding", "wrong"
_LABELS = {CORRECT: "correct", ROUNDING: "rounding", WRONG: "WRONG"}
_TOP_KEYS = {"network", "notation", "lr", "values", "title", "student", "description", "aliases"}


class WorksheetError(ValueError):
    """A worksheet that cannot be graded; the message names the file, the key and what was expected."""


@dataclass
class Verdict:
    """The grade of one written value."""

    name: str
    written: str  # the number as written on the sheet
    claimed: float
    status: str  # correct | rounding | wrong
    exact: float
    decimals: int
    expression: str = ""  # the chain-rule (or forward) expression, symbolic = numbers
    recomputed: float | None = None  # from the sheet's own earlier values
    causes: list[str] = field(default_factory=list)  # earlier wrong values this one inherits
    note: str = ""
    origins: list[str] = field(default_factory=list)  # the original slips, however far up
    sign_error: bool = False  # the exact value's negative
    own_error: float | None = None  # where it also misses the sheet's own values, by less than it inherits
    label: str = ""  # the sheet's own name for it, where that is an alias (out_h1)
    attempt: int = 1
    attempts: int = 1

    def _precise(self, value: float) -> str:
        """``value`` with more significant digits than the sheet wrote (at least 6), so that it
        never looks the same as a written value it differs from (-0.019049119 vs -0.0190491183)."""
        mantissa = self.written.lower().partition("e")[0].replace("_", "").lstrip("+-").replace(".", "")
        written_digits = len(mantissa.lstrip("0")) or 1
        return f"{value:.{max(6, written_digits + 1)}g}"

    def message(self) -> str:
        mantissa, _, exponent = self.written.lower().partition("e")
        if exponent:  # written as 2.8e-5: the exact value in the same form
            shown_exact = f"{self.exact:.{len(mantissa.partition('.')[2])}e}"
        else:
            shown_exact = f"{self.exact:.{max(self.decimals, 0)}f}"
        shown = f"{self.label} ({self.name})" if self.label and self.label != self.name else self.name
        head = f"{_LABELS[self.status]:<9} {shown} = {self.written}"
        if self.attempts > 1:
            head += f" (attempt {self.attempt} of {self.attempts})"
        if self.status == CORRECT:
            text = head
        elif self.status == ROUNDING:
            text = (
                f"{head}: exact {shown_exact} ({self._precise(self.exact)}); from the sheet's own earlier "
                f"values it is {self._precise(self.recomputed)}, so it is off only by carried rounding"
            )
        else:
            text = f"{head}: exact {shown_exact} ({self._precise(self.exact)})"
            if self.expression:
                text += f" = {self.expression}"
            if self.sign_error:
                text += "; a sign error: the written value is the exact value's negative"
            if self.causes and self.own_error is not None:
                text += (
                    f"; it is wrong mostly because {', '.join(self.causes)} on the sheet is wrong "
                    f"(the sheet's own values give {self._precise(self.recomputed)}: "
                    f"this step adds only {self.own_error:.2g})"
                )
            elif self.causes:
                text += (
                    f"; the step itself is right (the sheet's own values give "
                    f"{self._precise(self.recomputed)}): it is wrong because "
                    f"{', '.join(self.causes)} on the sheet is wrong"
                )
                inherited = [o for o in self.origins if o not in self.causes]
                if inherited:
                    text += f", itself carried from the original slip {', '.join(inherited)}"
            elif self.recomputed is not None:
                text += f"; the sheet's own earlier values give {self._precise(self.recomputed)}"
        if self.note:
            text += f". Note: {self.note}"
        return text


@dataclass
class CheckReport:
    """All verdicts of a worksheet, in the order of the computation."""

    worksheet: str
    title: str
    verdicts: list[Verdict]

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def ok(self) -> bool:
        return self.count(WRONG) == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        n = len(self.verdicts)
        return (
            f"{n} value{'s' if n != 1 else ''} checked: {self.count(CORRECT)} correct, "
            f"{self.count(ROUNDING)} off only by carried rounding, {self.count(WRONG)} wrong"
        )

    def to_text(self) -> str:
        lines = [f"Checking {self.worksheet} ({self.title})", ""]
        lines += ["  " + v.message() for v in self.verdicts]
        lines += ["", self.summary()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "schema": "chainrule.check",
                    "version": 1,
                    "worksheet": self.worksheet,
                    "title": self.title,
                    "summary": {s: self.count(s) for s in (CORRECT, ROUNDING, WRONG)},
                    "verdicts": [asdict(v) for v in self.verdicts],
                },
                indent=2,
            )
            + "\n"
        )


# --- reading a worksheet ------------------------------------------------------------------------

_ENTRY = re.compile(r"""^\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=\s*(.*?)\s*$""")


def _strip_comment(text: str) -> str:
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#":
            return text[:i].rstrip()
    return text


def written_literals(source: str) -> dict[str, list[str]]:
    """The numbers of the [values] table exactly as written (TOML parsing drops trailing zeros)."""
    found: dict[str, list[str]] = {}
    in_values = False
    for raw in source.splitlines():
        line = _strip_comment(raw).strip()
        if line.startswith("["):
            in_values = line.replace(" ", "") == "[values]"
            continue
        if not in_values:
            continue
        m = _ENTRY.match(line)
        if not m:
            continue
        key = m.group(1) if m.group(1) is not None else (m.group(2) if m.group(2) is not None else m.group(3))
        if m.group(1) is not None:
            key = key.replace('\\"', '"').replace("\\\\", "\\")
        rest = m.group(4)
        if rest.startswith("["):
            found[key] = [p.strip().strip("\"'") for p in rest.strip("[]").split(",") if p.strip()]
        elif rest.startswith("{"):
            v = re.search(r"""\bvalue\s*=\s*("[^"]*"|'[^']*'|[^,}\s]+)""", rest)
            if v:
                found[key] = [v.group(1).strip("\"'")]
        else:
            found[key] = [rest.strip("\"'")]
    return found


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise WorksheetError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            v = float(value.replace("_", ""))
        except ValueError:
            raise WorksheetError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(v):
            raise WorksheetError(f"{where}: expected a finite number, got {value!r}")
        return v
    raise WorksheetError(
        f"{where}: expected a number, a list of numbers (several attempts) or "
        f'{{ value = ..., work = "..." }}, got {value!r}'
    )


def _literal_ok(text: str) -> bool:
    try:
        float(text.replace("_", ""))
        return True
    except ValueError:
        return False


def canonical_name(name: str, e: Explanation) -> str:
    """Spellings a student may write for a quantity's name (spaces, b/B, \\hat{y}, y_{1-L}, a
    path's term written ``dL/dy_{1-1} via z_{1-2}``)."""
    n = "".join(re.sub(r"\s+via\s+", "|", name, count=1).split())
    for a, b in (
        ("\\hat{y}", "yhat"),
        ("ŷ", "yhat"),
        ("∂", "d"),
        ("\\partial", "d"),
        ("λ", "L"),
        ("dλ", "dL"),
    ):
        n = n.replace(a, b)
    if n in e:
        return e.resolve(n)
    alt = re.sub(r"\bb_\{", "B_{", n).replace("/db_{", "/dB_{")
    if alt in e:
        return e.resolve(alt)
    if e.network is not None and e.network.layers[-1].activation is not None:  # y_{j-L} is yhat
        top = len(e.network.layers)
        alt2 = re.sub(
            rf"y_\{{(\d+)-{top}\}}",
            lambda m: "yhat" if len(e.network.output_names) == 1 else f"yhat_{m.group(1)}",
            alt,
        )
        if alt2 in e:
            return e.resolve(alt2)
    return n


@dataclass
class _Entry:
    name: str
    written: str
    value: float
    attempt: int
    attempts: int
    work: str = ""
    label: str = ""  # the name as the sheet writes it (an alias: out_h1)


def _entries(values: dict, literals: dict[str, list[str]], e: Explanation, source: str) -> list[_Entry]:
    entries = []
    for key, raw in values.items():
        where = f'{source}: [values] "{key}"'
        name = canonical_name(key, e)
        if name not in e and e.lr is None and re.search(r"\^\{?new\}?|_new\b", key):
            raise WorksheetError(
                f"{where}: an updated value, but the worksheet gives no learning rate: add "
                f"lr = <the learning rate, e.g. 0.5> at the top of the worksheet to grade updated weights"
            )
        if name not in e:
            close = difflib.get_close_matches(name, list(e.values()), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise WorksheetError(
                f"{where}: unknown name; expected a quantity that `chainrule explain` "
                f"prints for this network (such as z_{{1-1}} or dL/dw_{{11-1}}){hint}"
            )
        compact = "".join(re.sub(r"\s+via\s+", "|", key, count=1).split())
        label = key if e.resolve(compact) != compact else ""  # the exercise's own name (an alias)
        works = [""]
        if isinstance(raw, dict):
            extra = set(raw) - {"value", "work"}
            if extra or "value" not in raw:
                raise WorksheetError(
                    f'{where}: expected {{ value = <number>, work = "<expression>" }}, got keys {sorted(raw)}'
                )
            if not isinstance(raw.get("work", ""), str):
                raise WorksheetError(f"{where}: work: expected a string, got {raw['work']!r}")
            works = [raw.get("work", "")]
            raw = raw["value"]
        attempts = raw if isinstance(raw, list) else [raw]
        if not attempts:
            raise WorksheetError(f"{where}: expected at least one number, got an empty list")
        written = literals.get(key, [])
        for k, item in enumerate(attempts, start=1):
            value = _number(item, where)
            text = (
                written[k - 1]
                if len(written) == len(attempts) and _literal_ok(written[k - 1])
                else (item if isinstance(item, str) else repr(float(item)))
            )
            if abs(float(text.replace("_", "")) - value) > 1e-12 * max(1.0, abs(value)):
                text = repr(value)  # the literal scan misread a line: trust the parsed value
            entries.append(
                _Entry(name, text, value, k, len(attempts), works[0] if k == len(attempts) else "", label)
            )
    return entries


def _resolve_network(doc: dict, base: Path, source: str):
    net = doc.get("network")
    if net is None:
        raise WorksheetError(
            f'{source}: network: expected a network file name (or "reference"), or a [network] table'
        )
    if isinstance(net, dict):
        return parse_network(net, source=f"{source} [network]")
    if not isinstance(net, str):
        raise WorksheetError(f"{source}: network: expected a file name or a table, got {net!r}")
    if net in ("reference", "builtin:reference"):
        return load_network(None)
    path = Path(net)
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        shipped = find_example(net)
        if shipped is None:
            raise WorksheetError(f"{source}: network: file {net!r} not found (looked for {path})")
        path = shipped
    return load_network(path)


def find_example(name: str) -> Path | None:
    """A file shipped in src/chainrule/examples, by file name or stem ("reference", "reference.toml")."""
    for path in example_paths():
        if name in (path.name, path.stem):
            return path
    return None


def check_worksheet(path: str | os.PathLike) -> CheckReport:
    """Grade the worksheet at ``path`` against the exact values of its network."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorksheetError(f"{source}: not a UTF-8 text file: {exc}") from None
    doc = read_toml(path)
    return check(doc, source=source, base=path.parent, raw=text)


def check(doc: dict, source: str = "<worksheet>", base: Path | None = None, raw: str = "") -> CheckReport:
    """Grade a parsed worksheet document (``raw``, its text, recovers trailing zeros)."""
    if "values" not in doc and {"data", "layers", "sizes"} & set(doc):
        raise WorksheetError(
            f"{source}: this is a network file, not a worksheet (it has no [values] to grade): "
            f"explain it with `chainrule explain {source}`"
        )
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise WorksheetError(
            f"{source}: {unknown[0]}: unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}"
        )
    notation = doc.get("notation", "reference")
    if notation not in ("reference", "matrix"):
        raise WorksheetError(f"{source}: notation: expected 'reference' or 'matrix', got {notation!r}")
    values = doc.get("values")
    if not isinstance(values, dict) or not values:
        raise WorksheetError(f"{source}: [values]: expected a table of name = number, got {values!r}")
    try:
        spec = _resolve_network(doc, base or Path("."), source)
    except NetworkFileError:
        raise
    lr = doc.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr)):
        raise WorksheetError(f"{source}: lr: expected a number (the learning rate of the update), got {lr!r}")
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise WorksheetError(f'{source}: [aliases]: expected a table of name = "quantity", got {aliases!r}')
    e = explain_network(spec, notation=notation, lr=lr)
    try:
        e.add_aliases(aliases)
    except ValueError as exc:
        raise WorksheetError(f"{source}: [aliases] {exc}") from None
    entries = _entries(values, written_literals(raw), e, source)
    return grade(e, entries, source)


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


class _Sheet:
    """The sheet's own values, and every value it leaves out recomputed from them.

    A student who writes out_h1 = 0.59 and then dE/dw5 without writing dnet_o1/dw5 = out_h1 has
    used 0.59 in it: a value the sheet does not write is recomputed (through the engine's own
    primitives, ``Quantity.recompute``) from the values it does write, step by step back to the
    givens, which are exact."""

    def __init__(self, e: Explanation, values: dict[str, float]):
        self.e, self.values = e, values

    def lookup(self, exact: frozenset[str] = frozenset()):
        """A lookup of every quantity: the sheet's value, except the names in ``exact``."""
        memo: dict[str, float] = {}

        def get(name: str) -> float:
            if name not in memo:
                q = self.e[name]
                if name in self.values and name not in exact:
                    memo[name] = self.values[name]
                elif name in self.values or q.is_given or q.recompute is None:
                    memo[name] = q.value
                else:
                    memo[name] = q.recompute(get)
            return memo[name]

        return get

    def sources(self, q: Quantity) -> list[str]:
        """The written values ``q`` is computed from, through any values the sheet leaves out."""
        found: dict[str, None] = {}
        stack, seen = list(q.uses), set()
        while stack:
            name = stack.pop(0)
            if name in seen or name == q.name or name not in self.e:
                continue
            seen.add(name)
            if name in self.values:
                found[name] = None
            elif not self.e[name].is_given:
                stack.extend(self.e[name].uses)
        return list(found)


def grade(e: Explanation, entries: list[_Entry], source: str = "<worksheet>") -> CheckReport:
    """Grade each entry; blame an earlier wrong value only when its error explains the gap.

    For a value off by more than its written digits allow, the step is recomputed (through the
    engine's own primitives: ``Quantity.recompute``) three ways: from the sheet's own earlier
    values; from those values with every earlier WRONG one replaced by its exact value (the
    student's honest rounding kept); and, per wrong earlier value, with only that one kept.
    The last measures each earlier error propagated through this step's own local derivatives.
    If the honest recomputation already gives the written value, the earlier errors explain
    nothing here (a truncation 0.7 units in its last place, a term multiplied by 0): the step
    is judged on its own, off by carried rounding. Otherwise, if the sheet's values give it, the
    earlier values whose errors move the result are the causes, traced up to the original slip.
    """
    order = {q.name: k for k, q in enumerate(e.quantities)}
    entries = sorted(entries, key=lambda en: (order[en.name], en.attempt))
    sheet = _Sheet(e, {en.name: en.value for en in entries if en.attempt == en.attempts})
    final: dict[str, Verdict] = {}
    verdicts = []
    for en in entries:
        q = e[en.name]
        d = decimals_written(en.written)
        tol = 0.5 * 10.0 ** (-d) * (1 + 1e-9) + 1e-15
        v = Verdict(
            en.name, en.written, en.value, CORRECT, q.value, d, attempt=en.attempt, attempts=en.attempts
        )
        v.label = en.label
        if not _close(en.value, q.value, tol):
            v.expression = expression(q, e)
            v.status = WRONG
            if q.recompute is not None:
                _judge_step(v, q, sheet, final, tol)
            if v.status == WRONG and not v.causes and _close(en.value, -q.value, tol):
                v.sign_error = True
        if en.work:
            v.note = _work_note(en.work, q, e)
        if en.attempt == en.attempts:
            final[en.name] = v
        verdicts.append(v)
    return CheckReport(source, e.title, verdicts)


def _as_written(v: Verdict) -> str:
    return f"{v.label or v.name} = {v.written}"


def _judge_step(v: Verdict, q: Quantity, sheet: _Sheet, final: dict[str, Verdict], tol: float) -> None:
    v.recomputed = q.recompute(sheet.lookup())
    wrong = [u for u in sheet.sources(q) if u in final and final[u].status == WRONG]
    if not wrong:
        if _close(v.claimed, v.recomputed, tol):
            v.status = ROUNDING
        return
    honest = q.recompute(sheet.lookup(exact=frozenset(wrong)))
    if _close(v.claimed, honest, tol):  # the earlier errors do not reach this value's digits
        v.status, v.recomputed = ROUNDING, honest
        return
    if not _close(v.claimed, v.recomputed, tol):
        own, inherited = v.claimed - v.recomputed, v.recomputed - honest
        if abs(inherited) <= abs(own):
            return  # a slip in this step itself: it explains more than the earlier errors do
        v.own_error = own  # off the sheet's own values too, but the earlier error is the larger
    causes = []
    for u in wrong:  # u's error alone, propagated through this step
        alone = q.recompute(sheet.lookup(exact=frozenset(w for w in wrong if w != u)))
        if not _close(alone, honest, tol):
            causes.append(u)
    causes = causes or wrong  # only together do they move it
    v.causes = [_as_written(final[u]) for u in causes]
    origins: list[str] = []
    for u in causes:
        for origin in final[u].origins or [_as_written(final[u])]:
            if origin not in origins:
                origins.append(origin)
    v.origins = origins


def _written(entries: list[_Entry], name: str) -> str:
    for en in entries:
        if en.name == name and en.attempt == en.attempts:
            return en.written
    return "?"


def expression(q: Quantity, e: Explanation, digits: int = 6) -> str:
    """How the quantity is computed, with the exact factors: 'dL/dz_{1-1} * x_3 = 0.00142 x (-2.06)',
    or its closed form: 'yhat * (1 - yhat) = 0.713729 * (1 - 0.713729)'."""
    if q.terms:
        sym = " + ".join(" * ".join(t) for t in q.terms)
        num = " + ".join(" x ".join(show_factor(n, e, digits) for n in t) for t in q.terms)
        return f"{sym} = {num}"
    if q.equals:
        return q.equals
    if q.closed_form is not None:  # sigmoid'(z_{1-2}) = yhat * (1 - yhat) = 0.713729 * (1 - 0.713729)
        cf = q.closed_form
        num = cf.with_numbers(lambda n: show_factor(n, e, digits))
        return " = ".join(p for p in (q.formula, cf.with_names(), num) if p)
    return q.formula


def _work_typo(work: str) -> str:
    """What in a ``work`` string is not a sum of products of names ('' when nothing): a power
    ``**``, an unbalanced parenthesis, an operator with nothing after it."""
    if "**" in work:
        return "'**' is a power; a chain-rule product is written with '*'"
    if work.count("(") != work.count(")"):
        return "its parentheses are unbalanced"
    if re.search(r"[*+]\s*$|^\s*[*+]|[*+]\s*[*+]", work):
        return "an operator has nothing on one side"
    return ""


def _work_note(work: str, q: Quantity, e: Explanation) -> str:
    """Compare the written work with the chain rule: factors it should not name, and chain-rule
    terms it leaves out (a hidden unit that feeds two units needs two terms)."""
    expected = [n for t in q.terms for n in t]
    typo = _work_typo(work)
    if not expected:
        return typo and f"the work cannot be read: {typo}"
    if typo:  # read as a product anyway, and say what was assumed
        rule = f"the chain rule for {q.name} is {' + '.join(' * '.join(t) for t in q.terms)}"
        return f"the work cannot be read as written: {typo}; {rule}"
    # a path's named term (dE_o1/dout_h1, dL/dy_{1-1}|z_{1-2}) written for its product
    paths = {
        p.name: p.terms[0]
        for p in e.quantities
        if len(q.terms) > 1 and p.kind == "chain" and len(p.terms) == 1 and p.terms[0] in q.terms
    }

    def factors(text: str) -> list[str]:
        out = []
        for f in re.split(r"[\s*·×()]+|\bx\b", text):
            if f.strip():
                name = canonical_name(f, e)
                out += paths.get(name, (name,))
        return out

    tokens = [f for term in re.split(r"\+", work) for f in factors(term)]
    named = [t for t in tokens if re.search(r"[A-Za-z]", t)]
    wrong = [t for t in named if t not in expected]
    rule = f"the chain rule for {q.name} is {' + '.join(' * '.join(t) for t in q.terms)}"
    if not wrong:
        written_terms = [frozenset(factors(term)) for term in re.split(r"\+", work) if term.strip()]
        missing = [t for t in q.terms if frozenset(t) not in written_terms]
        if missing and len(q.terms) > 1:
            left_out = " + ".join(" * ".join(t) for t in missing)
            n = len(q.terms)
            plural = "s" if len(missing) > 1 else ""
            return (
                f"the work leaves out the chain-rule term{plural} {left_out}: {q.name} sums "
                f"{n} terms, one per path; {rule}"
            )
        return ""
    unknown = [t for t in wrong if t not in e]
    text = f"the work names {', '.join(wrong)}"
    if unknown:
        text += (
            f" ({unknown[0]} is not a quantity of this network)"
            if len(unknown) == 1
            else f" ({', '.join(unknown)} are not quantities of this network)"
        )
    return text + f"; {rule}"
