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
