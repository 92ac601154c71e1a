"""Every format renders the same explanation; the command writes files atomically."""

from __future__ import annotations

import builtins
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.explain import explain_network, load_network

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")




@pytest.fixture(scope="module")
def reference():
    return explain_network(load_network(), lr=0.5)


def test_plain_text_has_every_step_in_order(reference):
    text = reference.to_text()
    assert not ANSI.search(text)
    text.encode("ascii")  # readable in any terminal or file
    lines = [
        "z_{1-1} = x_1 * w_{11-1} + x_2 * w_{21-1} + x_3 * w_{31-1} + B_{1-1} = "
        "(0.02)(0.36) + (0.03)(0.74) + (-2.06)(-0.28) + 0.7 = 1.306",
        "yhat = sigmoid(z_{1-2}) = sigmoid(0.9136) = 0.7137",
        # the solution's own lines: dL/dyhat = yhat - y, dyhat/dz = yhat(1 - yhat) = 0.2043
        "dL/dyhat = yhat - y = 0.7137 - 0.61 = 0.1037",
        "dyhat/dz_{1-2} = sigmoid'(z_{1-2}) = yhat * (1 - yhat) = 0.7137 * (1 - 0.7137) = 0.2043",
        "dz_{1-2}/dw_{11-2} = y_{1-1} = 0.7869",
        "dy_{1-1}/dz_{1-1} = sigmoid'(z_{1-1}) = y_{1-1} * (1 - y_{1-1}) = 0.7869 * (1 - 0.7869) = 0.1677",
        # four significant digits; a factor gets more where the product must follow from it
        # (0.0014217 x 0.02 = 2.84340e-05, which rounds to the 2.843e-05 shown)
        "dL/dz_{1-2} = dL/dyhat * dyhat/dz_{1-2} = 0.1037 x 0.2043 = 0.02119",
        "dL/dw_{11-1} = dL/dz_{1-1} * dz_{1-1}/dw_{11-1} = 0.0014217 x 0.02 = 2.843e-05",
        "dL/dw_{31-1} = dL/dz_{1-1} * dz_{1-1}/dw_{31-1} = 0.001422 x (-2.06) = -0.002929",
    ]
    positions = [text.index(line) for line in lines]
    assert positions == sorted(positions)
    assert "Gradient-descent update (learning rate eta = 0.5)" in text


def test_digits_change_only_the_display(reference):
    six = reference.to_text(digits=6)
    # six significant digits; 0.103731 x 0.204319 = 0.02119423 would not give 0.0211943
    assert "dL/dz_{1-2} = dL/dyhat * dyhat/dz_{1-2} = 0.1037312 x 0.2043190 = 0.0211943" in six
    assert "dL/dw_{31-1} = dL/dz_{1-1} * dz_{1-1}/dw_{31-1} = 0.00142173 x (-2.06) = -0.00292876" in six


