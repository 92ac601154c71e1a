"""``chainrule explain [NETWORK.toml]``: every step of one forward and backward pass."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chainrule.cli import CommandError


def resolve_file(name: str | None, what: str) -> Path | None:
    """A path as given, or the name of a file shipped in src/chainrule/examples ("reference")."""
    if name is None:
        return None
    path = Path(name)
    if path.exists():
        return path
    from chainrule.explain.worksheet import find_example

    shipped = find_example(name)
    if shipped is not None:
        return shipped
    raise CommandError(
        f"{what} {name!r} not found (neither a file nor a shipped example; "
        "see `chainrule explain --examples`)"
    )


def _digits(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 15, got {text!r}") from None
    if not 1 <= n <= 15:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 15 (significant digits), got {n}")
    return n


def _lr(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v == v and abs(v) != float("inf")) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite learning rate > 0, got {text!r}")
    return v


def _steps(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _momentum(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (v == v and abs(v) != float("inf")) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a finite momentum >= 0, got {text!r}")
    return v


def register(subparsers: argparse._SubParsersAction) -> None:
    from chainrule.explain import FORMATS, NOTATIONS
    from chainrule.explain.model import Training

    p = subparsers.add_parser(
        "explain",
        help="show every step of a forward and backward pass",
        description="Explain one forward and backward pass of a small network, step by step: every "
        "pre-activation, activation, local partial derivative and chain-rule product, "
        "read off the engine's own graph. Without a file: the reference network.",
    )
    p.add_argument(
        "network",
        nargs="?",
        metavar="NETWORK.toml",
        help="network file (default: the reference 3-2-1 sigmoid network)",
    )
    p.add_argument("--format", choices=FORMATS, help="output format (default: text; html with --interactive)")
    p.add_argument(
        "--interactive",
        action="store_true",
        help="an HTML page that steps through the forward and backward pass one quantity at a time "
        "(arrow keys and buttons; the unit and edge of each step highlighted); works offline",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    p.add_argument(
        "--diagram", metavar="FILE", help="also draw the network to FILE.png or FILE.svg (matplotlib)"
    )
    p.add_argument(
        "--digits",
        type=_digits,
        default=4,
        metavar="N",
        help="significant digits shown (default 4); each chain-rule product's factors get "
        "more where the result must follow from them",
    )
    p.add_argument(
        "--notation",
        choices=NOTATIONS,
        default="reference",
        help="names: the reference solution's w_{ij-l} (default) or matrix indices W1[j,i]",
    )
    p.add_argument("--lr", type=_lr, metavar="ETA", help="also show one gradient-descent step with rate ETA")
    p.add_argument(
        "--steps",
        type=_steps,
        metavar="N",
        help="with --lr: take N steps of SGD and show each step's loss and updated parameters "
        f"(more than {Training.SHOW_ALL} steps: the first and last {Training.ENDS} in full and the "
        f"loss at about {Training.CHECKPOINTS} round-numbered steps between; --all-steps for every one)",
    )
    p.add_argument(
        "--all-steps",
        action="store_true",
        help="with --steps N: show every step's loss and parameters, however many",
    )
    p.add_argument(
        "--momentum",
        type=_momentum,
        default=0.0,
        metavar="M",
        help="with --lr: SGD momentum, as torch.optim.SGD (default 0)",
    )
    p.add_argument(
        "--save-updated",
        metavar="FILE",
        help="with --lr: write the network after the last step to FILE (a network file explain reads)",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour and tables in a terminal (needs rich; default: auto)",
    )
    p.add_argument("--examples", action="store_true", help="list the example files shipped with chainrule")
    p.set_defaults(handler=run)


def _print_examples(paths: list[Path]) -> None:
    """The shipped files by the short name the commands take, networks apart from worksheets."""
    from chainrule.explain.network import read_toml

    networks, worksheets = [], []
    for path in paths:
        content = read_toml(path)
        (worksheets if "values" in content else networks).append((path.stem, content.get("title", "")))
    width = max(len(name) for name, _ in networks + worksheets)
    for heading, rows in (("networks (chainrule explain NAME)", networks),
                          ("worksheets (chainrule check NAME)", worksheets)):
        if rows:
            print(heading)
            for name, title in rows:
                print(f"  {name:<{width}}  {title}".rstrip())
    print(f"(files in {paths[0].parent})" if paths else "(no example files found)")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np

    from chainrule._io import atomic_write_text
    from chainrule.explain import example_paths, explain_network, load_network
    from chainrule.explain.diagram import save_diagram

    if args.examples:
        _print_examples(example_paths())
        return 0
    if args.interactive and args.format not in (None, "html"):
        raise CommandError(
            f"--interactive writes an HTML page; it goes with --format html, not --format {args.format}"
        )
    if args.interactive and not args.output and sys.stdout.isatty():
        # a self-contained page (KaTeX inlined, ~0.6 MB) is for a browser, not a terminal
        raise CommandError("--interactive writes a self-contained HTML page: give -o FILE.html")
    args.format = args.format or ("html" if args.interactive else "text")
    for flag, given in (
        ("--steps", args.steps),
        ("--momentum", args.momentum),
        ("--save-updated", args.save_updated),
        ("--all-steps", args.all_steps),
    ):
        if given and args.lr is None:
            raise CommandError(f"{flag} needs --lr (the learning rate of the steps)")
    if args.all_steps and not args.steps:
        raise CommandError("--all-steps needs --steps N (the number of steps to show)")
    spec = load_network(resolve_file(args.network, "network file"))
    explanation = explain_network(spec, notation=args.notation, lr=args.lr, digits=args.digits)
    trained = None
    if args.lr is not None and (args.steps or args.momentum or args.save_updated):
        from chainrule.explain.steps import run_steps

        try:
            trained = run_steps(spec, args.steps or 1, args.lr, args.momentum)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if trained is not None and args.steps:  # every format shows the steps (the first in full above)
        # without --steps there is one step, and the explanation's update already shows it
        explanation.training = trained.training(args.notation, all_steps=args.all_steps)
    if args.diagram:
        save_diagram(explanation, args.diagram)
    color = False
    if args.format == "text" and not args.output:
        color = args.color == "always" or (
            args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        )
    if args.interactive:
        from chainrule.explain.render_interactive import render_interactive

        text = render_interactive(explanation, digits=args.digits)
    else:
        text = explanation.render(args.format, digits=args.digits, color=color)
    if args.save_updated:
        from chainrule.explain.steps import network_toml

        n = len(trained.steps)
        note = (
            f"Written by `chainrule explain --lr {args.lr} --steps {n} --momentum {args.momentum}` "
            f"from {spec.source}:\nthe network after {n} step{'s' if n > 1 else ''} of SGD "
            f"(loss {trained.final_loss!r})."
        )
        short = np.format_float_positional(args.lr, trim="-")
        after = f"after {n} step{'s' if n > 1 else ''} of SGD at lr = {short}"
        saved = replace(trained.spec, title=f"{spec.title} [{after}]" if spec.title else after)
        atomic_write_text(args.save_updated, network_toml(saved, note))
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0

