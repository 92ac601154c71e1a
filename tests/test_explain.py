"""chainrule.explain: every number of the explanation against independent computations.

The expected values are computed here with plain NumPy (the reference network written out by
hand) and with PyTorch's autograd where installed, never taken from chainrule's own output.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F
from chainrule.explain import (
    example_paths,
    explain,
    explain_network,
    load_network,
    parse_network,
    reference_path,
)
from chainrule.explain.numbers import decimals_written, fmt, fmt_fixed
from chainrule.explain.worksheet import find_example

# --- the reference network, written out in NumPy --------------------------------------------

X = np.array([0.02, 0.03, -2.06])
TARGET = 0.61
W1 = np.array([[0.36, 0.74, -0.28], [0.29, -0.27, -0.84]])  # row j: weights into unit j
B1 = np.array([0.7, 0.17])
W2 = np.array([[0.4, 1.16]])
B2 = np.array([-0.41])


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference_values() -> dict[str, float]:
    """Every named quantity of part 3, by hand-written NumPy (w_{ij-l} is W_l[j-1, i-1])."""
    z1 = W1 @ X + B1
    y1 = _sig(z1)
    z2 = W2 @ y1 + B2
    yh = _sig(z2)
    L = 0.5 * np.sum((TARGET - yh) ** 2)
    dL_dyh = yh - TARGET
    dyh_dz2 = yh * (1 - yh)
    dL_dz2 = dL_dyh * dyh_dz2
    dL_dy1 = W2[0] * dL_dz2[0]
    dy1_dz1 = y1 * (1 - y1)
    dL_dz1 = dL_dy1 * dy1_dz1
    v = {
        "z_{1-1}": z1[0],
        "z_{2-1}": z1[1],
        "y_{1-1}": y1[0],
        "y_{2-1}": y1[1],
        "z_{1-2}": z2[0],
        "yhat": yh[0],
        "L": L,
        "dL/dyhat": dL_dyh[0],
        "dyhat/dz_{1-2}": dyh_dz2[0],
        "dL/dz_{1-2}": dL_dz2[0],
        "dL/dB_{1-2}": dL_dz2[0],
        "dz_{1-2}/dB_{1-2}": 1.0,
    }
    for i in range(2):
        v[f"dz_{{1-2}}/dw_{{{i + 1}1-2}}"] = y1[i]
        v[f"dz_{{1-2}}/dy_{{{i + 1}-1}}"] = W2[0, i]
        v[f"dL/dw_{{{i + 1}1-2}}"] = dL_dz2[0] * y1[i]
        v[f"dL/dy_{{{i + 1}-1}}"] = dL_dy1[i]
        v[f"dy_{{{i + 1}-1}}/dz_{{{i + 1}-1}}"] = dy1_dz1[i]
        v[f"dL/dz_{{{i + 1}-1}}"] = dL_dz1[i]
        v[f"dL/dB_{{{i + 1}-1}}"] = dL_dz1[i]
        v[f"dz_{{{i + 1}-1}}/dB_{{{i + 1}-1}}"] = 1.0
    for j in range(2):
        for i in range(3):
            v[f"dz_{{{j + 1}-1}}/dw_{{{i + 1}{j + 1}-1}}"] = X[i]
            v[f"dz_{{{j + 1}-1}}/dx_{i + 1}"] = W1[j, i]
            v[f"dL/dw_{{{i + 1}{j + 1}-1}}"] = dL_dz1[j] * X[i]
    return v


@pytest.fixture(scope="module")
def reference():
    return explain_network(load_network())


def test_reference_file_is_the_reference_network():
    spec = load_network(reference_path())
    assert spec.sizes == [3, 2, 1]
    np.testing.assert_array_equal(spec.input, X)
    np.testing.assert_array_equal(spec.weights[0], W1)
    np.testing.assert_array_equal(spec.weights[1], W2)
    np.testing.assert_array_equal(spec.biases[0], B1)
    np.testing.assert_array_equal(spec.biases[1], B2)
    assert spec.target.tolist() == [TARGET]


def test_every_reference_quantity_matches_numpy(reference):
    expected = reference_values()
    for name, value in expected.items():
        assert reference[name].value == pytest.approx(value, rel=1e-12, abs=1e-15), name
    # and nothing computed is left unchecked
    computed = {q.name for q in reference.quantities if q.kind in ("forward", "loss", "local", "chain")}
    assert computed == set(expected)


def test_reference_values_match_the_solution_where_it_is_exact(reference):
    # the reference solution's 4-decimal values that are right (its slips are the checker's job)
    for name, written in {
        "z_{1-1}": "1.3062",
        "z_{2-1}": "1.8981",
        "y_{1-1}": "0.7869",
        "yhat": "0.7137",
        "dyhat/dz_{1-2}": "0.2043",
        "dL/dz_{1-2}": "0.0212",
        "dL/dw_{11-2}": "0.0167",
    }.items():
        assert fmt_fixed(reference[name].value, 4) == written


def test_chain_rule_products_are_the_engine_gradients(reference):
    # each chain-rule line's factors multiply to the value shown, which is the engine's gradient
    for q in reference.section("chain"):
        product = sum(np.prod([reference[n].value for n in t]) for t in q.terms)
        assert product == pytest.approx(q.value, rel=1e-12, abs=1e-18), q.name


def test_gradient_arrays_match_torch(reference):
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for gradients")
    x = torch.tensor(X)
    w1 = torch.tensor(W1, requires_grad=True)
    b1 = torch.tensor(B1, requires_grad=True)
    w2 = torch.tensor(W2, requires_grad=True)
    b2 = torch.tensor(B2, requires_grad=True)
    yh = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)
    loss = 0.5 * ((yh - TARGET) ** 2).sum()
    loss.backward()
    arrays = {a.name: a.values for a in reference.arrays}
    # the solution lays dL/dw_1 out with rows i (from) and columns j (to): PyTorch's transpose
    np.testing.assert_allclose(arrays["dL/dw_1"], w1.grad.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(arrays["dL/dw_2"], w2.grad.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(arrays["dL/dB_1"][:, 0], b1.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(arrays["dL/dB_2"][:, 0], b2.grad.numpy(), rtol=1e-12)
    assert reference.loss == pytest.approx(loss.item(), rel=1e-14)
    assert reference.arrays[0].element_names[2][0] == "dL/dw_{31-1}"


def test_update_step_matches_numpy():
    e = explain_network(load_network(), lr=0.5)
    v = reference_values()
    assert e["w_{31-1}^{new}"].value == pytest.approx(-0.28 - 0.5 * v["dL/dw_{31-1}"], rel=1e-14)
    assert e["B_{1-2}^{new}"].value == pytest.approx(-0.41 - 0.5 * v["dL/dB_{1-2}"], rel=1e-14)
    w1 = W1 - 0.5 * np.array([[v[f"dL/dw_{{{i + 1}{j + 1}-1}}"] for i in range(3)] for j in range(2)])
    b1 = B1 - 0.5 * np.array([v["dL/dB_{1-1}"], v["dL/dB_{2-1}"]])
    w2 = W2 - 0.5 * np.array([[v["dL/dw_{11-2}"], v["dL/dw_{21-2}"]]])
    b2 = B2 - 0.5 * v["dL/dB_{1-2}"]
    yh = _sig(w2 @ _sig(w1 @ X + b1) + b2)
    assert e["L^{new}"].value == pytest.approx(0.5 * np.sum((yh - TARGET) ** 2), rel=1e-12)
    assert e["L^{new}"].value < e.loss  # a small step downhill


def test_matrix_notation_uses_array_indices():
    e = explain_network(load_network(), notation="matrix")
    v = reference_values()
    assert e["W1[0,2]"].value == -0.28  # w_{31-1}: into unit 1 (row 0) from input 3 (column 2)
    assert e["dL/dW1[0,2]"].value == pytest.approx(v["dL/dw_{31-1}"], rel=1e-12)
    assert e["dL/dz2[0]"].value == pytest.approx(v["dL/dz_{1-2}"], rel=1e-12)
    assert e.arrays[0].values.shape == (2, 3)  # PyTorch's layout in matrix notation
    with pytest.raises(ValueError, match="notation"):
        explain_network(load_network(), notation="tensor")


def test_explain_keeps_the_graph_and_touches_no_grad():
    spec = load_network()
    loss = spec.build()
    explain(loss)
    assert all(t.grad is None for t in spec.tensors.values())
    loss.backward()  # the graph is still there
    np.testing.assert_allclose(spec.tensors["W1"].grad[0, 2], reference_values()["dL/dw_{31-1}"], rtol=1e-12)


def test_explain_rejects_what_it_cannot_explain():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        explain(w * 2)
    with pytest.raises(ValueError, match="requires_grad"):
        explain(cr.tensor(3.0) * 2)
    with pytest.raises(TypeError, match="Tensor"):
        explain(3.0)
    loss = (w * w).sum()
    loss.backward()
    with pytest.raises(ValueError, match="freed"):
        explain(loss)
    with pytest.raises(ValueError, match="digits"):
        explain((w * w).sum(), digits=-1)


def test_any_scalar_graph_is_explained_node_by_node():
    # not an MLP: a product, an exp and a sum, with a constant
    a = cr.tensor([0.5, -1.0], requires_grad=True, name="a")
    b = cr.tensor([2.0, 3.0], requires_grad=True, name="b")
    c = a * b
    d = cr.exp(c)
    loss = (d + 1.5).sum()
    e = explain(loss)
    assert e.quantities == [] and e.network is None
    names = [n.name for n in e.nodes]
    assert names[-1] == "L" and {"a", "b"} <= set(names)
    # gradients against autograd
    anp = pytest.importorskip("autograd.numpy", reason="HIPS autograd is the independent oracle")
    from autograd import grad as agrad

    ga = agrad(lambda av: anp.sum(anp.exp(av * np.array([2.0, 3.0])) + 1.5))(np.array([0.5, -1.0]))
    np.testing.assert_allclose(e.node("a").gradient, ga, rtol=1e-12)
    # local derivative of c = a * b with respect to a: diag(b), from the mul VJP
    mul = next(n for n in e.nodes if n.op == "mul")
    np.testing.assert_allclose(mul.local["a"], np.diag([2.0, 3.0]))
    np.testing.assert_allclose(mul.local["b"], np.diag([0.5, -1.0]))
    exp_node = next(n for n in e.nodes if n.op == "exp")
    np.testing.assert_allclose(exp_node.local[mul.name], np.diag(np.exp([1.0, -3.0])), rtol=1e-14)
    text = e.to_text()
    assert "exp" in text and "dL/da" in text
    upd = explain(loss, lr=0.1)
    assert upd.update_arrays[-1].values[0, 0] < float(loss.data)


def test_hand_built_mlp_gets_the_named_view():
    # an MLP built by hand with F.linear (no names) is recognised from the graph alone
    x = np.array([[1.0, -2.0], [0.5, 0.25], [-1.0, 1.0]])
    W = cr.tensor([[0.3, -0.1], [0.2, 0.4]], requires_grad=True)
    b = cr.tensor([0.05, -0.05], requires_grad=True)
    V = cr.tensor([[1.0, -1.0]], requires_grad=True)
    loss = F.mse_loss(F.linear(F.tanh(F.linear(x, W, b)), V), np.array([[0.1], [0.2], [0.3]]))
    e = explain(loss)
    assert e.network is not None and e.network.batch == 3
    # dL/dw_{12-1} sums over the three samples
    h = np.tanh(x @ W.data.T + b.data)
    pred = h @ V.data.T
    g_pred = 2 * (pred - np.array([[0.1], [0.2], [0.3]])) / 3
    g_z = (g_pred @ V.data) * (1 - h**2)
    assert e["dL/dw_{12-1}"].value == pytest.approx((g_z.T @ x)[1, 0], rel=1e-12)
    assert len(e["dL/dw_{12-1}"].terms) == 3
    assert e["z_{2-1}^{(3)}"].value == pytest.approx(x[2] @ W.data[1] + b.data[1], rel=1e-14)


def test_batch_huber_example_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for gradients")
    spec = load_network(find_example("tanh-huber-batch"))
    e = explain_network(spec)
    x = torch.tensor(spec.input)
    w1, w2 = (torch.tensor(w, requires_grad=True) for w in spec.weights)
    b1, b2 = (torch.tensor(b, requires_grad=True) for b in spec.biases)
    out = torch.tanh(x @ w1.T + b1) @ w2.T + b2
    loss = torch.nn.functional.huber_loss(out, torch.tensor(spec.target), delta=0.5, reduction="mean")
    loss.backward()
    assert e.loss == pytest.approx(loss.item(), rel=1e-13)
    for j in range(3):
        for i in range(2):
            assert e[f"dL/dw_{{{i + 1}{j + 1}-1}}"].value == pytest.approx(w1.grad[j, i].item(), rel=1e-11)
    assert e["dL/dB_{2-2}"].value == pytest.approx(b2.grad[1].item(), rel=1e-11)


def test_softmax_output_layer_shows_the_off_diagonal_terms():
    # softmax is not elementwise: dL/dz_1 sums over every output of the same sample
    x = np.array([0.2, -0.4])
    W = cr.tensor([[0.5, 0.1], [-0.3, 0.8], [0.2, 0.2]], requires_grad=True)
    b = cr.tensor([0.0, 0.1, -0.1], requires_grad=True)
    p = F.softmax(F.linear(x, W, b))
    e = explain(F.l2_loss(p, np.array([0.0, 1.0, 0.0])))
    dz1 = e["dL/dz_{1-1}"]
    assert len(dz1.terms) == 3
    z = W.data @ x + b.data
    s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    g_s = s - np.array([0.0, 1.0, 0.0])
    jac = np.diag(s) - np.outer(s, s)
    assert dz1.value == pytest.approx((g_s @ jac)[0], rel=1e-12)
    assert e["dyhat_2/dz_{1-1}"].value == pytest.approx(jac[1, 0], rel=1e-12)


def test_cross_entropy_classifier_example_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for gradients")
    spec = load_network(find_example("relu-softmax-classifier"))
    e = explain_network(spec)
    x = torch.tensor(spec.input)
    w1, w2 = (torch.tensor(w, requires_grad=True) for w in spec.weights)
    b1, b2 = (torch.tensor(b, requires_grad=True) for b in spec.biases)
    logits = torch.relu(x @ w1.T + b1) @ w2.T + b2
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(spec.target))
    loss.backward()
    assert e.loss == pytest.approx(loss.item(), rel=1e-13)
    assert e["dL/dw_{12-1}"].value == pytest.approx(w1.grad[1, 0].item(), rel=1e-11, abs=1e-15)
    assert e["dy_{2-1}^{(1)}/dz_{2-1}^{(1)}"].value == 0.0  # inactive ReLU unit: derivative 0


def test_seeded_example_is_reproducible():
    a = load_network(find_example("seeded-4-3-1"))
    b = load_network(find_example("seeded-4-3-1"))
    np.testing.assert_array_equal(a.weights[0], b.weights[0])
    bound = 1 / np.sqrt(4)
    assert np.all(np.abs(a.weights[0]) <= bound)
    assert explain_network(a).loss == explain_network(b).loss


def test_float32_network_stays_float32():
    x = np.array([0.5, -0.5], dtype=np.float32)
    W = cr.tensor(np.array([[0.1, 0.2]], dtype=np.float32), requires_grad=True)
    loss = F.l2_loss(F.sigmoid(F.linear(x, W)), np.array([1.0], dtype=np.float32))
    e = explain(loss)
    assert e.node("W1").gradient.dtype == np.float32
    assert e["dL/dw_{21-1}"].value == pytest.approx(
        float((_sig(0.1 * 0.5 - 0.2 * 0.5) - 1) * _sig(-0.05) * (1 - _sig(-0.05)) * -0.5), rel=1e-6
    )


@pytest.mark.parametrize(
    "value,digits,text",
    [
        # --digits counts significant digits, in every range (issue 11)
        (1.30620000001, 4, "1.306"),
        (1.30620000001, 5, "1.3062"),
        (0.0212000001, 4, "0.02120"),  # rounded: the trailing zero is a digit shown
        (0.0212, 4, "0.0212"),  # exactly 0.0212: as short as it is (issue 11: no tanh(0.5000))
        (2.843451798526683e-05, 4, "2.843e-05"),
        (2.843451798526683e-05, 6, "2.84345e-05"),
        (-0.0029287, 4, "-0.002929"),
        (12345.678, 3, "1.23e+04"),
        (1.0, 4, "1"),
        (0.0, 4, "0"),
        (0.786876, 2, "0.79"),
        (-4.2000001e-7, 3, "-4.20e-07"),
        (0.05 + 0.2 + 0.25, 4, "0.5"),  # the trial's z_{1-1}: an exact sum
    ],
)
def test_display_rounding(value, digits, text):
    assert fmt(value, digits) == text


def test_given_numbers_are_written_short():
    assert fmt(0.36, 4, given=True) == "0.36"
    assert fmt(0.36, 4) == "0.36"  # any number the digits hold exactly
    assert fmt(0.36000001, 4) == "0.3600"


@pytest.mark.parametrize(
    "literal,places",
    [("1.3062", 4), ("2.8e-5", 6), ("0.0140", 4), ("-0.00285", 5), ("1", 0), ("4.20E-05", 7), ("12.5e1", 0)],
)
def test_decimals_written(literal, places):
    assert decimals_written(literal) == places


def test_chainrule_explain_is_callable():
    w = cr.tensor([0.5, -2.0], requires_grad=True, name="w")
    e = cr.explain((w * w).sum(), digits=2)
    assert e.digits == 2
    np.testing.assert_allclose(e.node("w").gradient, [1.0, -4.0])
    assert cr.explain.Explanation is type(e)  # and it is still the package


# --- closed-form local derivatives ---------------------------------------------------------------


def _closed_form_value(q, e) -> float:
    """Evaluate the closed form the explanation writes, with the exact values of its operands."""
    code = q.closed_form.with_numbers(lambda n: f"({e[n].value!r})").replace("^", "**")
    return float(eval(code, {"__builtins__": {}}, {"sign": np.sign, "abs": abs, "exp": np.exp}))


def _hand_built(activation, loss, target):
    x = np.array([[0.5, -1.5], [2.0, 0.25]])
    W = cr.tensor([[0.3, -0.8], [1.1, 0.4], [-0.6, 0.9]], requires_grad=True)
    V = cr.tensor([[0.7, -1.2, 0.5]], requires_grad=True)
    return explain(loss(F.linear(activation(F.linear(x, W)), V), target))


NETWORKS = {
    "reference": lambda: explain_network(load_network()),
    "tanh + huber, mean over a batch": lambda: explain_network(
        load_network(find_example("tanh-huber-batch"))),
    "relu + mse": lambda: _hand_built(F.relu, F.mse_loss, np.array([[0.3], [-0.2]])),
    "leaky_relu + l1": lambda: _hand_built(lambda z: F.leaky_relu(z, 0.1), F.l1_loss,
                                           np.array([[0.3], [-0.2]])),
    "elu + hinge": lambda: _hand_built(lambda z: F.elu(z, 0.7), F.hinge_loss, np.array([[1.0], [-1.0]])),
    "softplus + l2": lambda: _hand_built(lambda z: F.softplus(z, beta=2.0), F.l2_loss,
                                         np.array([[0.3], [-0.2]])),
    "sigmoid + bce": lambda: _hand_built(
        F.sigmoid, lambda p, t: F.binary_cross_entropy(F.sigmoid(p), t), np.array([[1.0], [0.0]])),
}


@pytest.mark.parametrize("network", list(NETWORKS))
def test_every_closed_form_evaluates_to_the_engines_value(network):
    """What the explanation writes beside a local derivative (yhat * (1 - yhat)) gives, with the
    exact values put in, the value it shows, which is the primitive's VJP."""
    e = NETWORKS[network]()
    closed = [q for q in e.quantities if q.closed_form is not None]
    assert closed
    for q in closed:
        assert _closed_form_value(q, e) == pytest.approx(q.value, rel=1e-12, abs=1e-15), q.name
    # every diagonal activation derivative and every dL/d(prediction) has one
    for q in e.section("local"):
        if q.name.startswith("dL/d") or (q.formula.endswith(")") and "'" in q.formula):
            assert q.closed_form is not None, q.name


