"""Executes the examples of README.md and of the documentation (docs/*.md) as tests.

Documentation that the tests run cannot go stale: a changed flag, a renamed function or a
number that moved fails CI. The tool is Sybil (https://sybil.readthedocs.io), chosen over
pytest-markdown-docs and pytest-examples because it is the one of the three that (a) takes
custom parsers, which the ``console`` blocks below need, (b) runs doctest-style blocks with
shown output as well as plain code blocks, and (c) reports each example as its own pytest
item at its file and line. pytest-examples is built around ruff/black formatting of examples
and ``#>`` print comments; pytest-markdown-docs runs only Python fences.

What runs, and how (the README's "Examples are tests" section says the same for authors):

- ```` ```python ```` blocks run as scripts, each from a fresh namespace (nothing leaks from
  the block above, so each block runs as written when pasted alone), and each runs **twice**,
  the second time again from a fresh namespace in the same process: a block that works only
  once (registering a global name, writing a file that then exists) fails.
- A ```` ```python ```` block directly followed by a ```` ```text title="output" ```` block must
  print that output, on both runs (compared as console output is, below).
- ```` ```python ```` blocks that start with ``>>>`` are doctests: the shown output is compared
  (``...`` matches anything; whitespace is normalised). Each block starts a fresh namespace.
- ```` ```console ```` blocks are command-line sessions: each ``$ chainrule ...`` line is run
  (``python -m chainrule.cli`` on this checkout's ``src/``) in a temporary directory shared by
  the block, and the lines below it, up to the next ``$``, must be its output (stdout and
  stderr). A command shown with no output is run and must succeed; its output is not compared.
  A ``# exit N`` comment on the command line states a non-zero exit code it must return.
  In the shown output, a line that is only ``...`` matches any number of lines, ``...`` inside
  a line matches any text, and durations (``0.6 s``, ``12 ms``) match any duration: they are
  the one machine-dependent thing in chainrule's output and are never asserted.
- A fence with ``title="NAME"`` (``toml title="sheet.toml"``; MkDocs shows the title as the
  file's name) is a file: the console blocks below it in the same document find it in their
  directory, so an example input file is itself checked by the command shown on it.
- Other fences (``bash`` listings of commands without output, ``toml``, ``text``) are not run.
- ``<!-- skip: next -->`` (Sybil's directive) skips the next block; use it only with a reason.
"""
from __future__ import annotations

import contextlib
import doctest
import functools
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from sybil import Example, Region, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"

DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
COMMAND_TIMEOUT_S = 600

# A duration as chainrule prints one: a number and a unit of time.
_DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?\s?(?:s|ms|us|µs|min)\b")
_EXIT = re.compile(r"#\s*exit\s+(\d+)\b")


# --- python blocks ------------------------------------------------------------------------------

def _run_python_block(example: Example) -> None:
    """Run a block as a script twice, each time in a fresh namespace (see the module doc)."""
    __tracebackhide__ = True
    source, shown = example.parsed
    code = compile("\n" * (example.line + source.line_offset) + source, example.path, "exec",
                   dont_inherit=True)
    for run in ("first", "second"):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code, {"__name__": "__main__"})
        if shown is not None and not output_matches(shown.splitlines(), printed.getvalue().splitlines()):
            raise AssertionError(f"the {run} run printed something else than the output block shows"
                                 f"\n--- shown:\n{shown}--- printed:\n{printed.getvalue()}")


_FENCE_INFO = re.compile(r"(?P<language>[\w-]*)(?P<info>[^\n]*)$\n", re.MULTILINE)


class PythonBlockParser:
    """```python fences: plain blocks run twice from a fresh namespace; ``>>>`` blocks are doctests.

    A plain block directly followed by a ```` ```text title="output" ```` fence must print that.
    """

    def __init__(self) -> None:
        self.lexer = RawFencedCodeBlockLexer(info_pattern=_FENCE_INFO)
        self.doctest_parser = DocTestStringParser(DocTestEvaluator(DOCTEST_FLAGS))

    def __call__(self, document):
        fences = sorted(self.lexer(document), key=lambda r: r.start)
        for i, region in enumerate(fences):
            after = fences[i + 1] if i + 1 < len(fences) else None
            if region.lexemes["language"] != "python":
                continue
            source = region.lexemes["source"]
            if not source.lstrip().startswith(">>>"):
                shown = None
                if (after is not None and after.lexemes["language"] == "text"
                        and "output" in after.lexemes["info"]
                        and not document.text[region.end:after.start].strip()):
                    shown = str(after.lexemes["source"])
                yield Region(region.start, region.end, (source, shown), _run_python_block)
                continue
            for i, doctest_region in enumerate(self.doctest_parser(source, document.path)):
                doctest_region.adjust(region, source)
                if i == 0:  # each doctest block starts from a fresh namespace
                    doctest_region.evaluator = _fresh_namespace(doctest_region.evaluator)
                yield doctest_region


