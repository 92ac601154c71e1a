"""Per-path partial terms: a unit that feeds several units shows each path's term, named, before
the chain rule sums them (dL/dy_{1-1}|z_{1-2}: the part of dL/dy_{1-1} through z_{1-2}).

Every value is compared with a NumPy backward pass typed out here (and the torch oracle of
tests/test_explain_examples.py covers the sums); worksheets may give the terms and are graded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomllib

from chainrule.explain import explain_network, load_network, parse_network
from chainrule.explain.worksheet import check, find_example


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _two_hidden():
    spec = load_network(find_example("two-hidden-layers"))
    x, t = spec.input, spec.target
    (w1, w2, w3), (b1, b2, b3) = spec.weights, spec.biases
    h1 = np.tanh(x @ w1.T + b1)
    h2 = _sigmoid(h1 @ w2.T + b2)
    out = h2 @ w3.T + b3
    d3 = 2 * (out - t) / out.size  # dL/dz_{j-3}, MSE mean over 6 numbers
    d2 = (d3 @ w3) * h2 * (1 - h2)  # dL/dz_{j-2}
    return spec, (w1, w2, w3), (d3, d2)


def test_every_path_of_a_deep_hidden_unit_against_numpy():
    spec, (w1, w2, w3), (d3, d2) = _two_hidden()
    e = explain_network(spec)
    checked = 0
    for li, (w, d) in ((2, (w2, d2)), (3, (w3, d3))):  # y of layer li-1 feeds every unit of li
        units, fan_in = w.shape
        for s in range(2):
            for i in range(fan_in):
                total = f"dL/dy_{{{i + 1}-{li - 1}}}^{{({s + 1})}}"
                paths = [f"{total}|z_{{{j + 1}-{li}}}^{{({s + 1})}}" for j in range(units)]
                for j, name in enumerate(paths):
                    assert e[name].value == pytest.approx(d[s, j] * w[j, i], rel=1e-13, abs=1e-17)
                    assert e[name].terms == (e[total].terms[j],)
                    checked += 1
                # the terms sum to the gradient, which comes first from chainrule.grad
                assert sum(e[p].value for p in paths) == pytest.approx((d @ w)[s, i], rel=1e-12)
                order = [q.name for q in e.quantities]
                assert max(order.index(p) for p in paths) < order.index(total)
    assert checked == 2 * 3 * 2 + 2 * 2 * 3


def test_input_gradients_and_a_shared_bias_have_their_paths():
    doc = tomllib.loads(find_example("mazur-2-2-2").read_text())
    for layer in doc["layers"]:
        del layer["fixed"]  # the shared biases trainable: each feeds both units of its layer
    doc["data"]["requires_grad"] = True
    e = explain_network(parse_network(doc, source="mazur-trainable"))
    x, t = np.array([0.05, 0.10]), np.array([0.01, 0.99])
    w1 = np.array([[0.15, 0.20], [0.25, 0.30]])  # (out, in)
    w2 = np.array([[0.40, 0.45], [0.50, 0.55]])
    h = _sigmoid(w1 @ x + 0.35)
    o = _sigmoid(w2 @ h + 0.60)
    d_o = (o - t) * o * (1 - o)
    d_h = (w2.T @ d_o) * h * (1 - h)
    for j in range(2):
        assert e[f"dL/dB_{{1}}|z_{{{j + 1}-1}}"].value == pytest.approx(d_h[j], rel=1e-13)
        assert e[f"dL/dB_{{2}}|z_{{{j + 1}-2}}"].value == pytest.approx(d_o[j], rel=1e-13)
        for i in range(2):
            assert e[f"dL/dx_{i + 1}|z_{{{j + 1}-1}}"].value == pytest.approx(d_h[j] * w1[j, i], rel=1e-13)
    # the file's aliases reach them: b1 feeds net_h1 and net_h2; i1 feeds them too
    assert e["dE_total/db1|net_h2"].value == pytest.approx(d_h[1], rel=1e-13)
    assert e["dE_total/di1|net_h2"].value == pytest.approx(d_h[1] * w1[1, 0], rel=1e-13)


def test_output_shares_keep_the_textbook_name_and_the_path_name_is_an_alias():
    e = explain_network(load_network(find_example("mazur-2-2-2")))
    assert e.resolve("dL/dy_{1-1}|z_{2-2}") == "dL_2/dy_{1-1}"
    assert e.resolve("dE_total/dout_h1|net_o1") == "dL_1/dy_{1-1}"
    assert "dL/dy_{1-1}|z_{1-2}" not in e.values()  # one quantity, not two


def test_a_softmax_hidden_layer_sums_over_its_outputs():
    doc = {
        "sizes": [2, 3, 1],
        "activation": ["softmax", "sigmoid"],
        "loss": "l2_loss",
        "data": {"input": [0.5, -1.0], "target": 0.25},
        "layers": [
            {"weights": [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]], "bias": [0.0, 0.1, -0.1]},
            {"weights": [[1.0, -2.0, 0.5]], "bias": [0.2]},
        ],
    }
    e = explain_network(parse_network(doc, source="softmax-hidden"))
    x = np.array([0.5, -1.0])
    w1 = np.array(doc["layers"][0]["weights"])
    w2 = np.array(doc["layers"][1]["weights"])
    z = w1 @ x + np.array([0.0, 0.1, -0.1])
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    o = _sigmoid(w2 @ p + 0.2)
    dy = (o - 0.25) * o * (1 - o) * w2[0]  # dL/dy_{k-1}
    jac = np.diag(p) - np.outer(p, p)  # dy_k/dz_e of softmax, by hand
    for e_ in range(3):
        paths = [e[f"dL/dz_{{{e_ + 1}-1}}|y_{{{k + 1}-1}}"].value for k in range(3)]
        np.testing.assert_allclose(paths, dy * jac[:, e_], rtol=1e-12, atol=1e-17)
        assert sum(paths) == pytest.approx(e[f"dL/dz_{{{e_ + 1}-1}}"].value, rel=1e-12)


def test_matrix_notation_names_paths_too():
    spec, (_, w2, _), (_, d2) = _two_hidden()
    e = explain_network(spec, notation="matrix")
    assert e["dL/dy1[1,0]|z2[1,1]"].value == pytest.approx(d2[1, 1] * w2[1, 0], rel=1e-13)


def test_paths_in_every_format_before_their_sum():
    e = explain_network(load_network(find_example("two-hidden-layers")))
    path, total = "dL/dy_{1-1}^{(1)}|z_{2-2}^{(1)}", "dL/dy_{1-1}^{(1)} ="
    text = e.to_text()
    assert text.index(f"  {path} = ") < text.index(f"  {total}")
    md = e.to_markdown()
    tex = r"\left.\frac{\partial L}{\partial y_{1-1}^{(1)}}\right|_{\text{via } z_{2-2}^{(1)}}"
    tex = tex.replace("-", r"\text{-}")  # the hyphen of y_{1-1}, not a minus sign: tex_name
    md_tex = tex.replace(r"\right|", r"\right\vert ")  # a table cell's bar: \vert, not \|
    assert md.index(md_tex) < md.index(r"| $\frac{\partial L}{\partial y_{1\text{-}1}^{(1)}}$ |")
    latex = e.to_latex()
    assert latex.index(tex + " &=") < latex.index(r"\frac{\partial L}{\partial y_{1\text{-}1}^{(1)}} &=")
    names = [q["name"] for q in json.loads(e.to_json())["quantities"]]
    assert names.index(path) < names.index(total[:-2])
    html = e.to_html()
    assert html.index("&part;L/&part;y<sub>1-1</sub><sup>(1)</sup>|z<sub>2-2</sub>") < html.index(
        "&part;L/&part;y<sub>1-1</sub><sup>(1)</sup></"
    )


def _grade(tmp_path, text):
    path = tmp_path / "sheet.toml"
    path.write_text(text)
    return {v.label or v.name: v for v in check(tomllib.loads(text), source=str(path), raw=text).verdicts}


def test_a_worksheet_grades_path_terms(tmp_path):
    spec, (_, w2, _), (_, d2) = _two_hidden()
    right = d2[0, 1] * w2[1, 0]  # dL/dy_{1-1}^{(1)} through z_{2-2}^{(1)}
    verdicts = _grade(
        tmp_path,
        f"""network = "two-hidden-layers"