def test_no_closed_form_where_the_formula_would_be_wrong():
    # a weight is not in BCE's template: showing (p - y) / (p (1 - p)) would misstate the derivative
    x = np.array([[0.5, -1.5]])
    W = cr.tensor([[0.3, -0.8]], requires_grad=True)
    e = explain(F.binary_cross_entropy(F.sigmoid(F.linear(x, W)), np.array([[1.0]]), weight=np.array([2.0])))
    assert e["dL/dyhat^{(1)}"].closed_form is None
    # -w y / p at y = 1
    assert e["dL/dyhat^{(1)}"].value == pytest.approx(-2.0 / e["yhat^{(1)}"].value, rel=1e-12)
    assert "dL/dyhat^{(1)} = -2.518\n" in e.to_text()  # the value alone, as before


# --- every displayed product follows from its displayed factors (issue 11) ---------------------

_NUMBER = r"\(?-?\d+(?:\.\d+)?(?:e[+-]\d+)?\)?"


def _shown(text: str) -> float:
    return float(text.strip().strip("()"))


def _follows(numeric: str, shown: str) -> bool:
    """Does ``numeric`` (numbers as printed: '0.1037 x 0.2043 + ...', the forward pass's
    '(0.02)(0.36) + ... + 0.7', an update's '0.36 - 0.5 x 0.001422', a closed form's
    '0.7137 * (1 - 0.7137)') evaluate, in plain float arithmetic on the printed numbers, to the
    number printed after it, to the significant digits printed there?"""
    code = numeric.replace(")(", ")*(").replace(" x ", " * ").replace("^", "**")
    value = float(eval(code, {"__builtins__": {}}))
    digits = len(shown.lower().partition("e")[0].lstrip("-").replace(".", "").lstrip("0")) or 1
    return float(f"{value:.{digits}g}") == pytest.approx(_shown(shown), rel=1e-12, abs=0)


