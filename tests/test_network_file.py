"""The network file: what it accepts, and one clear line (exit 2) for everything it does not."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.explain import NetworkFileError, explain_network, load_network, parse_network

GOOD = """
title = "tiny"
sizes = [2, 1]
activation = "tanh"
[loss]
name = "huber_loss"
delta = 0.25
[data]
input = [1.0, -0.5]
target = 0.3
[[layers]]
weights = [[0.2, 0.4]]
bias = [0.1]
"""




def test_a_good_file_builds_the_network_it_describes(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text(GOOD)
    spec = load_network(path)
    e = explain_network(spec)
    z = 0.2 * 1.0 + 0.4 * -0.5 + 0.1
    r = np.tanh(z) - 0.3
    huber = 0.5 * r**2 if abs(r) <= 0.25 else 0.25 * (abs(r) - 0.125)
    assert e.loss == pytest.approx(huber, rel=1e-14)
    assert e["dL/dw_{11-1}"].value == pytest.approx(
        (r if abs(r) <= 0.25 else 0.25 * np.sign(r)) * (1 - np.tanh(z) ** 2) * 1.0, rel=1e-12
    )


def test_sizes_may_be_inferred_from_the_weights():
    spec = parse_network(
        {"data": {"input": [1.0, 2.0], "target": [0.5]}, "layers": [{"weights": [[0.1, 0.2]], "bias": [0.0]}]}
    )
    assert spec.sizes == [2, 1]


def test_a_layer_without_bias():
    spec = parse_network(
        {
            "sizes": [2, 1],
            "data": {"input": [1.0, 2.0], "target": 0.5},
            "layers": [{"weights": [[0.1, 0.2]], "bias": False}],
        }
    )
    e = explain_network(spec)
    assert "B_{1-1}" not in e
    assert e["z_{1-1}"].value == pytest.approx(0.5)


BAD = [
    # (file text, words the one-line message must contain)
    ("sizes = [2, 1\n", ["not valid TOML"]),
    (
        GOOD.replace("weights = [[0.2, 0.4]]", "weights = [[0.2, 0.4, 0.9]]"),
        ["[[layers]] #1 weights", "2 numbers"],
    ),
    (GOOD.replace("sizes = [2, 1]", "sizes = [3, 1]"), ["[data] input", "3 numbers"]),
    (GOOD.replace('activation = "tanh"', 'activation = "swish"'), ["activation", "sigmoid"]),
    (GOOD.replace('name = "huber_loss"', 'name = "l3_loss"'), ["[loss] name", "l2_loss"]),
    (GOOD.replace("delta = 0.25", "delta = -1.0"), ["[loss]", "delta"]),
    (GOOD.replace("delta = 0.25", "margin = 1.0"), ["[loss] margin", "delta"]),
    (GOOD.replace("input = [1.0, -0.5]", 'input = [1.0, "x"]'), ["[data] input", "numbers"]),
    (GOOD.replace("target = 0.3", 'target = "high"'), ["[data] target", "numbers"]),
    (GOOD.replace("target = 0.3", "target = [0.3, 0.4]"), ["[data] target", "1 numbers"]),
    (GOOD.replace("bias = [0.1]", "bias = [0.1, 0.2]"), ["[[layers]] #1 bias", "1 numbers"]),
    (GOOD.replace("bias = [0.1]", ""), ["[[layers]] #1 bias", "seed"]),
    (GOOD.replace('title = "tiny"', 'titel = "tiny"'), ["titel", "unknown key"]),
    (GOOD.replace("[loss]", "seed = -3\n[loss]"), ["seed", "non-negative"]),
    (GOOD.replace('name = "huber_loss"', 'name = "huber_loss"\nreduction = "none"'), ["reduction", "scalar"]),
    (GOOD.replace("[data]", "[data]\nbatch = 2"), ["[data] batch", "unknown key"]),
]


@pytest.mark.parametrize("text,words", BAD)
def test_bad_network_files_fail_in_one_line(tmp_path, text, words, run_cli):
    path = tmp_path / "bad-net.toml"
    path.write_text(text)
    with pytest.raises(NetworkFileError) as info:  # the library: a ValueError
        load_network(path)
    assert isinstance(info.value, ValueError)
    code, out, err = run_cli(["explain", str(path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err
    for word in words:
        assert word in err, (word, err)


def test_missing_file_and_directory(tmp_path, run_cli):
    code, _, err = run_cli(["explain", str(tmp_path / "none.toml")])
    assert code == 2 and "none.toml" in err and err.count("\n") == 1
    code, _, err = run_cli(["explain", str(tmp_path)])
    assert code == 2 and err.count("\n") == 1


def test_not_utf8(tmp_path, run_cli):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'title = "caf\xe9"\n')
    code, _, err = run_cli(["explain", str(path)])
    assert code == 2 and "latin1.toml" in err and err.count("\n") == 1


# --- the shapes and conventions of textbook exercises (issue 11) ----------------------------------

TWO_TWO = """
sizes = [2, 2, 1]
activation = "sigmoid"
[data]
input = [0.5, -1.0]
target = 0.25
[[layers]]
{first}
[[layers]]
weights = [[0.3, -0.6]]
bias = [0.05]
"""


def _numpy_two_two(w1, b1):
    """The 2-2-1 network above by hand: the loss and dL/dW1, dL/db1 (b1 shared if 0-d)."""
    x, w2, b2 = np.array([0.5, -1.0]), np.array([[0.3, -0.6]]), 0.05
    h = 1 / (1 + np.exp(-(w1 @ x + b1)))
    o = 1 / (1 + np.exp(-(w2 @ h + b2)))
    d_o = (o - 0.25) * o * (1 - o)
    d_h = (w2.T @ d_o) * h * (1 - h)
    return 0.5 * np.sum((o - 0.25) ** 2), np.outer(d_h, x), d_h


def _parse(text: str):
    return parse_network(__import__("tomllib").loads(text), source="net.toml")


W1 = np.array([[0.1, 0.2], [-0.3, 0.4]])


@pytest.mark.parametrize(
    "first",
    [
        "weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = [0.7, -0.2]",  # out-in, PyTorch's
        'layout = "in-out"\nweights = [[0.1, -0.3], [0.2, 0.4]]\nbias = [0.7, -0.2]',
        'layout = "bias-first"\nweights = [[0.7, 0.1, 0.2], [-0.2, -0.3, 0.4]]',
    ],
    ids=["out-in", "in-out", "bias-first"],
)
def test_weight_layouts_describe_the_same_network(first):
    e = explain_network(_parse(TWO_TWO.format(first=first)))
    loss, gw, gb = _numpy_two_two(W1, np.array([0.7, -0.2]))
    assert e.loss == pytest.approx(loss, rel=1e-14)
    assert e["w_{21-1}"].value == 0.2 and e["w_{12-1}"].value == -0.3  # from input 2 to unit 1; 1 to 2
    assert e["dL/dw_{12-1}"].value == pytest.approx(gw[1, 0], rel=1e-13)
    assert e["dL/dB_{2-1}"].value == pytest.approx(gb[1], rel=1e-13)


def test_a_shared_bias_is_one_quantity_whose_gradient_sums_the_units():
    e = explain_network(_parse(TWO_TWO.format(first="weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = 0.35")))
    loss, gw, gb = _numpy_two_two(W1, 0.35)
    assert e.loss == pytest.approx(loss, rel=1e-14)
    assert e["B_{1}"].value == 0.35 and "B_{1-1}" not in e
    assert e["dL/dB_{1}"].value == pytest.approx(gb.sum(), rel=1e-13)
    assert len(e["dL/dB_{1}"].terms) == 2  # one chain-rule term per unit that shares it
    assert "z_{1-1} = x_1 * w_{11-1} + x_2 * w_{21-1} + B_{1}" in e.to_text()


def test_fixed_parameters_get_no_gradient_and_no_update():
    first = 'weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = [0.7, -0.2]\nfixed = ["bias"]'
    e = explain_network(_parse(TWO_TWO.format(first=first)), lr=0.5)
    _, gw, _ = _numpy_two_two(W1, np.array([0.7, -0.2]))
    assert "dL/dB_{1-1}" not in e and "B_{1-1}^{new}" not in e and "dz_{1-1}/dB_{1-1}" not in e
    assert e["dL/dw_{11-1}"].value == pytest.approx(gw[0, 0], rel=1e-13)
    assert "B_{1-2}^{new}" in e  # the other layer's bias still trains
    weights = 'weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = [0.7, -0.2]\nfixed = "weights"'
    e = explain_network(_parse(TWO_TWO.format(first=weights)))
    assert "dL/dw_{11-1}" not in e and "dz_{1-1}/dw_{11-1}" not in e
    assert e["dL/dB_{1-1}"].value == pytest.approx(_numpy_two_two(W1, np.array([0.7, -0.2]))[2][0], rel=1e-13)


def test_input_gradients_and_delta_names():
    text = TWO_TWO.format(first="weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = [0.7, -0.2]")
    text = text.replace("target = 0.25", "target = 0.25\nrequires_grad = true")
    e = explain_network(_parse('delta = "-dL/dz"\n' + text))
    _, _, gb = _numpy_two_two(W1, np.array([0.7, -0.2]))
    assert e["dL/dx_2"].value == pytest.approx(W1[:, 1] @ gb, rel=1e-13)  # dL/dx = W^T dL/dz
    assert e["delta_{1-1}"].value == pytest.approx(-gb[0], rel=1e-13)  # delta = -dL/dz
    assert e["delta_{1-1}"].formula == "-dL/dz_{1-1}"


def test_no_loss_explains_the_output_itself():
    text = """