def test_colour_tables_with_rich_and_plain_without(reference, monkeypatch):
    pytest.importorskip("rich", reason="rich is the optional 'pretty' extra")
    coloured = reference.to_text(color=True)
    assert ANSI.search(coloured)
    assert "0.02119" in ANSI.sub("", coloured)
    real_import = builtins.__import__

    def no_rich(name, *args, **kwargs):
        if name == "rich" or name.startswith("rich."):
            raise ImportError("rich is not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rich)
    fallback = reference.to_text(color=True)
    assert fallback == reference.to_text()


def test_json_schema(reference):
    doc = json.loads(reference.to_json())
    assert doc["schema"] == "chainrule.explanation" and doc["version"] == 1
    assert doc["network"] == {
        "sizes": [3, 2, 1],
        "activations": ["sigmoid", "sigmoid"],
        "loss": "l2_loss",
        "batch": 1,
    }
    by_name = {q["name"]: q for q in doc["quantities"]}
    q = by_name["dL/dw_{31-1}"]
    assert q["kind"] == "chain" and q["terms"] == [["dL/dz_{1-1}", "dz_{1-1}/dw_{31-1}"]]
    assert q["value"] == reference["dL/dw_{31-1}"].value  # exact, not rounded
    assert q["display"] == "-0.002929"
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert set(nodes) == {"W1", "b1", "z1", "y1", "W2", "b2", "z2", "yhat", "L"}
    for n in doc["nodes"]:
        assert {"name", "op", "expression", "value", "gradient", "local_derivatives"} <= set(n)
    assert nodes["L"]["gradient"] == 1.0
    jac = np.array(nodes["y1"]["local_derivatives"]["z1"]["jacobian"])
    np.testing.assert_allclose(
        np.diag(jac), [reference["dy_{1-1}/dz_{1-1}"].value, reference["dy_{2-1}/dz_{2-1}"].value]
    )
    np.testing.assert_allclose(nodes["W1"]["gradient"], np.array(doc["gradients"][0]["values"]).T)
    assert doc["update"][0]["name"] == "w_1^new"


def test_markdown_and_latex(reference):
    md = reference.to_markdown()
    assert md.startswith("# ") and "| $z_{1\\text{-}1}$ |" in md  # the hyphen, not a minus: tex_name
    assert r"$\frac{\partial L}{\partial w_{31\text{-}1}}$" in md
    tex = reference.to_latex()
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") >= 5
    assert r"2.843 \times 10^{-5}" in tex
    # closed forms in LaTeX, with numbers in the LaTeX template too (no Python '*' or 'if')
    assert r"&= \hat{y} - y = 0.7137 - 0.61 = 0.1037" in tex
    assert r"= \hat{y}\,(1 - \hat{y}) = 0.7137\,(1 - 0.7137) = 0.2043" in tex
    assert " * " not in tex
    assert tex.count("{") == tex.count("}")


def test_html_is_self_contained(reference):
    page = reference.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and 'id="network"' in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)  # nothing fetched
    assert page.count("<circle") == 6  # 3 inputs, 2 hidden, 1 output
    assert " = 2.843e-05</text>" in page  # edges carry their gradient (dL/dw, its name in tspans)
    # formulas marked for the inlined KaTeX, each with an HTML fallback (tests/test_html_render.py
    # typesets them in Chromium): yhat as y-hat, x_1 subscripted, a function's name intact
    assert '<span class="cr-math" data-tex="\\hat{y} - y">&#375; - y</span>' in page
    assert '<span class="cr-math" data-tex="0.7137 - 0.61">0.7137 - 0.61</span>' in page
    assert "l2_loss(&#375;, y" in page and "<sub>l</sub>oss" not in page
    assert reference._repr_html_().startswith("<div")


def test_generic_graph_formats():
    import chainrule as cr

    a = cr.tensor([1.0, 2.0], requires_grad=True, name="a")
    loss = (cr.exp(a) * 3.0).sum()
    from chainrule.explain import explain

    e = explain(loss)
    for fmt_name in ("text", "markdown", "latex", "json", "html"):
        out = e.render(fmt_name)
        assert "a" in out and len(out) > 100
    doc = json.loads(e.to_json())
    assert doc["network"] is None and doc["quantities"] == []
    np.testing.assert_allclose(doc["nodes"][0]["gradient"], 3 * np.exp([1.0, 2.0]), rtol=1e-14)
    with pytest.raises(ValueError, match="format"):
        e.render("pdf")


def test_cli_formats_and_output_file(tmp_path, run_cli):
    code, out, err = run_cli(["explain"])
    assert code == 0 and err == "" and "dL/dw_{31-1}" in out and not ANSI.search(out)
    code, out, _ = run_cli(["explain", "--format", "json", "--digits", "3"])
    assert code == 0 and json.loads(out)["digits"] == 3
    target = tmp_path / "page.html"
    code, out, _ = run_cli(["explain", "--format", "html", "--output", str(target)])
    assert code == 0 and out == "" and target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left behind
    code, out, _ = run_cli(["explain", "--notation", "matrix", "--lr", "0.1"])
    assert code == 0 and "dL/dW1[0,2]" in out and "W1[0,2]^{new}" in out


def test_failed_run_leaves_an_existing_output_alone(tmp_path, run_cli):
    target = tmp_path / "keep.txt"
    target.write_text("precious")
    bad = tmp_path / "bad.toml"
    bad.write_text("sizes = [")
    code, _, err = run_cli(["explain", str(bad), "--output", str(target)])
    assert code == 2 and target.read_text() == "precious"
    code, _, err = run_cli(["explain", "--output", str(tmp_path / "no-dir" / "x.txt")])
    assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_diagram(tmp_path, suffix, magic, run_cli):
    pytest.importorskip("matplotlib", reason="the diagram needs the optional 'plot' extra")
    target = tmp_path / f"net{suffix}"
    code, out, _ = run_cli(["explain", "--diagram", str(target)])
    assert code == 0 and "dL/dw_{31-1}" in out
    assert target.read_bytes().startswith(magic)
    if suffix == ".png":
        import matplotlib.image

        pixels = matplotlib.image.imread(str(target))
        assert pixels.std() > 0.05  # something is drawn


def test_diagram_rejects_other_extensions(tmp_path, run_cli):
    code, _, err = run_cli(["explain", "--diagram", str(tmp_path / "net.pdf")])
    assert code == 2 and ".png or .svg" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "--digits", "x"],
        ["explain", "--digits", "99"],
        ["explain", "--lr", "nan"],
        ["explain", "--format", "pdf"],
    ],
)
def test_bad_options(argv, run_cli):
    code, out, err = run_cli(argv)
    assert code == 2 and out == "" and err.count("\n") == 1


