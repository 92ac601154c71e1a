"""The HTML pages in a real browser: headless Chromium, driven over the DevTools protocol
(tests/cdp.py), renders each page; formulas are typeset by the inlined KaTeX, the SVG drawing is
in the DOM, a screenshot is not blank, the console has no errors, and the page makes no network
request (only its own file and inline ``data:`` fonts). Skips, saying why, where no Chromium is
installed (.ci/run installs it)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from cdp import Browser, find_chromium

from chainrule._katex import KATEX_VERSION, head_html, math
from chainrule.explain import example_paths, explain, explain_network, load_network

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium installed (apt-get install chromium); "
    "the HTML page is then only checked as text by test_explain_formats",
)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    with Browser(CHROMIUM) as b:
        yield b


def _write(tmp_path_factory, name: str, text: str) -> Path:
    path = tmp_path_factory.mktemp("html") / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference_page(browser, tmp_path_factory):
    path = _write(tmp_path_factory, "reference.html", explain_network(load_network(), lr=0.1).to_html())
    return browser.open(path.as_uri()), path


def _offline(page, path: Path) -> list[str]:
    """Requests other than the page's own file and inline data: URIs (should be none)."""
    return [u for u in page.requests() if u != path.as_uri() and not u.startswith("data:")]


# --- the vendored KaTeX, as a module --------------------------------------------------------


def test_head_html_is_self_contained():
    head = head_html()
    assert KATEX_VERSION in head and "katex" in head
    # every url(...) of the stylesheet is an inline font; nothing refers to a file or a host
    urls = re.findall(r"url\(([^)]*)\)", head)
    assert urls and all(u.startswith("data:font/woff2;base64,") for u in urls)
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", head)


def test_math_marks_and_escapes():
    cell = math(r"\frac{a}{b} < c \text{\"}", "a/b &lt; c")
    assert cell.startswith('<span class="cr-math" data-tex="\\frac{a}{b} &lt; c \\text{\\&quot;}">')
    assert cell.endswith(">a/b &lt; c</span>")
    assert 'class="cr-math cr-display"' in math("x", display=True)
    assert math("x_1").endswith(">x_1</span>")  # the TeX itself where no fallback is given
    with pytest.raises(TypeError, match="str"):
        math(1.5)


def test_names_and_numbers_in_tex():
    from chainrule.explain.render_html import tex_name, tex_numbers

    # the reference's hyphen stays a hyphen (a minus sign would get a binary operator's spacing)
    assert tex_name(r"\frac{\partial L}{\partial w_{31-1}}") == r"\frac{\partial L}{\partial w_{31\text{-}1}}"
    assert tex_name(r"w_{11-1}^{\text{new}}") == r"w_{11\text{-}1}^{\text{new}}"
    assert tex_numbers("0.36 - 0.1 x 2.843e-05") == r"0.36 - 0.1 \times 2.843 \times 10^{-5}"
    assert tex_numbers("sigmoid(1.3062)") == r"\operatorname{sigmoid}(1.3062)"
    assert tex_numbers("l2_loss(0.7)") == r"\operatorname{l2\_loss}(0.7)"


# --- the explanation page in Chromium -------------------------------------------------------


@needs_chromium
def test_every_formula_is_typeset(reference_page):
    page, path = reference_page
    counts = page.evaluate(
        "[document.querySelectorAll('.cr-math').length,"
        " document.querySelectorAll('.cr-math > .katex').length,"
        " document.querySelectorAll('.cr-math-error, .katex-error').length]"
    )
    formulas, typeset, failed = counts
    # 4 given + 4 parameters' worth of rows in every section: well over a hundred formulas
    assert formulas > 100 and typeset == formulas and failed == 0
    # the chain rule of dL/dw_{31-1} is typeset as fractions (KaTeX's .mfrac), with the
    # hyphen of the reference's names as text, not a minus sign
    frac = page.evaluate(
        "[...document.querySelectorAll('.cr-math')].filter(e => e.dataset.tex.startsWith("
        "'\\\\frac{\\\\partial L}{\\\\partial w_{31')).map(e => e.querySelectorAll('.mfrac').length)"
    )
    assert frac and all(n >= 1 for n in frac)
    annotation = page.evaluate(
        "document.querySelector('.cr-math[data-tex^=\"z_{1\"] annotation').textContent"
    )
    assert annotation == r"z_{1\text{-}1}"
    assert page.errors() == []
    assert _offline(page, path) == []


@needs_chromium
def test_katex_fonts_are_loaded_from_the_page(reference_page):
    page, _ = reference_page
    loaded = page.evaluate(
        "document.fonts.ready.then(() => [...document.fonts].filter(f => f.status == 'loaded')"
        ".map(f => f.family))"
    )
    assert "KaTeX_Main" in loaded and "KaTeX_Math" in loaded


