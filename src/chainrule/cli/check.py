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
        metavar="WORKSHEET.toml|DERIVATION.md|.tex",
        help="worksheet file (or the name of a shipped one, e.g. reference-worksheet), or a "
        "derivation in Markdown with $$ math or in LaTeX, graded step by step (symbolic extra)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE (atomically)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chainrule._io import atomic_write_text
    from chainrule.cli.explain import resolve_file
    from chainrule.explain.worksheet import check_worksheet

    if str(args.worksheet).lower().endswith((".md", ".markdown", ".tex", ".latex")):
        report = _derivation(args.worksheet)  # a written derivation, not a worksheet
    else:
        report = check_worksheet(resolve_file(args.worksheet, "worksheet"))
    text = report.to_text() if args.format == "text" else report.to_json()
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return report.exit_code


def _derivation(path: str):
    try:
        from chainrule.symbolic.derivation_check import check_derivation
    except ImportError:
        from chainrule.cli import CommandError

        raise CommandError("check: grading a derivation needs the symbolic extra: "
                           "pip install 'chainrule[symbolic]'") from None
    from pathlib import Path

    if not Path(path).is_file():  # worded as a missing worksheet is (resolve_file)
        from chainrule.cli import CommandError

        where = " (it is a directory)" if Path(path).is_dir() else ""
        raise CommandError(f"derivation {path!r} not found{where}")
    return check_derivation(path)
