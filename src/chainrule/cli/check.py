"""``chainrule check WORKSHEET.toml``: grade hand-worked values (exit 0 all right, 1 something wrong)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="grade a hand-worked forward/backward pass",
        description="Grade each value of a worksheet: correct to the digits written, off only by "
        "carried rounding, or wrong (with the exact value, the chain-rule expression and "
        "the earlier wrong value that caused it). A derivation (.md with $$ math, or .tex) is "
        "graded step by step, and its numeric work as a worksheet. Exit code 0 when nothing is "
        "wrong, 1 when something is, 2 for unusable input.",
    )
    p.add_argument(
        "worksheet",
        nargs="+",
        metavar="WORKSHEET.toml|DERIVATION.md|.tex",
        help="worksheet file (or the name of a shipped one, e.g. reference-worksheet), or a "
        "derivation in Markdown with $$ math or in LaTeX, graded step by step (symbolic extra); "
        "several files are graded in turn in one run (a class's sheets), each report in order",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE (atomically)")
    p.set_defaults(handler=run)


_DERIVATION = (".md", ".markdown", ".tex", ".latex")


def run(args: argparse.Namespace) -> int:
    import json

    from chainrule._io import atomic_write_text

    files = list(args.worksheet)
    targets = [_find(name) for name in files]  # every file found before any is graded
    if len(files) == 1:
        report = _grade(targets[0])
        text = report.to_text() if args.format == "text" else report.to_json()
        _write(args, text, atomic_write_text)
        return report.exit_code
    # a class's sheets: each graded in turn, one unusable sheet said on stderr, the rest graded
    reports, unusable = [], []
    for name, target in zip(files, targets, strict=True):
        try:
            reports.append((name, _grade(target)))
        except (ValueError, OSError) as exc:
            said = " ".join(str(exc).split())
            unusable.append(said if said.startswith(str(name)) else f"{name}: {said}")
    wrong = sum(1 for _, r in reports if r.exit_code)
    summary = (f"{len(files)} files: {wrong} with something wrong, {len(reports) - wrong} with nothing "
               f"wrong, {len(unusable)} unusable")
    if args.format == "text":
        text = "\n".join(r.to_text() for _, r in reports) + f"\n{summary}\n"
    else:
        text = json.dumps({"schema": "chainrule.check-batch", "version": 1, "summary": summary,
                           "reports": [{"file": name, **json.loads(r.to_json())} for name, r in reports],
                           "unusable": unusable}, indent=2, ensure_ascii=False) + "\n"
    _write(args, text, atomic_write_text)
    for line in unusable:
        print(f"chainrule: error: check: {line}", file=sys.stderr)
    return 2 if unusable else (1 if wrong else 0)


def _write(args: argparse.Namespace, text: str, atomic_write_text) -> None:
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)


def _find(name: str) -> tuple[str, object]:
    """("derivation", path) or ("worksheet", path); a missing file (or the symbolic extra a
    derivation needs) is a CommandError here, before anything is graded."""
    from pathlib import Path

    from chainrule.cli import CommandError
    from chainrule.cli.explain import resolve_file

    if not str(name).lower().endswith(_DERIVATION):
        return "worksheet", resolve_file(name, "worksheet")
    try:
        import chainrule.symbolic.derivation_check  # noqa: F401
    except ImportError:
        raise CommandError("check: grading a derivation needs the symbolic extra: "
                           "pip install 'chainrule[symbolic]'") from None
    if not Path(name).is_file():  # worded as a missing worksheet is (resolve_file)
        where = " (it is a directory)" if Path(name).is_dir() else ""
        raise CommandError(f"derivation {name!r} not found{where}")
    return "derivation", name


def _grade(target: tuple[str, object]):
    kind, path = target
    if kind == "derivation":  # the symbolic extra only where a derivation needs it
        from chainrule.symbolic.derivation_check import check_derivation

        return check_derivation(path)
    from chainrule.explain.worksheet import check_worksheet

    return check_worksheet(path)