_NETWORK_EXAMPLES = [p for p in example_paths() if "[values]" not in p.read_text()]


@pytest.mark.parametrize("digits", [2, 4, 6])
@pytest.mark.parametrize("path", _NETWORK_EXAMPLES, ids=lambda p: p.stem)
def test_every_displayed_product_follows_from_its_displayed_factors(path, digits):
    e = explain_network(load_network(path), lr=0.5, digits=digits)
    checked = 0
    for line in e.to_text().splitlines():
        parts = [p.strip() for p in line.split(" = ")]
        if len(parts) < 3:
            continue  # a given
        numeric, shown = parts[-2], parts[-1]
        if not re.fullmatch(r"[0-9.e()+\-*/^x ]+", numeric) or not re.fullmatch(_NUMBER, shown):
            continue  # symbolic (yhat - y), or a function's value (sigmoid(0.9136))
        assert _follows(numeric, shown), line
        checked += 1
    assert checked >= 3  # every example has products to check


def test_a_linear_output_is_yhat_like_any_other():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    W = cr.tensor([[0.3, -0.8], [1.1, 0.4]], requires_grad=True)
    e = explain(F.mse_loss(F.linear(x, W), np.zeros((2, 2))))
    assert e["yhat_2^{(1)}"] is e["z_{2-1}^{(1)}"]
    assert e["dL/dyhat_1^{(2)}"].value == pytest.approx(2 * (0.5 * 2.0 * 0 + 0.3 * 2.0 - 0.8 * 0.25) / 4)


