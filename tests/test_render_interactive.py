"""The interactive page (``chainrule explain --interactive``) in headless Chromium: every step
is reached with the arrow keys and with the buttons, shows its quantity's equation typeset and
highlights its unit and edge on the drawing; the console has no errors, nothing is fetched, and
a screenshot is not blank. Skips, saying why, where no Chromium is installed.

The expected steps and values come from the ``Explanation`` (the engine's numbers), walked here
independently of the page's own step list.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from cdp import Browser, find_chromium

from chainrule.explain import example_paths, explain_network, load_network
from chainrule.explain.model import GIVEN_KINDS
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import is_given
from chainrule.explain.render_html import tex_numbers
from chainrule.explain.render_interactive import highlight, render_interactive, steps

CHROMIUM = find_chromium()


def _expected(e) -> list[str]:
    """The quantities a reader steps through: all but the given ones, in the solution's order."""
    return [q.name for q in e.quantities if q.kind not in GIVEN_KINDS]


@pytest.fixture(scope="module")
def reference():
    return explain_network(load_network(), lr=0.1)


# --- without a browser --------------------------------------------------------------------


def test_steps_follow_the_explanation(reference):
    page_steps = steps(reference)
    assert page_steps[0]["name"] == "" and [s["name"] for s in page_steps[1:]] == _expected(reference)
    # forward first, then the loss, the local derivatives, the chain rule, the update
    kinds = [s["kind"] for s in page_steps[1:]]
    assert kinds.index("loss") > kinds.index("forward") and kinds[-1] == "update"
    assert kinds.index("chain") > kinds.index("local")


def test_highlights_name_the_unit_and_the_edge(reference):
    by_name = {s["name"]: s["highlight"] for s in steps(reference)[1:]}
    # units: column c (0: the inputs), row j; edges: layer, from-unit, to-unit (all 0-based)
    assert by_name["z_{1-1}"] == ["u-1-0"]
    assert by_name["y_{2-1}"] == ["u-1-1"]
    assert set(by_name["dL/dw_{31-1}"]) == {"loss", "e-1-2-0"}  # w_{31-1}: input 3 to hidden unit 1
    assert set(by_name["dz_{1-2}/dy_{2-1}"]) == {"u-2-0", "u-1-1", "e-2-1-0"}  # two units and their edge
    assert set(by_name["dL/dz_{1-1}"]) == {"loss", "u-1-0"}
    assert by_name["w_{31-1}^{new}"] == ["e-1-2-0"]
    assert all(by_name[n] for n in by_name), [n for n in by_name if not by_name[n]]
    # a batch: the second sample's quantities highlight the same unit as the first's
    assert highlight("z_{1-1}^{(2)}", {"z_{1-1}": "u-1-0"}, {}) == ["u-1-0"]


def test_page_is_one_offline_file(reference):
    page = render_interactive(reference)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    data = json.loads(re.search(r"id='chainrule-steps'>(.*?)</script>", page, re.S).group(1))
    assert len(data) == len(_expected(reference)) + 1


def test_cli_writes_the_page(tmp_path, run_cli):
    target = tmp_path / "steps.html"
    code, out, err = run_cli(["explain", "--interactive", "--output", str(target)])
    assert code == 0 and out == "" and err == ""
    assert "id='chainrule-steps'" in target.read_text(encoding="utf-8")
    code, _, err = run_cli(["explain", "--interactive", "--format", "markdown"])
    assert code == 2 and "--format html" in err and err.count("\n") == 1


# --- in Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium); the page is then checked as text only")
    with Browser(CHROMIUM, width=1300, height=900) as b:
        yield b


_STATE = """
(() => {
  const shown = [...document.querySelectorAll('#panel .step')].filter(s => !s.hidden);
  const tex = shown.length ? [...shown[0].querySelectorAll('.cr-math')].map(m => m.dataset.tex) : [];
  return {
    step: Number(document.body.dataset.step),
    shown: shown.map(s => s.dataset.name),
    typeset: shown.length ? shown[0].querySelectorAll('.cr-math .katex').length : 0,
    formulas: tex.length,
    tex: tex[tex.length - 1] || '',
    active: [...document.querySelectorAll('#network .active')].map(el => el.id).sort(),
    pending: document.querySelectorAll('#network .label.pending').length,
    current: [...document.querySelectorAll('#network .label.current')].map(el => el.dataset.q),
    counter: document.getElementById('counter').textContent,
  };
})()
"""


