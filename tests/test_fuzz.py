"""Fuzzing the readers of user files: network TOML, worksheets, CSV.

Hypothesis mutates the shipped example files (deletions, insertions, truncation, swapped
lines) and builds well-formed TOML documents with wrong values, and random CSV text. The
only exceptions allowed out are the documented ones — ``NetworkFileError`` for network files,
``WorksheetError``/``NetworkFileError`` for worksheets, ``ValueError`` for CSV — and each names
the file. The commands turn them into exit code 2 and one line on stderr.

Bounded: a fixed number of derandomized examples per test (a few seconds each);
``CHAINRULE_FUZZ_EXAMPLES=N`` runs N per test instead.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.cli import main

explain = pytest.importorskip("chainrule.explain", reason="chainrule.explain (network files)")
data = pytest.importorskip("chainrule.data", reason="chainrule.data (CSV reader)")
from chainrule.explain.network import NetworkFileError  # noqa: E402
from chainrule.explain.worksheet import WorksheetError, check_worksheet  # noqa: E402

N = int(os.environ.get("CHAINRULE_FUZZ_EXAMPLES", "0")) or None
EXAMPLES = Path(explain.reference_path()).parent
NETWORKS = [p.read_text() for p in sorted(EXAMPLES.glob("*.toml")) if "worksheet" not in p.name]
WORKSHEET = (EXAMPLES / "reference-worksheet.toml").read_text()


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=N or default,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="chainrule-fuzz-"))


# --- text mutation ------------------------------------------------------------------------

TOML_BITS = st.sampled_from(
    [
        '"',
        "'",
        "[",
        "]",
        "[[",
        "]]",
        "=",
        ",",
        "\n",
        "#",
        ".",
        "-",
        "+",
        "e",
        "nan",
        "inf",
        "1e999",
        "0x1F",
        "true",
        "{",
        "}",
        '"""',
        "\\",
        "\t",
        "é",
        "\x00",
        "sizes",
        "weights",
        "bias",
        "activation",
        "loss",
        "data",
    ]
)


@st.composite
def mutated(draw: Any, texts: list[str]) -> str:
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 6))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 40)))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            text = text[:i] + text[j:]  # delete a span
        elif kind == 1:
            text = text[:i] + "".join(draw(st.lists(TOML_BITS, max_size=4))) + text[i:]
        elif kind == 2:
            text = text[:i] + draw(st.text(max_size=8)) + text[j:]  # replace with any unicode
        elif kind == 3:
            text = text[:i]  # truncated
        else:
            lines = text.split("\n")
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


def _names_file(message: str, path: Path) -> bool:
    return str(path) in message or path.name in message


# --- network files --------------------------------------------------------------------------


@fuzz_settings(600)
@given(mutated(NETWORKS))
def test_mutated_network_files_load_or_raise_network_file_error(text):
    path = _scratch() / "net.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        spec = explain.load_network(path)
    except NetworkFileError as exc:
        assert _names_file(str(exc), path), f"error does not name the file: {exc}"
        return
    explain.explain_network(spec)  # what loads, explains


TOML_VALUES = st.recursive(
    st.one_of(
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=10),
        st.booleans(),
        st.sampled_from(["sigmoid", "relu", "tanh", "softmax", "l2_loss", "huber_loss", "sum", "mean"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def altered_documents(draw: Any) -> dict:
    """A parsed example network with values swapped for wrong ones at random places."""
    import tomllib

    doc = tomllib.loads(draw(st.sampled_from(NETWORKS)))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = doc
        for _depth in range(4):  # walk down to a random container
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            if draw(st.integers(0, 5)) == 0 and isinstance(node, dict):
                del node[key]
            else:
                node[key] = draw(TOML_VALUES)
            break
    return doc


@fuzz_settings(600)
@given(altered_documents())
def test_wrong_values_in_network_documents_raise_network_file_error(doc):
    try:
        spec = explain.parse_network(doc, source="fuzz.toml")
    except NetworkFileError as exc:
        assert "fuzz.toml" in str(exc), f"error does not name the file: {exc}"
        return
    with np.errstate(all="ignore"):  # huge but valid numbers may overflow: not this test's subject
        explain.explain_network(spec)


# --- worksheets -------------------------------------------------------------------------------


@fuzz_settings(300)
@given(mutated([WORKSHEET]))
def test_mutated_worksheets_grade_or_raise_worksheet_error(text):
    folder = _scratch()
    (folder / "reference.toml").write_text((EXAMPLES / "reference.toml").read_text())
    path = folder / "sheet.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        report = check_worksheet(path)
    except (WorksheetError, NetworkFileError) as exc:
        assert _names_file(str(exc), path) or "reference.toml" in str(exc), f"error names no file: {exc}"
        return
    assert report is not None


# --- CSV --------------------------------------------------------------------------------------

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e999",
            "abc",
            "1,5",
            '"1.5"',
            '"a,b"',
            '"',
            "0x10",
            "1_000",
            "１２",
            "\ufeff1",
            "true",
            "None",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5),
)


NUMBERS = st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-100, 100).map(str))