def test_constant_parameters_of_any_kind_explain():
    # a weight without requires_grad, a bias as a NumPy array (the KeyError of issue 11)
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    x = np.array([[0.5, -1.0]])
    W1 = cr.tensor([[0.1, 0.2], [-0.3, 0.4]])  # constant
    b1 = cr.tensor([0.05, -0.05], requires_grad=True)
    W2 = cr.tensor([[0.7, -0.6]], requires_grad=True)
    b2 = np.array([0.2])  # constant, not even a Tensor
    loss = F.l2_loss(F.sigmoid(F.linear(F.tanh(F.linear(x, W1, b1)), W2, b2)), np.array([[1.0]]))
    e = explain(loss)
    tw1, tb1, tw2 = (torch.tensor(a.data, requires_grad=g) for a, g in ((W1, False), (b1, True), (W2, True)))
    h = torch.tanh(torch.nn.functional.linear(torch.tensor(x), tw1, tb1))
    out = torch.sigmoid(torch.nn.functional.linear(h, tw2, torch.tensor(b2)))
    (0.5 * ((out - 1.0) ** 2).sum()).backward()
    assert "dL/dw_{11-1}" not in e and "dL/dB_{1-2}" not in e and e["B_{1-2}"].value == 0.2
    assert e["dL/dB_{2-1}"].value == pytest.approx(tb1.grad[1].item(), rel=1e-13)
    assert e["dL/dw_{21-2}"].value == pytest.approx(tw2.grad[0, 1].item(), rel=1e-13)