sizes = [2, 1]
activation = "none"
[loss]
name = "none"
[data]
input = [3.0, -2.0]
[[layers]]
weights = [[0.5, 4.0]]
bias = false
"""
    e = explain_network(_parse(text))
    assert e.loss == 3.0 * 0.5 - 2.0 * 4.0
    assert e["dz_{1-1}/dw_{21-1}"].value == -2.0
    assert "Output z_{1-1} = -6.5" in e.to_text()


@pytest.mark.parametrize(
    "activation, loss",
    [
        ("softmax", "cross_entropy"),
        ("log_softmax", "cross_entropy"),
        ("sigmoid", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy_with_logits"),
    ],
)
def test_a_loss_that_takes_logits_after_a_squashing_layer_is_refused(activation, loss):
    target = "0" if loss == "cross_entropy" else "[1.0, 0.0]"
    text = f"""
sizes = [2, 2]
activation = "{activation}"
[loss]
name = "{loss}"
[data]
input = [0.5, -1.0]
target = {target}
[[layers]]
weights = [[0.1, 0.2], [-0.3, 0.4]]
bias = [0.0, 0.0]
"""
    with pytest.raises(NetworkFileError, match='takes logits .* activation = "none"'):
        _parse(text)
    fine = explain_network(_parse(text.replace(f'activation = "{activation}"', 'activation = "none"')))
    assert "yhat_1" in fine  # the probabilities are named quantities


def test_the_api_warns_about_softmax_before_cross_entropy():
    import chainrule as cr
    import chainrule.functional as F

    W = cr.tensor([[0.1, 0.2], [-0.3, 0.4]], requires_grad=True)
    with pytest.warns(UserWarning, match="squash twice"):
        cr.explain(F.cross_entropy(F.softmax(F.linear(np.array([[0.5, -1.0]]), W)), np.array([0])))


@pytest.mark.parametrize(
    "change, message",
    [
        ('layout = "rows"', "layout: expected one of"),
        ('fixed = ["everything"]', 'fixed: expected a list of "weights"'),
        ('delta = "d"', "delta: expected one of"),
        ("bias = nan", "bias: expected a finite number"),
    ],
)
def test_bad_conventions_are_named(change, message):
    first = "weights = [[0.1, 0.2], [-0.3, 0.4]]\nbias = [0.7, -0.2]"
    if change.startswith("delta"):
        text = change + "\n" + TWO_TWO.format(first=first)
    elif change.startswith("bias"):
        text = TWO_TWO.format(first="weights = [[0.1, 0.2], [-0.3, 0.4]]\n" + change)
    else:
        text = TWO_TWO.format(first=first + "\n" + change)
    with pytest.raises(NetworkFileError, match=message):
        _parse(text)


def test_a_worksheet_is_not_a_network_file_and_says_which_command(run_cli):
    code, _, err = run_cli(["explain", "reference-worksheet"])
    assert code == 2 and "is a worksheet" in err and "chainrule check" in err
    code, _, err = run_cli(["check", "reference"])
    assert code == 2 and "is a network file" in err and "chainrule explain" in err
