"""The verdicts of a checked derivation: one ``Record`` per step, result, definition or note, and
the ``DerivationReport`` of a document (its text and JSON forms). ``derivation_check`` fills it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FOLLOWS = "follows"
WRONG = "does not follow"
NOT_CHECKED = "not checked"




@dataclass
class Record:
    """One verdict. ``kind``: ``step``, ``result``, ``definition`` or ``note``. ``lhs`` and
    ``rhs``: both sides as read, whole (``text()`` shortens them to a line)."""

    line: int
    kind: str
    verdict: str
    lhs: str = ""
    rhs: str = ""
    how: str = ""
    detail: str = ""
    follows_from_line: int | None = None

    def text(self) -> str:
        head = f"line {self.line}: "
        lhs, rhs = _short(self.lhs), _short(self.rhs)
        if self.kind == "definition":
            if self.verdict == NOT_CHECKED:
                return head + f"definition {lhs} = {rhs} not read ({self.how})"
            return head + f"definition {lhs} = {rhs}" + (f" ({self.detail})" if self.detail else "")
        if self.kind == "note":
            return head + self.detail
        what = "result" if self.kind == "result" else "step"
        body = f"{what} {lhs} = {rhs}" if self.lhs or self.rhs else what
        verdict = self.verdict + (f" ({self.how})" if self.how else "")
        extra = f"; {self.detail}" if self.detail else ""
        return f"{head}{verdict}: {body}{extra}"


@dataclass
class DerivationReport:
    """All verdicts of one document, in order."""

    source: str
    records: list[Record] = field(default_factory=list)
    worksheet: Any = None  # the part-3 grading, a chainrule.explain.worksheet.CheckReport

    def count(self, kind: str, verdict: str) -> int:
        return sum(r.kind == kind and r.verdict == verdict for r in self.records)

    @property
    def steps(self) -> list[Record]:
        return [r for r in self.records if r.kind == "step"]

    @property
    def exit_code(self) -> int:
        wrong = any(r.verdict == WRONG for r in self.records)
        if self.worksheet is not None and self.worksheet.exit_code:
            wrong = True
        return 1 if wrong else 0

    def summary(self) -> str:
        steps = self.steps
        plural = "" if len(steps) == 1 else "s"
        return (f"{len(steps)} step{plural}: {self.count('step', FOLLOWS)} following, "
                f"{self.count('step', WRONG)} not following, {self.count('step', NOT_CHECKED)} not checked; "
                f"results: {self.count('result', FOLLOWS)} right, {self.count('result', WRONG)} wrong")

    def to_text(self) -> str:
        lines = [f"{self.source}: derivation", *(r.text() for r in self.records), self.summary()]
        out = "\n".join(lines) + "\n"
        if self.worksheet is not None:
            out += "\n" + self.worksheet.to_text()
        return out

    def to_json(self) -> str:
        doc: dict[str, Any] = {"schema": "chainrule.derivation-check", "version": 1, "source": self.source,
                               "records": [asdict(r) for r in self.records], "summary": self.summary()}
        if self.worksheet is not None:
            doc["worksheet"] = json.loads(self.worksheet.to_json())
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _one_line(tex: str) -> str:
    """Both sides as read, whole (the JSON records keep them so; the text report shortens)."""
    return " ".join(tex.split())


def _short(tex: str, width: int = 120) -> str:
    """One line of at most ``width`` characters; a shortened one ends in " …" (never a cut that
    reads like the writer's own text)."""
    one = " ".join(tex.split())
    return one if len(one) <= width else one[:width - 2].rstrip() + " …"
