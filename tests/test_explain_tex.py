"""Every piece of TeX the explainer writes (the LaTeX document, markdown's $...$) is typeset by
the vendored KaTeX without an error, in headless Chromium, for every shipped example and the
options that add TeX (--lr/--steps, aliases, [data] requires_grad, no loss, softmax, matrix
notation); the LaTeX document's text parts carry no unescaped special character and no
non-ASCII character (pdflatex with a bare preamble rejects σ, ŷ inside text). There is no TeX on
the test machines: KaTeX is the typesetter, and the text-mode rules are checked by reading."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from cdp import Browser, find_chromium

from chainrule._katex import head_html
from chainrule.explain import example_paths, load_network
from chainrule.explain.tex import tex_mono, tex_numbers, tex_text

CHROMIUM = find_chromium()

# A network whose title, aliases and names carry every character TeX treats specially.
NASTY = """\
title = "σ-net: 50% & #1 ~ {x}^2 \\\\ ŷ_out → η"
sizes = [2, 2, 2]
activation = ["tanh", "softmax"]

[loss]
name = "mse_loss"

[data]
input = [0.5, -1.0]
target = [1.0, 0.0]
requires_grad = true

[[layers]]
weights = [[0.1, -0.2], [0.3, 0.4]]
bias = 0.25

[[layers]]
weights = [[0.5, -0.6], [0.7, 0.8]]
bias = [0.1, -0.1]

[aliases]
"h_1&%" = "y_{1-1}"
"E#total" = "L"
"σ~^" = "z_{1-2}"
"""


def _networks(tmp: Path) -> list[Path]:
    nasty = tmp / "nasty.toml"
    nasty.write_text(NASTY, encoding="utf-8")
    return [p for p in example_paths() if "worksheet" not in p.name] + [nasty]


def _option_sets(path: Path) -> list[list[str]]:
    spec = load_network(path)
    sets = [[]] if spec.aliases else [[], ["--notation", "matrix"]]  # aliases name reference names
    if spec.loss != "none":
        sets.append(["--lr", "0.5", "--steps", "3"])
    else:
        sets.append(["--lr", "0.5"])
    return sets


def _braced(text: str, start: int) -> int:
    """The index just after the group that opens at text[start] == '{'."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] == "\\":
            continue
        if text[k] == "{" and (k == 0 or text[k - 1] != "\\"):
            depth += 1
        elif text[k] == "}" and text[k - 1] != "\\":
            depth -= 1
            if depth == 0:
                return k + 1
    raise AssertionError(f"unbalanced braces from {text[start : start + 60]!r}")


def latex_math(doc: str) -> tuple[list[tuple[str, bool]], str]:
    """(math segments, display?) of a LaTeX document, and its text with the math taken out."""
    segments = [(m.group(0), True) for m in re.finditer(r"\\begin\{align\*\}.*?\\end\{align\*\}", doc, re.S)]
    text = re.sub(r"\\begin\{align\*\}.*?\\end\{align\*\}", " ", doc, flags=re.S)
    inline = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)
    segments += [(m.group(1), False) for m in inline.finditer(text)]
    return segments, inline.sub(" ", text)


def markdown_math(doc: str) -> list[tuple[str, bool]]:
    segments = [(m.group(1), True) for m in re.finditer(r"\$\$(.+?)\$\$", doc, re.S)]
    rest = re.sub(r"\$\$(.+?)\$\$", " ", doc, flags=re.S)
    rest = re.sub(r"`[^`]*`", " ", rest)  # code spans are not math
    segments += [(m.group(1), False) for m in re.finditer(r"(?<!\\)\$(.+?)(?<!\\)\$", rest)]
    return segments


def text_mode_faults(text: str) -> list[str]:
    """Characters TeX's text mode treats specially, unescaped (``_`` not written ``\\_``)."""
    faults = []
    for m in re.finditer(r"(?<!\\)[_^~%&#]", text):
        faults.append(text[max(m.start() - 30, 0) : m.end() + 30])
    return faults