def test_shipped_examples_explain_from_any_directory(tmp_path):
    # the reference network and the examples are package data, found wherever Python runs
    script = "import sys, chainrule.cli as c; sys.exit(c.main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    for argv in (["explain"], ["explain", "tanh-huber-batch"], ["explain", "--examples"]):
        done = subprocess.run(
            [sys.executable, "-c", script, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout


def test_examples_listing_gives_the_names_the_commands_take(run_cli):
    code, out, err = run_cli(["explain", "--examples"])
    assert code == 0 and err == ""
    networks, worksheets = out.split("worksheets (chainrule check NAME)")
    assert networks.startswith("networks (chainrule explain NAME)")
    assert "\n  reference " in networks and "reference-worksheet" not in networks
    assert "\n  reference-worksheet " in worksheets
    # every listed network name is one `chainrule explain NAME` accepts
    for line in networks.splitlines()[1:]:
        name = line.split()[0]
        assert run_cli(["explain", name, "--format", "json"])[0] == 0, name


def test_interactive_page_is_not_dumped_on_a_terminal(run_cli, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # sys.stdout is the capture here
    code, out, err = run_cli(["explain", "--interactive"])
    assert code == 2 and out == "" and err.count("\n") == 1 and "-o FILE.html" in err


# --- the network file's [aliases] beside chainrule's names ------------------------------------


@pytest.fixture(scope="module")
def mazur():
    from chainrule.explain.worksheet import find_example

    return explain_network(load_network(find_example("mazur-2-2-2")), lr=0.5)


def test_alias_names_follow_the_file(mazur):
    assert mazur.alias_of("y_{1-1}") == "out_h1"
    assert mazur.alias_of("dL/dw_{11-2}") == "dE_total/dw5"  # E_total = L, w5 = w_{11-2}
    assert mazur.alias_of("w_{11-2}^{new}") == "w5^{new}"
    assert mazur.alias_of("dL_2/dy_{1-1}") == "dE_o2/dout_h1"
    assert mazur.alias_of("dy_{1-1}/dz_{1-1}") == "dout_h1/dnet_h1"
    assert mazur.alias_of("delta_{1-2}") == ""  # the file names no delta
    for q in mazur.quantities:  # every alias shown names its quantity
        alias = mazur.alias_of(q.name)
        assert not alias or mazur[alias] is q


def test_aliases_beside_the_names_in_every_format(mazur):
    text = mazur.to_text()
    assert "  y_{1-1} (out_h1) = sigmoid(z_{1-1}) = sigmoid(0.3775) = 0.5933\n" in text
    assert "  x_1 (i1) = 0.05\n" in text  # the givens too
    assert "  dL/dw_{11-2} (dE_total/dw5) = dL/dz_{1-2} * dz_{1-2}/dw_{11-2} = " in text
    assert "  w_{11-2}^{new} (w5^{new}) = w_{11-2} - 0.5 * dL/dw_{11-2} = " in text
    assert r"| $y_{1\text{-}1}$ (`out_h1`) | $\sigma(z_{1\text{-}1})$ |" in mazur.to_markdown()
    latex = mazur.to_latex()
    assert r"y_{1\text{-}1}\ (\mathtt{out\_h1}) &= " in latex
    assert r"w_{11\text{-}2}^{\text{new}}\ (\mathtt{w5}^{\mathtt{new}}) &= " in latex
    html = mazur.to_html()
    assert "<span class='alias'>(dE_total/dw5)</span>" in html
    rows = {q["name"]: q for q in json.loads(mazur.to_json())["quantities"]}
    assert rows["z_{1-1}"]["alias"] == "net_h1" and rows["dL/dz_{1-2}"]["alias"] == "dE_total/dnet_o1"
    assert rows["delta_{1-2}"]["alias"] is None


def test_api_aliases_are_shown_and_built_in_ones_are_not():
    import chainrule as cr
    import chainrule.functional as F

    w = cr.tensor([[0.5, -0.25]], requires_grad=True)
    out = F.linear(np.array([1.0, 2.0]), w, np.array([0.1]))  # a linear output: yhat is built in
    e = cr.explain(F.l2_loss(out, np.array([0.3])), aliases={"w_a": "w_{11-1}"})
    text = e.to_text()
    assert "  w_{11-1} (w_a) = 0.5\n" in text and "(yhat)" not in text
    assert e["yhat"].name == "z_{1-1}"  # the built-in alias still resolves