[values]
"dL/dy_{{1-1}}^{{(1)}}|z_{{1-2}}^{{(1)}}" = "{d2[0, 0] * w2[0, 0]:.4f}"
"dL/dy_{{1-1}}^{{(1)}}|z_{{2-2}}^{{(1)}}" = "{-right:.4f}"
""",
    )
    assert verdicts["dL/dy_{1-1}^{(1)}|z_{1-2}^{(1)}"].status == "correct"
    wrong = verdicts["dL/dy_{1-1}^{(1)}|z_{2-2}^{(1)}"]
    assert wrong.status == "wrong" and wrong.sign_error


def test_work_written_as_the_named_path_terms(tmp_path):
    sheet = """network = "mazur-2-2-2"
[values]
"dE_o1/dout_h1" = 0.0554
"dE_total/dout_h1 via net_o2" = -0.0190
"dE_total/dout_h1" = { value = 0.0364, work = "%s" }
"""
    whole = _grade(tmp_path, sheet % "dE_o1/dout_h1 + dE_total/dout_h1|net_o2")
    assert whole["dE_o1/dout_h1"].status == "correct"
    assert whole["dE_total/dout_h1 via net_o2"].status == "correct"  # "via" spells the bar
    assert whole["dE_total/dout_h1"].status == "correct" and whole["dE_total/dout_h1"].note == ""
    half = _grade(tmp_path, sheet % "dE_o1/dout_h1")
    assert "leaves out the chain-rule term dL/dz_{2-2} * dz_{2-2}/dy_{1-1}" in half["dE_total/dout_h1"].note
