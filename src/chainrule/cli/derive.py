"""``chainrule derive NAME|EXPR``: a function's definition, derivative and chain rule, or with
``--steps`` the whole derivation, one named rule per step, each step verified by SymPy."""
from __future__ import annotations

import argparse
import sys
import textwrap

from chainrule.cli import CommandError

FORMATS = ("text", "markdown", "latex", "json", "html")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derive", help="print a function's derivative, or its derivation step by step",
        description="Print the definition of an activation or loss, its derivative, and the "
                    "chain-rule form d/dw NAME(f(w)), as the reference solution writes them. "
                    "With --steps: the derivation, one rule per step (sum, constant factor, power, "
                    "product, quotient, chain, exp/log, cases, sums over an index, Kronecker delta), "
                    "each step verified by SymPy. NAME may also be an expression such as "
                    "'1/(1+exp(-x))' or 'max(0, 1 - y*s)' (needs the symbolic extra).")
    parser.add_argument("name", nargs="?",
                        help="function name (e.g. sigmoid, cross_entropy) or an expression")
    parser.add_argument("--steps", action="store_true", help="show every step of the derivation")
    parser.add_argument("--wrt", metavar="VAR", help="for an expression: the variable to differentiate by")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="output format (default: text); without --steps the definition, derivative and "
                             "chain rule, with it the whole derivation")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    parser.add_argument("--latex", action="store_true", help="the same as --format latex")
    parser.add_argument("--list", action="store_true", help="list the function names")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.functional import FORMULAS, _canonical, formula

    if args.list:
        width = max(map(len, FORMULAS))
        for name, f in FORMULAS.items():
            print(f"{name:<{width}}  {f.title}")
        return 0
    if not args.name:
        raise CommandError("derive: give a function name or an expression, or --list to see the names")
    registered = _canonical(args.name) in FORMULAS
    if args.latex and args.format not in (None, "latex"):
        raise CommandError(f"derive: --latex and --format {args.format} disagree; give one")
    if registered and args.wrt:
        raise CommandError(f"derive: --wrt is for expressions; {args.name} is a registered function "
                           "with its own variable")
    fmt = "latex" if args.latex else (args.format or "text")
    if args.steps or not registered:
        return _derivation(args, registered, fmt)
    # without --steps: the definition, the derivative and the chain rule, the same in every format
    f = formula(args.name)
    if fmt != "text":
        return _emit(args, _summary(f, fmt))
    lines = [f"{f.title} ({f.name})"]
    for label, line in (("function", f.definition_text), ("derivative", f.derivative_text),
                        ("chain rule", f.chain_rule_text)):
        lines.append(f"  {label + ':':<12}{line}")
    if f.note:
        lines.append(textwrap.fill(f.note, width=88, initial_indent="  note:       ",
                                   subsequent_indent=" " * 14))
    return _emit(args, "\n".join(lines) + "\n")


def _summary(f, fmt: str) -> str:
    """A registered function's three formulas (definition, derivative, chain rule) in ``fmt``."""
    rows = [("function", f.definition_text, f.definition), ("derivative", f.derivative_text, f.derivative),
            ("chain rule", f.chain_rule_text, f.chain_rule)]
    if fmt == "latex":
        return f.latex() + "\n"
    if fmt == "markdown":
        out = [f"## {f.title} (`{f.name}`)", ""]
        for label, _, tex in rows:
            out += [f"{label}:", "", f"$${tex}$$", ""]
        return "\n".join(out + ([f"> {f.note}", ""] if f.note else []))
    if fmt == "json":
        import json

        doc = {"schema": "chainrule.formula", "version": 1, "name": f.name, "title": f.title,
               **{label.replace(" ", "_"): {"text": text, "latex": tex} for label, text, tex in rows},
               "note": f.note}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    import html

    from chainrule._katex import head_html, math

    body = [f"<h2>{html.escape(f.title)} (<code>{html.escape(f.name)}</code>)</h2>"]
    for label, text, tex in rows:
        body += [f"<h3>{label}</h3>", math(tex, html.escape(text), display=True)]
    if f.note:
        body.append(f"<p class='note'>{html.escape(f.note)}</p>")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(f.title)}"
            f"</title>\n{head_html()}</head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _derivation(args: argparse.Namespace, registered: bool, fmt: str) -> int:
    try:
        from chainrule.symbolic import derive
    except ImportError:
        raise CommandError("derive --steps needs SymPy: pip install 'chainrule[symbolic]'") from None
    d = derive(args.name, wrt=args.wrt)  # ValueError (one line, exit 2) for an unreadable expression
    if not args.steps and fmt == "text":
        from chainrule.symbolic.render import text

        return _emit(args, f"{text(d.parts[0].lhs, d.display)} = {text(d.result, d.display)}\n")
    return _emit(args, d.render(fmt))


def _emit(args: argparse.Namespace, text: str) -> int:
    if args.output:
        from chainrule._io import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