@st.composite
def csv_files(draw: Any) -> tuple[str, str]:
    if draw(st.integers(0, 2)) == 0:  # a well-formed file, with at most a few bad cells
        names = ["a", "b", "label"]
        rows = []
        for _ in range(draw(st.integers(1, 8))):
            cells = [draw(NUMBERS), draw(NUMBERS), draw(st.sampled_from(["0", "1", "2"]))]
            if draw(st.integers(0, 9)) == 0:
                cells[draw(st.integers(0, 2))] = draw(CELLS)
            rows.append(",".join(cells))
        return "\n".join([",".join(names)] + rows) + "\n", draw(st.sampled_from(names))
    names = draw(
        st.lists(st.sampled_from(["a", "b", "label", "x y", "", "a", "é", '"q"']), min_size=1, max_size=4)
    )
    n_rows = draw(st.integers(0, 6))
    rows = []
    for _ in range(n_rows):
        width = len(names) if draw(st.integers(0, 4)) else draw(st.integers(0, len(names) + 2))
        rows.append(",".join(draw(CELLS) for _ in range(width)))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ("\ufeff" if draw(st.booleans()) else "") + newline.join([",".join(names)] + rows)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]  # truncated mid-file
    target = draw(st.sampled_from(names + ["missing"]))
    return text, target


@fuzz_settings(600)
@given(csv_files())
def test_random_csv_files_read_or_raise_value_error_naming_the_file(case):
    text, target = case
    path = _scratch() / "rows.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass", newline="")
    try:
        table = data.read_csv(path, target=target)
    except ValueError as exc:
        assert _names_file(str(exc), path), f"error does not name the file: {exc}"
        return
    features = np.asarray(table.features)
    assert features.ndim == 2 and features.shape[0] == len(table.target)
    assert features.shape[1] == len(table.feature_names)
    assert features.dtype.kind == "f" and np.all(np.isfinite(features)), "NaN/inf features got through"
    # and the dataset built from it: only ValueError (e.g. too few rows to split), never a crash
    try:
        split = data.load_csv(path, target=target)
    except ValueError:
        return
    assert np.all(np.isfinite(split.train.features)) and np.all(np.isfinite(split.test.features))


# --- the commands on fuzzed files ------------------------------------------------------------------


@fuzz_settings(200)
@given(mutated(NETWORKS))
def test_explain_command_on_mutated_files_exits_0_or_2_with_one_line(text):
    folder = _scratch()
    path = folder / "net.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out = folder / "out.txt"
    out.write_bytes(b"keep me\n")
    with _captured_stderr() as err:
        code = main(["explain", str(path), "--output", str(out), "--format", "json"])
    if code == 0:
        assert out.read_bytes() != b"keep me\n"
        return
    assert code == 2, f"exit code {code}: {err.getvalue()!r}"
    assert len(err.getvalue().strip().splitlines()) == 1 and "Traceback" not in err.getvalue()
    assert out.read_bytes() == b"keep me\n", "a failed run changed the output file"


class _captured_stderr:
    def __enter__(self):
        import io
        import sys

        self._saved, self.buffer = sys.stderr, io.StringIO()
        sys.stderr = self.buffer
        return self.buffer

    def __exit__(self, *exc: Any) -> None:
        import sys

        sys.stderr = self._saved


def test_fuzz_strategies_are_not_vacuous():
    """Mutations make invalid files as well as valid ones; CSVs both load and fail."""
    seen = {"net_ok": 0, "net_bad": 0, "csv_ok": 0, "csv_bad": 0}

    @fuzz_settings(150)
    @given(mutated(NETWORKS), csv_files())
    def sample(text, case):
        path = _scratch() / "net.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            explain.load_network(path)
            seen["net_ok"] += 1
        except NetworkFileError:
            seen["net_bad"] += 1
        csv_path = _scratch() / "rows.csv"
        csv_path.write_text(case[0], encoding="utf-8", errors="surrogatepass", newline="")
        try:
            data.read_csv(csv_path, target=case[1])
            seen["csv_ok"] += 1
        except ValueError:
            seen["csv_bad"] += 1

    sample()
    assert all(v > 0 for v in seen.values()), seen
    assert not math.isnan(sum(seen.values()))