@pytest.fixture(scope="module")
def opened(browser, reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("interactive") / "reference.html"
    path.write_text(render_interactive(reference), encoding="utf-8")
    return browser.open(path.as_uri()), path


def test_every_step_with_the_arrow_keys(opened, reference):
    page, _ = opened
    expected = _expected(reference)
    highlights = {s["name"]: sorted(s["highlight"]) for s in steps(reference)[1:]}
    start = page.evaluate(_STATE)
    assert start["step"] == 0 and start["shown"] == [""] and start["active"] == []
    assert start["pending"] > 0  # gradients and forward values are faded until computed
    assert start["counter"] == f"step 0 of {len(expected)}"
    for k, name in enumerate(expected, start=1):
        page.press("ArrowRight")
        state = page.evaluate(_STATE)
        assert state["step"] == k and state["shown"] == [name]
        assert state["formulas"] == 1 and state["typeset"] == 1  # the equation, typeset by KaTeX
        # the equation ends in the engine's value, rounded as every format rounds it
        q = reference[name]
        assert state["tex"].endswith(
            " = " + tex_numbers(fmt(q.value, reference.digits, is_given(q, reference)))
        )
        assert state["active"] == highlights[name] and state["active"]  # its unit and edge lit
    assert page.evaluate(_STATE)["pending"] == 0  # at the end every value is shown
    page.press("ArrowRight")  # past the end: stays
    assert page.evaluate(_STATE)["step"] == len(expected)
    for k in range(len(expected) - 1, len(expected) - 4, -1):
        page.press("ArrowLeft")
        assert page.evaluate(_STATE)["step"] == k
    page.press("Home")
    assert page.evaluate(_STATE)["step"] == 0
    page.press("End")
    assert page.evaluate(_STATE)["step"] == len(expected)
    assert page.errors() == []


def test_every_step_with_the_buttons(opened, reference):
    page, path = opened
    expected = _expected(reference)
    page.click("#first")
    assert page.evaluate(_STATE)["step"] == 0
    assert page.evaluate("document.getElementById('prev').disabled") is True
    for k in range(1, len(expected) + 1):
        page.click("#next")
        assert page.evaluate(_STATE)["step"] == k
    assert page.evaluate("document.getElementById('next').disabled") is True
    page.click("#prev")
    assert page.evaluate(_STATE)["step"] == len(expected) - 1
    page.click("#first")
    page.click("#last")
    assert page.evaluate(_STATE)["step"] == len(expected)
    assert page.errors() == []
    assert [u for u in page.requests() if u != path.as_uri() and not u.startswith("data:")] == []


def test_chain_rule_step_shows_its_product_and_lights_its_edge(opened, reference):
    page, _ = opened
    expected = _expected(reference)
    page.press("Home")
    target = expected.index("dL/dw_{31-1}") + 1
    for _ in range(target):
        page.press("ArrowRight")
    state = page.evaluate(_STATE)
    assert state["shown"] == ["dL/dw_{31-1}"]
    # the chain-rule product with its factors, then the numbers: dL/dz_{1-1} x dz_{1-1}/dw_{31-1}
    assert state["tex"].startswith(
        r"\frac{\partial L}{\partial w_{31\text{-}1}} = \frac{\partial L}{\partial z_{1\text{-}1}}"
    )
    assert r"\times" in state["tex"] and state["tex"].endswith("= -0.002929")  # four significant digits
    assert "e-1-2-0" in state["active"]
    assert state["current"] == ["dL/dw_{31-1}"]  # its label on the drawing stands out


def test_screenshot_is_not_blank(opened):
    page, _ = opened
    image = pytest.importorskip("matplotlib.image", reason="matplotlib reads the screenshot")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    assert pixels.std() > 0.05
    # the highlight colour (#d35400) is on screen: a unit or an edge is lit
    lit = (abs(pixels[..., 0] - 0xD3 / 255) < 0.08) & (abs(pixels[..., 1] - 0x54 / 255) < 0.08)
    assert lit.sum() > 50


@pytest.mark.parametrize(
    "path", [p for p in example_paths() if "worksheet" not in p.name], ids=lambda p: p.stem
)
def test_every_shipped_network_steps_through(browser, path, tmp_path):
    e = explain_network(load_network(path))
    page_path = tmp_path / "page.html"
    page_path.write_text(render_interactive(e), encoding="utf-8")
    page = browser.open(page_path.as_uri())
    page.press("End")
    state = page.evaluate(_STATE)
    assert state["step"] == len(_expected(e)) and state["typeset"] == 1 and state["pending"] == 0
    assert page.evaluate("document.querySelectorAll('.cr-math-error').length") == 0
    assert page.errors() == []