def _fresh_namespace(evaluator):
    def evaluate(example: Example):
        __tracebackhide__ = True
        example.namespace.clear()
        return evaluator(example)
    return evaluate


# --- console blocks -----------------------------------------------------------------------------

def parse_session(text: str) -> list[tuple[str, list[str]]]:
    """Split a console block into (command, shown output lines) pairs."""
    session: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            session.append((line[2:].strip(), []))
        elif session:
            session[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"a console block must start with a '$ ' command line, got {line!r}")
    return session


def _normalise(line: str) -> str:
    return _DURATION.sub("<duration>", line.rstrip())


def _line_matches(expected: str, actual: str) -> bool:
    expected, actual = _normalise(expected), _normalise(actual)
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` lines are ``expected`` with its ellipses and durations (module doc)."""
    expected = [line for line in expected]
    while expected and not expected[-1].strip():
        expected.pop()
    actual = list(actual)
    while actual and not actual[-1].strip():
        actual.pop()

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":  # any number of lines, including none
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and _line_matches(expected[i], actual[j]) and match(i + 1, j + 1)

    return match(0, 0)


def run_command(command: str, cwd: str) -> tuple[int, str]:
    """Run one ``chainrule ...`` command line of a console block; return (exit code, output)."""
    words = shlex.split(command, comments=True)
    if not words or words[0] != "chainrule":
        raise ValueError(f"console blocks run only `chainrule` commands, got {command!r} "
                         "(show other commands in a ```bash block, which is not run)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1", COLUMNS="100")
    for name in ("FORCE_COLOR", "CLICOLOR_FORCE"):  # output as a user who pipes it sees it
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "chainrule.cli", *words[1:]], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT_S)
    return proc.returncode, proc.stdout


def _run_console_block(example: Example) -> None:
    __tracebackhide__ = True
    session, files = example.parsed
    with tempfile.TemporaryDirectory(prefix="chainrule-doc-") as cwd:
        for name, text in files.items():
            Path(cwd, name).write_text(text, encoding="utf-8")
        for command, shown in session:
            match = _EXIT.search(command)
            expected_code = int(match.group(1)) if match else 0
            code, output = run_command(command, cwd)
            problems = []
            if code != expected_code:
                problems.append(f"exit code {code}, the block says {expected_code}")
            if any(line.strip() for line in shown) and not output_matches(shown, output.splitlines()):
                problems.append("output differs from the block's")
            if problems:
                raise AssertionError(
                    f"$ {command}\n{'; '.join(problems)}\n--- shown in the document:\n"
                    + "\n".join(shown) + "\n--- actual output:\n" + output)


_TITLE = re.compile(r"""title=["']([^"'/\\]+)["']""")


class ConsoleBlockParser:
    """```console fences: ``$ chainrule ...`` sessions whose shown output is compared.

    Every fence above it in the document with a ``title="NAME"`` (``toml title="sheet.toml"``,
    which MkDocs shows as the file's name) is a file the session can read: it is written to
    the session's directory first (a later fence with the same title replaces an earlier one).
    """

    def __init__(self) -> None:
        self.lexer = RawFencedCodeBlockLexer(info_pattern=_FENCE_INFO)

    def __call__(self, document):
        files: dict[str, str] = {}
        for region in sorted(self.lexer(document), key=lambda r: r.start):
            title = _TITLE.search(region.lexemes["info"])
            if title:
                files[title.group(1)] = str(region.lexemes["source"])
            if region.lexemes["language"] == "console":
                session = parse_session(region.lexemes["source"])  # malformed: fails collection
                yield Region(region.start, region.end, (session, dict(files)), _run_console_block)


pytest_collect_file = Sybil(
    parsers=[SkipParser(), PythonBlockParser(), ConsoleBlockParser()],
    patterns=["README.md", "docs/*.md"],
    path=str(ROOT),
).pytest()
