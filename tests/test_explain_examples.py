"""The shipped examples reproduce the published hand-worked solutions they come from.

Each published number is compared to every digit the source prints; every other value is
checked against an oracle written here, independently of the engine: a plain NumPy forward and
backward pass (the formulas typed out by hand) and, where installed, PyTorch's autograd.
Where a source prints a wrong number, the test says so and checks the right one.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.explain import explain_network, load_network
from chainrule.explain.worksheet import find_example


def _explain(name: str, **kwargs):
    return explain_network(load_network(find_example(name)), **kwargs)


def _published(e, numbers: dict[str, str]) -> None:
    """Each quantity, rounded to the decimals the source prints, is what it prints."""
    for name, text in numbers.items():
        decimals = len(text.partition(".")[2])
        assert f"{e[name].value:.{decimals}f}" == text, (name, e[name].value, text)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- Mazur's 2-2-2 network -------------------------------------------------------------------


def _mazur_numpy(w1: np.ndarray, w2: np.ndarray):
    """Forward and backward of Mazur's network by hand (w in PyTorch's (out, in) layout)."""
    x, t, b1, b2 = np.array([0.05, 0.10]), np.array([0.01, 0.99]), 0.35, 0.60
    h = _sigmoid(w1 @ x + b1)
    o = _sigmoid(w2 @ h + b2)
    loss = 0.5 * np.sum((t - o) ** 2)
    d_o = (o - t) * o * (1 - o)  # dE/dnet_o
    d_h = (w2.T @ d_o) * h * (1 - h)
    return loss, np.outer(d_h, x), np.outer(d_o, h)


MAZUR_W1 = np.array([[0.15, 0.20], [0.25, 0.30]])
MAZUR_W2 = np.array([[0.40, 0.45], [0.50, 0.55]])


def test_mazur_every_published_number():
    e = _explain("mazur-2-2-2", lr=0.5)
    _published(
        e,
        {  # the post's names, through the file's [aliases]
            "net_h1": "0.3775",
            "out_h1": "0.593269992",
            "out_h2": "0.596884378",
            "net_o1": "1.105905967",
            "out_o1": "0.75136507",
            "out_o2": "0.772928465",
            "E_o1": "0.274811083",
            "E_o2": "0.023560026",
            "E_total": "0.298371109",
            "dE_total/dout_o1": "0.74136507",
            "dout_o1/dnet_o1": "0.186815602",
            "dnet_o1/dw5": "0.593269992",
            "dE_total/dw5": "0.082167041",
            "w5^{new}": "0.35891648",
            "w6^{new}": "0.408666186",
            "w7^{new}": "0.511301270",
            "w8^{new}": "0.561370121",
            "dE_total/dout_h1": "0.036350306",
            "dout_h1/dnet_h1": "0.241300709",
            "dE_total/dw1": "0.000438568",
            "w1^{new}": "0.149780716",
            "w2^{new}": "0.19956143",
            "w3^{new}": "0.24975114",
            "w4^{new}": "0.29950229",
        },
    )
    # each output's share of dE_total/dout_h1, named as the post names it
    assert f"{e['dE_o1/dout_h1'].value:.9f}" == "0.055399425"
    assert f"{e['dE_o2/dout_h1'].value:.9f}" == "-0.019049118"  # see below
    assert e["dE_o1/dout_h1"].value + e["dE_o2/dout_h1"].value == pytest.approx(e["dE_total/dout_h1"].value)
    # the per-output partial terms the post sums for dE_total/dout_h1 are the chain-rule terms:
    # dE_o1/dout_h1 = 0.055399425 and dE_o2/dout_h1, which the post prints as -0.019049119:
    # it multiplied its rounded -0.038098237 by w7 = 0.5; exactly it is -0.0190491183 (carried
    # rounding, 0.7 units in the ninth decimal)
    terms = e["dE_total/dout_h1"].terms
    values = [np.prod([e[n].value for n in t]) for t in terms]
    assert [f"{v:.9f}" for v in values] == ["0.055399425", "-0.019049118"]
    assert f"{-0.038098237 * 0.5:.10f}" == "-0.0190491185"
    # the shared biases are held (no gradient, no update), as in the post
    assert "dL/dB_{1}" not in e and "B_{1}^{new}" not in e


def test_mazur_published_error_after_the_step_is_off_in_the_seventh_digit():
    e = _explain("mazur-2-2-2", lr=0.5)
    loss, g1, g2 = _mazur_numpy(MAZUR_W1, MAZUR_W2)
    assert e.loss == pytest.approx(loss, rel=1e-14)
    new_loss, _, _ = _mazur_numpy(MAZUR_W1 - 0.5 * g1, MAZUR_W2 - 0.5 * g2)
    assert e["L^{new}"].value == pytest.approx(new_loss, rel=1e-14)
    assert f"{new_loss:.9f}" == "0.291027774"  # the post prints 0.291027924
    np.testing.assert_allclose(
        [e[f"dL/dw_{{{i + 1}{j + 1}-1}}"].value for j in range(2) for i in range(2)], g1.ravel(), rtol=1e-13
    )


def test_mazur_error_after_10000_rounds_is_the_loss_after_9999_updates():
    """The post: "after repeating this process 10,000 times ... the error plummets to
    0.0000351085". That is the error measured at the start of round 10,000, after 9,999 updates
    (3.5108548e-05); after the 10,000th update it is 3.5101878e-05. The step API is compared
    with a NumPy loop written here, the chain rule typed out by hand (biases held, as in the post)."""
    from chainrule.explain.steps import run_steps

    trained = run_steps(load_network(find_example("mazur-2-2-2")), 10_000, 0.5)
    w1, w2 = MAZUR_W1.copy(), MAZUR_W2.copy()
    losses = []
    for _ in range(10_000):
        loss, g1, g2 = _mazur_numpy(w1, w2)
        losses.append(loss)
        w1, w2 = w1 - 0.5 * g1, w2 - 0.5 * g2
    final, _, _ = _mazur_numpy(w1, w2)
    np.testing.assert_allclose([s.loss for s in trained.steps], losses, rtol=1e-9)
    assert trained.final_loss == pytest.approx(final, rel=1e-9)
    assert f"{trained.steps[-1].loss:.10f}" == "0.0000351085"  # the post's figure: 9,999 updates
    assert f"{losses[9_999]:.10f}" == "0.0000351085"
    assert f"{final:.10f}" == "0.0000351019"  # after the 10,000th update: not the post's figure


# --- CS231n ------------------------------------------------------------------------------------


def test_cs231n_circuit():
    e = _explain("cs231n-circuit")
    values = {name: e[name].value for name in ("q", "f", "df/dz", "df/dq", "df/dx", "df/dy")}
    assert values == {"q": 3.0, "f": -12.0, "df/dz": 3.0, "df/dq": -4.0, "df/dx": -4.0, "df/dy": -4.0}
    assert "dz_{1-2}/dw_{11-1}" not in e  # q = x + y has constant weights: no gradient for them


def test_cs231n_sigmoid_neuron_to_the_lectures_two_decimals():
    e = _explain("cs231n-sigmoid-neuron", digits=2)
    ddot = _sigmoid(1.0) * (1 - _sigmoid(1.0))  # dot = 2(-1) + (-3)(-2) - 3 = 1
    exact = {
        "f": _sigmoid(1.0),
        "df/dx0": 2 * ddot,
        "df/dx1": -3 * ddot,
        "df/dw0": -1 * ddot,
        "df/dw1": -2 * ddot,
        "df/dw2": ddot,
    }
    for name, value in exact.items():
        assert e[name].value == pytest.approx(value, rel=1e-14), name
    text = e.to_text()
    for shown in ("= 0.73\n", "= 0.39\n", "= -0.59\n", "= -0.20\n", "= -0.39\n", "= 0.20\n"):
        assert shown in text  # the lecture's 0.73, dx = [0.39, -0.59], dw = [-0.20, -0.39, 0.20]


# --- softmax and cross-entropy -----------------------------------------------------------------


def _softmax_numpy(w1, b1, w2, b2):
    x = np.array([1.0, 2.0, -1.0])
    a = _sigmoid(w1 @ x + b1)
    z = w2 @ a + b2
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    y = np.array([1.0, 0.0])
    loss = -np.log(p[0])
    dz = p - y  # d(-log softmax_0)/dz, m = 1
    dw2, db2 = np.outer(dz, a), dz.sum()  # the output bias is shared: the sum over units
    da = w2.T @ dz
    dh = da * a * (1 - a)
    return a, z, p, loss, np.outer(dh, x), dh.sum(), dw2, db2


SM = (np.array([[0.2, -0.3, 0.4], [-0.5, 0.1, 0.2]]), 0.5, np.array([[0.3, 0.4], [-0.1, 0.2]]), 0.1)


def test_softmax_example_published_numbers_and_its_slip():
    e = _explain("softmax-cross-entropy", lr=0.1)
    _published(
        e, {"z_{1-1}": "-0.3", "z_{2-1}": "0.0", "y_{1-1}": "0.426", "y_{2-1}": "0.5", "z_{1-2}": "0.428"}
    )
    # the post prints z(4) = 0.185, then yhat = (0.561, 0.439) and L = 0.579 from it:
    a, z, p, loss, dw1, db1, dw2, db2 = _softmax_numpy(*SM)
    assert f"{z[1]:.3f}" == "0.157" and f"{e['z_{2-2}'].value:.3f}" == "0.157"
    theirs = np.exp(0.428) / (np.exp(0.428) + np.exp(0.185))  # from the wrong z(4) = 0.185
    assert f"{theirs:.3f}" == "0.560"  # printed as 0.561: misrounded as well
    assert f"{-np.log(theirs):.3f}" == "0.579"  # the post's L follows from the unrounded value
    np.testing.assert_allclose([e["yhat_1"].value, e["yhat_2"].value], p, rtol=1e-14)
    assert f"{p[0]:.3f}" == "0.567" and e.loss == pytest.approx(loss, rel=1e-14)
    # dL/dw7 = (yhat_1 - y_1) a(1), the post's closed form; (yhat - y)/m beside dL/dz
    assert e["dL/dw7"].value == pytest.approx((p[0] - 1) * a[0], rel=1e-14)
    assert e["dL/dz_{1-2}"].closed_form is not None
    assert e["dL/dz_{1-2}"].closed_form.evaluate(lambda n: e[n].value) == pytest.approx(p[0] - 1, rel=1e-14)
    # the shared biases' gradients are sums over their units, and the step uses all of them
    assert e["dL/dB_{2}"].value == pytest.approx(db2, abs=1e-15)
    assert e["dL/dB_{1}"].value == pytest.approx(db1, rel=1e-13)
    new = _softmax_numpy(SM[0] - 0.1 * dw1, SM[1] - 0.1 * db1, SM[2] - 0.1 * dw2, SM[3] - 0.1 * db2)
    assert e["L^{new}"].value == pytest.approx(new[3], rel=1e-13)
    assert e["w7^{new}"].value == pytest.approx(0.3 - 0.1 * dw2[0, 0], rel=1e-14)


def test_softmax_example_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    e = _explain("softmax-cross-entropy")
    w1 = torch.tensor(SM[0], requires_grad=True)
    b1 = torch.tensor(SM[1], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(SM[2], requires_grad=True)
    b2 = torch.tensor(SM[3], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    z = torch.nn.functional.linear(torch.sigmoid(torch.nn.functional.linear(x, w1, b1)), w2, b2)
    torch.nn.functional.cross_entropy(z[None], torch.tensor([0])).backward()
    assert e["dL/dB_{1}"].value == pytest.approx(b1.grad.item(), rel=1e-13)
    assert e["dL/dB_{2}"].value == pytest.approx(b2.grad.item(), abs=1e-15)
    np.testing.assert_allclose(
        [[e[f"dL/dw_{{{i + 1}{j + 1}-1}}"].value for i in range(3)] for j in range(2)],
        w1.grad.numpy(),
        rtol=1e-13,
    )


# --- two hidden layers, several outputs ---------------------------------------------------------


def test_two_hidden_layers_against_numpy_and_torch():
    spec = load_network(find_example("two-hidden-layers"))
    e = explain_network(spec, lr=0.1)
    x, t = spec.input, spec.target
    (w1, w2, w3), (b1, b2, b3) = spec.weights, spec.biases
    h1 = np.tanh(x @ w1.T + b1)
    h2 = _sigmoid(h1 @ w2.T + b2)
    out = h2 @ w3.T + b3
    assert e.loss == pytest.approx(np.mean((out - t) ** 2), rel=1e-14)
    d3 = 2 * (out - t) / out.size
    d2 = (d3 @ w3) * h2 * (1 - h2)
    d1 = (d2 @ w2) * (1 - h1**2)
    for li, (d, inp) in enumerate([(d1, x), (d2, h1), (d3, h2)], start=1):
        gw = d.T @ inp
        for j in range(gw.shape[0]):
            for i in range(gw.shape[1]):
                assert e[f"dL/dw_{{{i + 1}{j + 1}-{li}}}"].value == pytest.approx(
                    gw[j, i], rel=1e-12, abs=1e-16
                )
            assert e[f"dL/dB_{{{j + 1}-{li}}}"].value == pytest.approx(d.sum(0)[j], rel=1e-12, abs=1e-16)
    torch = pytest.importorskip("torch", reason="PyTorch is an optional oracle")
    W = [torch.tensor(w, requires_grad=True) for w in (w1, w2, w3)]
    B = [torch.tensor(b, requires_grad=True) for b in (b1, b2, b3)]
    h = torch.tanh(torch.nn.functional.linear(torch.tensor(x), W[0], B[0]))
    h = torch.sigmoid(torch.nn.functional.linear(h, W[1], B[1]))
    torch.nn.functional.mse_loss(torch.nn.functional.linear(h, W[2], B[2]), torch.tensor(t)).backward()
    for li, w in enumerate(W, start=1):
        for j in range(w.shape[0]):
            for i in range(w.shape[1]):
                assert e[f"dL/dw_{{{i + 1}{j + 1}-{li}}}"].value == pytest.approx(
                    w.grad[j, i].item(), rel=1e-12
                )


def test_a_constant_first_layer_with_its_layout_given_explains_from_the_layer_after(tmp_path):
    """Without [data] requires_grad, the circuit's first layer (fixed weights, constant input)
    is a constant: the explanation starts at layer 2, while the file's layouts are one per file
    layer (found by tests/test_fuzz.py: it raised ValueError about the layout list's length)."""
    text = find_example("cs231n-circuit").read_text()
    text = text.replace("requires_grad = true", "# requires_grad left out")
    text = text.split("[aliases]")[0]  # the aliases name quantities of the whole circuit
    path = tmp_path / "circuit.toml"
    path.write_text(text)
    e = explain_network(load_network(path))
    # f = z q with q = x + y = 3 a constant now, the explanation's input x_1: df/dz = q = 3 is
    # the only gradient left (the layer numbering starts at the first layer explained)
    assert e["x_1"].value == 3.0 and e["z_{1-1}"].value == -12.0
    assert e["dz_{1-1}/dw_{11-1}"].value == 3.0
    assert "dz_{1-1}/dw_{11-2}" not in e
