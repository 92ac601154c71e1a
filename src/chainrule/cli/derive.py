"""``chainrule derive NAME``: an activation's or loss's definition, derivative and chain rule."""
from __future__ import annotations

import argparse
import textwrap

from chainrule.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derive", help="print a function's definition, derivative and chain rule",
        description="Print the definition of an activation or loss, its derivative, and the "
                    "chain-rule form d/dw NAME(f(w)), as the reference solution writes them.")
    parser.add_argument("name", nargs="?", help="function name, e.g. sigmoid or cross_entropy")
    parser.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    parser.add_argument("--list", action="store_true", help="list the function names")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.functional import FORMULAS, formula

    if args.list:
        width = max(map(len, FORMULAS))
        for name, f in FORMULAS.items():
            print(f"{name:<{width}}  {f.title}")
        return 0
    if not args.name:
        raise CommandError("derive: give a function name, or --list to see them")
    f = formula(args.name)  # ValueError naming the known functions if there is none
    if args.latex:
        print(f.latex())
        return 0
    print(f"{f.title} ({f.name})")
    for label, line in (("function", f.definition_text), ("derivative", f.derivative_text),
                        ("chain rule", f.chain_rule_text)):
        print(f"  {label + ':':<12}{line}")
    if f.note:
        print(textwrap.fill(f.note, width=88, initial_indent="  note:       ",
                            subsequent_indent=" " * 14))
    return 0