@needs_chromium
def test_svg_is_in_the_rendered_dom(reference_page):
    page, _ = reference_page
    assert page.evaluate("document.querySelectorAll('svg#network circle').length") == 6  # 3, 2, 1 units
    text = page.evaluate("document.querySelector('svg#network').textContent")
    assert "-0.28" in text  # w_{31-1}, on its edge
    assert "-0.002929" in text  # dL/dw_{31-1}, four significant digits
    assert "0.02119" in text  # dL/dz_{1-2}


@needs_chromium
def test_screenshot_is_not_blank(reference_page):
    page, _ = reference_page
    image = pytest.importorskip("matplotlib.image", reason="matplotlib reads the screenshot")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    assert pixels.shape[0] >= 800 and pixels.shape[1] >= 1200
    assert pixels.std() > 0.05  # a blank page has no variance
    top = pixels[:600]  # the drawing: dark strokes and the unit fills
    assert (top.mean(axis=2) < 0.4).mean() > 0.001


@needs_chromium
@pytest.mark.parametrize(
    "path", [p for p in example_paths() if "worksheet" not in p.name], ids=lambda p: p.stem
)
def test_every_shipped_network_page_typesets(browser, tmp_path_factory, path):
    """Batches (superscripted names, squared in tanh's derivative), classifiers, updates."""
    page_path = _write(
        tmp_path_factory, f"{path.stem}.html", explain_network(load_network(path), lr=0.1).to_html()
    )
    page = browser.open(page_path.as_uri())
    formulas, typeset, failed = page.evaluate(
        "[document.querySelectorAll('.cr-math').length,"
        " document.querySelectorAll('.cr-math > .katex').length,"
        " document.querySelectorAll('.cr-math-error').length]"
    )
    assert formulas > 20 and typeset == formulas and failed == 0  # the CS231n circuit has 30
    assert page.errors() == [] and _offline(page, page_path) == []


@needs_chromium
def test_steps_table_typesets(browser, tmp_path_factory, run_cli):
    """explain --steps N: the page shows every step (a row each), its header typeset."""
    page_path = tmp_path_factory.mktemp("html") / "steps.html"
    argv = ["explain", "mazur-2-2-2", "--lr", "0.5", "--steps", "4", "--format", "html", "-o", str(page_path)]
    code, _, err = run_cli(argv)
    assert code == 0 and err == ""
    page = browser.open(page_path.as_uri())
    rows, headers, failed, losses = page.evaluate(
        "[document.querySelectorAll('.training tr').length,"
        " document.querySelectorAll('.training th .cr-math > .katex').length,"
        " document.querySelectorAll('.cr-math-error, .katex-error').length,"
        " [...document.querySelectorAll('.training tr')].slice(1).map(r => r.cells[1].textContent)]"
    )
    assert rows == 1 + 4 and headers == 8 and failed == 0  # a header row and a row per step; w1..w8
    assert losses == ["0.2984", "0.2910", "0.2835", "0.2759"]  # torch's values: test_explain_steps
    assert page.errors() == [] and _offline(page, page_path) == []


@needs_chromium
def test_generic_graph_page_typesets(browser, tmp_path_factory):
    import chainrule as cr

    a = cr.tensor([1.0, 2.0], requires_grad=True, name="a_b")  # '_' must be escaped in TeX
    path = _write(tmp_path_factory, "generic.html", explain((cr.exp(a) * 3.0).sum()).to_html())
    page = browser.open(path.as_uri())
    formulas, typeset = page.evaluate(
        "[document.querySelectorAll('.cr-math').length,"
        " document.querySelectorAll('.cr-math > .katex').length]"
    )
    assert formulas >= 6 and typeset == formulas
    assert page.errors() == [] and _offline(page, path) == []


@needs_chromium
def test_a_formula_katex_cannot_parse_is_reported(browser, tmp_path_factory):
    """The error path the other tests rely on: a bad formula keeps its fallback and logs an error."""
    body = math(r"\frac{1}{", "one over") + math("x^2", "x squared")
    path = _write(
        tmp_path_factory,
        "bad.html",
        f"<!DOCTYPE html><html><head>{head_html()}</head><body>{body}</body></html>",
    )
    page = browser.open(path.as_uri())
    assert page.evaluate("document.querySelectorAll('.cr-math-error').length") == 1
    assert page.evaluate("document.querySelector('.cr-math-error').textContent") == "one over"
    assert page.evaluate("document.querySelectorAll('.cr-math > .katex').length") == 1
    errors = page.errors()
    assert len(errors) == 1 and "could not typeset" in errors[0]