def inner_text_groups(doc: str) -> list[str]:
    """The contents of every \\text{...} (math inside them, $...$, taken out)."""
    out = []
    for m in re.finditer(r"\\text\{", doc):
        end = _braced(doc, m.end() - 1)
        out.append(re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", " ", doc[m.end() : end - 1]))
    return out


def test_text_helpers_escape_every_special_character():
    # written out by hand: each of TeX's ten special characters and three non-ASCII letters
    assert tex_text(r"a_b%c&d#e$f{g}h~i^j\k") == (
        r"a\_b\%c\&d\#e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
    )
    assert tex_text("σ ŷ η → ×") == r"$\sigma$ $\hat{y}$ $\eta$ $\to$ $\times$"
    assert tex_mono("out_h1 σ") == r"\mathtt{out\_h1\ \sigma}"
    assert tex_numbers("0.36 - 0.5 x 2.843e-05") == r"0.36 - 0.5 \times 2.843 \times 10^{-5}"
    assert tex_numbers("sigmoid(1.3062)") == r"\operatorname{sigmoid}(1.3062)"
    assert tex_numbers(r"\sigma(z) = \operatorname{tanh}(0.5)") == r"\sigma(z) = \operatorname{tanh}(0.5)"
    assert text_mode_faults(r"in-out: row i = from input x_i") == ["in-out: row i = from input x_i"]
    assert text_mode_faults(r"input x\_i, 50\%") == []


@pytest.fixture(scope="module")
def katex_page(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium): KaTeX cannot be run")
    path = tmp_path_factory.mktemp("katex") / "katex.html"
    path.write_text(f"<!doctype html><html><head>{head_html()}</head><body></body></html>", encoding="utf-8")
    with Browser(CHROMIUM) as b:
        yield b.open(path.as_uri())


def katex_errors(page, segments: list[tuple[str, bool]]) -> list[str]:
    """KaTeX's error for each segment it cannot typeset (strict: non-ASCII text in math, too)."""
    script = (
        "(() => { const out = []; for (const [tex, display] of SEGMENTS) {"
        " try { katex.renderToString(tex, {displayMode: display, throwOnError: true, strict: 'error'}); }"
        " catch (e) { out.push(e.message + '  IN  ' + tex.slice(0, 300)); } } return out; })()"
    ).replace("SEGMENTS", json.dumps(segments))
    return page.evaluate(script)


def test_every_latex_and_markdown_output_typesets(katex_page, run_cli, tmp_path):
    checked = 0
    for path in _networks(tmp_path):
        for options in _option_sets(path):
            argv = ["explain", str(path), *options]
            code, doc, err = run_cli([*argv, "--format", "latex"])
            assert code == 0, (argv, err)
            assert doc.isascii(), (argv, sorted({c for c in doc if not c.isascii()}))
            segments, text = latex_math(doc)
            body = text.split(r"\begin{document}", 1)[1]
            assert text_mode_faults(body) == [], argv
            faults = [t for g in inner_text_groups(doc) for t in text_mode_faults(g)]
            assert faults == [], argv
            assert katex_errors(katex_page, segments) == [], argv
            code, md, err = run_cli([*argv, "--format", "markdown"])
            assert code == 0, (argv, err)
            md_segments = markdown_math(md)
            assert not [s for s, _ in md_segments if re.search(r"\de[+-]\d", s)], argv  # 2.843e-05 in math
            assert katex_errors(katex_page, md_segments) == [], argv
            code, page, err = run_cli([*argv, "--format", "html"])
            assert code == 0, (argv, err)
            html_segments = [(html.unescape(t), False) for t in re.findall(r'data-tex="([^"]*)"', page)]
            assert katex_errors(katex_page, html_segments) == [], argv
            checked += len(segments) + len(md_segments) + len(html_segments)
    assert checked > 500


def test_the_checks_catch_a_bad_document(katex_page):
    """The checks above can fail: the trial's layout note, e-notation and a σ in \\text."""
    bad = r"\frac{a}{b} \quad \text{(row i = from unit i (input x_i))}"
    assert katex_errors(katex_page, [(bad, False), (r"\text{σ}", False), ("x = 1", False)])[0].startswith(
        "KaTeX parse error"
    )
    assert len(katex_errors(katex_page, [(bad, False), (r"\text{σ}", False), ("x = 1", False)])) == 2
    assert inner_text_groups(bad) == ["(row i = from unit i (input x_i))"]


def test_a_generic_graph_typesets(katex_page):
    """explain(loss) of any graph: tensor names with TeX's special characters and non-ASCII."""
    import chainrule as cr
    from chainrule.explain import explain

    a = cr.tensor([1.0, 2.0], requires_grad=True, name="a_b%σ")
    b = cr.tensor(3.0, requires_grad=True, name="w{1}#")
    e = explain((cr.exp(a) * b).sum())
    doc = e.to_latex()
    assert doc.isascii()
    segments, text = latex_math(doc)
    assert text_mode_faults(text.split(r"\begin{document}", 1)[1]) == []
    assert katex_errors(katex_page, segments) == []
    md = markdown_math(e.to_markdown())
    assert katex_errors(katex_page, md) == []
