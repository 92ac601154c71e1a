"""The ``chainrule`` command: a thin shell over the library, one module per subcommand.

Each module in this package defines ``register(subparsers)``, which adds its subcommand and
sets ``handler`` (a function of the parsed arguments returning the exit code). Errors a user
can cause surface as one line on stderr and exit code 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, in the order ``chainrule --help`` lists them.
COMMANDS = ("explain", "check", "derive", "train", "export")


class CommandError(Exception):
    """A user error to report in one line (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + message and exits 2
        # One prefix for every error, ours and argparse's: "chainrule: error: [COMMAND: ]..."
        command = self.prog.split()[1:]
        raise CommandError(f"chainrule: error: {command[0] + ': ' if command else ''}{message}")


def build_parser() -> argparse.ArgumentParser:
    from chainrule import __version__

    parser = _Parser(prog="chainrule", description="Backpropagation you can read and check.",
                     epilog="`chainrule COMMAND --help` shows a command's options.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"chainrule.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        if not argv:
            # A bare `chainrule` is a usage error (exit 2, argparse's convention for a missing
            # required argument), answered with the whole help: the usage and every command.
            print(parser.format_help(), end="", file=sys.stderr)
            return 2
        args = parser.parse_args(argv)
        return int(args.handler(args) or 0)
    except CommandError as exc:
        return _fail(str(exc))
    except (ValueError, TypeError, KeyError, OSError) as exc:
        return _fail(_describe(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    except BrokenPipeError:  # e.g. `chainrule explain | head`
        return 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _fail(message: str, code: int = 2) -> int:
    line = " ".join(message.split())  # exactly one line
    print(f"chainrule: error: {line}" if not line.startswith("chainrule") else line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