# --- the layout of a shown weight matrix ------------------------------------------------------


def test_gradient_arrays_follow_the_network_files_layout():
    """A file that writes its weights out-in (PyTorch's rows, the default) sees dL/dw_l out-in;
    one that writes them in-out (the reference solution's w_l, Mazur's) sees them in-out. The
    values are compared with a NumPy backward pass in PyTorch's (out, in) layout."""
    spec = load_network(find_example("two-hidden-layers"))  # no layout: out-in
    assert spec.layouts == ["out-in"] * 3
    x, t = spec.input, spec.target
    (w1, w2, w3), (b1, b2, b3) = spec.weights, spec.biases
    h1 = np.tanh(x @ w1.T + b1)
    h2 = 1 / (1 + np.exp(-(h1 @ w2.T + b2)))
    d3 = 2 * (h2 @ w3.T + b3 - t) / t.size
    d2 = (d3 @ w3) * h2 * (1 - h2)
    d1 = (d2 @ w2) * (1 - h1**2)
    e = explain_network(spec, lr=0.1)
    arrays = {a.name: a for a in e.arrays}
    np.testing.assert_allclose(arrays["dL/dw_1"].values, d1.T @ x, rtol=1e-12)  # (out, in), as written
    assert arrays["dL/dw_1"].layout == "out-in" and arrays["dL/dw_1"].element_names[0][2] == "dL/dw_{31-1}"
    np.testing.assert_allclose(e.update_arrays[0].values, w1 - 0.1 * (d1.T @ x), rtol=1e-12)
    assert "  dL/dw_1 (out-in: row j = into unit j, column i = from input x_i)" in e.to_text()
    assert json.loads(e.to_json())["gradients"][0]["layout"] == "out-in"
    assert r"\text{(out-in: row j = into unit j" in e.to_latex()
    assert "<span class='layout'>(out-in: row j = into unit j" in e.to_html()
    # the reference file writes the solution's w_1 (in-out): the solution's dL/dw_1, 3 x 2
    ref = explain_network(load_network())
    assert load_network().layouts == ["in-out", "in-out"] and ref.arrays[0].values.shape == (3, 2)
    note = "(in-out: row i = from input x_i, column j = to unit j)"
    assert f"  dL/dw_1 {note} = " in ref.to_text()
    # layer 2's rows come from the hidden units, not from the inputs
    note = "(in-out: row i = from hidden unit i of layer 1 (its output y_{i-1}), column j = to unit j)"
    assert f"  dL/dw_2 {note} = " in ref.to_text()
    matrix = explain_network(load_network(), notation="matrix").arrays
    assert matrix[0].inputs == "input x[i]"
    assert matrix[2].inputs == "hidden unit i of layer 1 (its output y1[i])"
    # a bias-first file's rows are the units' (out-in); bias vectors have no layout
    doc = {
        "sizes": [2, 1],
        "layout": "bias-first",
        "data": {"input": [1.0, 2.0], "target": [0.5]},
        "layers": [{"weights": [[0.1, 0.2, 0.3]]}],
    }
    bias_first = explain_network(parse_network(doc, source="bias-first"))
    assert [a.layout for a in bias_first.arrays] == ["out-in", ""]


def test_explain_layout_argument():
    w = cr.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], requires_grad=True)  # (out, in)
    loss = F.l2_loss(F.sigmoid(F.linear(np.array([1.0, -1.0, 2.0]), w, np.zeros(2))), np.array([0.0, 1.0]))
    default = cr.explain(loss)  # the reference solution's w_l: in-out
    torch_like = cr.explain(loss, layout="out-in")
    assert cr.explain(loss, notation="matrix", layout="in-out").arrays[0].layout == "out-in"  # W1[j,i]
    with pytest.raises(ValueError, match="one per layer"):
        cr.explain(loss, layout=["in-out", "out-in"])  # one layer
    loss.backward()
    np.testing.assert_array_equal(default.arrays[0].values, w.grad.T)
    np.testing.assert_array_equal(torch_like.arrays[0].values, w.grad)
