"""Several steps (`explain --lr --steps --momentum`) and the network after them (--save-updated).

The steps run chainrule.optim.SGD on the file's network; PyTorch's torch.optim.SGD on the same
network, written out here, is the oracle for every loss and parameter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomllib

from chainrule.explain import explain_network, load_network, parse_network
from chainrule.explain.steps import network_toml, run_steps
from chainrule.explain.worksheet import find_example


def _torch_steps(spec, steps, lr, momentum):
    torch = pytest.importorskip("torch", reason="PyTorch is the optimizer's oracle")
    fixed = spec.fixed or [()] * spec.n_layers
    W = [torch.tensor(w, requires_grad="weights" not in f) for w, f in zip(spec.weights, fixed, strict=True)]
    B = [
        None if b is None else torch.tensor(np.asarray(b), requires_grad="bias" not in f)
        for b, f in zip(spec.biases, fixed, strict=True)
    ]
    params = [p for p in W + B if p is not None and p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, None: lambda z: z}
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        h = torch.tensor(spec.input)
        for w, b, a in zip(W, B, spec.activations, strict=True):
            h = acts[a](torch.nn.functional.linear(h, w, b))
        loss = 0.5 * ((h - torch.tensor(spec.target)) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [w.detach().numpy() for w in W]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_steps_match_torch_sgd(momentum):
    spec = load_network(find_example("mazur-2-2-2"))
    trained = run_steps(spec, 4, 0.5, momentum)
    losses, weights = _torch_steps(spec, 4, 0.5, momentum)
    np.testing.assert_allclose([s.loss for s in trained.steps], losses, rtol=1e-13)
    for ours, theirs in zip(trained.spec.weights, weights, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13)
    assert trained.spec.biases[0] == 0.35  # fixed, as in the file


def test_the_first_step_is_the_explanations_update():
    spec = load_network(find_example("reference"))
    e = explain_network(spec, lr=0.5)
    trained = run_steps(spec, 1, 0.5, 0.9)  # momentum has no effect on the first step (torch's)
    assert trained.final_loss == pytest.approx(e["L^{new}"].value, rel=1e-14)
    assert trained.spec.weights[0][0, 2] == pytest.approx(e["w_{31-1}^{new}"].value, rel=1e-15)


def test_saved_network_reads_back_and_continues(tmp_path, run_cli):
    out = tmp_path / "next.toml"
    code, text, err = run_cli(
        [
            "explain",
            "mazur-2-2-2",
            "--lr",
            "0.5",
            "--steps",
            "3",
            "--momentum",
            "0.5",
            "--save-updated",
            str(out),
        ]
    )
    assert code == 0 and err == ""
    assert "Training: 3 steps of SGD (lr = 0.5, momentum = 0.5" in text
    assert "step 2: L = 0.2910" in text  # after one step of 0.5: Mazur's 0.291027774
    saved = load_network(out)
    spec = load_network(find_example("mazur-2-2-2"))
    trained = run_steps(spec, 3, 0.5, 0.5)
    for ours, theirs in zip(saved.weights, trained.spec.weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # every digit: floats are written by repr
    assert saved.fixed == spec.fixed and saved.aliases == spec.aliases and saved.biases[1] == 0.6
    assert explain_network(saved).loss == trained.final_loss
    _, after, _ = run_cli(["explain", str(out)])
    assert "  L (E_total) = L_1 + L_2 = " in after and "Loss L = " in after  # the aliases kept


def test_steps_in_json(run_cli):
    code, out, _ = run_cli(["explain", "--format", "json", "--lr", "0.1", "--steps", "2"])
    doc = json.loads(out)
    assert code == 0 and [s["step"] for s in doc["steps"]] == [1, 2]
    assert doc["steps"][0]["loss"] == doc["loss"]


def test_network_toml_round_trips_every_shape():
    for name in ("cs231n-circuit", "softmax-cross-entropy", "two-hidden-layers", "reference"):
        spec = load_network(find_example(name))
        again = parse_network(tomllib.loads(network_toml(spec)), source=name)
        assert explain_network(again).values() == explain_network(spec).values(), name


# --- every format shows every step ------------------------------------------------------------


def _torch_mazur_parameters(steps):
    """Mazur's weights after each of ``steps`` steps at lr 0.5, from torch.optim.SGD."""
    spec = load_network(find_example("mazur-2-2-2"))
    after = []
    for k in range(1, steps + 1):
        _, weights = _torch_steps(spec, k, 0.5, 0.0)
        after.append(weights)
    return after


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "html", "json"])
def test_every_format_shows_every_step(fmt, run_cli):
    losses, _ = _torch_steps(load_network(find_example("mazur-2-2-2")), 3, 0.5, 0.0)
    after = _torch_mazur_parameters(3)
    code, out, err = run_cli(["explain", "mazur-2-2-2", "--lr", "0.5", "--steps", "3", "--format", fmt])
    assert code == 0 and err == ""
    if fmt == "json":
        doc = json.loads(out)
        assert [s["loss"] for s in doc["steps"]] == pytest.approx(losses, rel=1e-13)
        for s, (w1, w2) in zip(doc["steps"], after, strict=True):
            assert s["parameters"]["w_{11-2}"] == pytest.approx(w2[0, 0], rel=1e-13)  # w5
            assert s["parameters"]["w_{21-1}"] == pytest.approx(w1[0, 1], rel=1e-13)  # w2
        return
    # each step's loss (before it), and w5 after it, at four significant digits, in step order
    shown = [f"{v:.4f}" for v in losses] + [f"{w2[0, 0]:.4f}" for _, w2 in after]
    assert len(set(shown)) == len(shown)
    positions = []
    for k in range(3):
        loss_at = out.index(shown[k], positions[-1] if positions else 0)
        w5_at = out.index(shown[3 + k], loss_at)
        positions += [loss_at, w5_at]
    assert positions == sorted(positions)
    assert "Training: 3 steps of SGD (lr = 0.5, momentum = 0" in out
    if fmt == "latex":
        assert r"\paragraph{Step 3} $L = 0.2835$; then $w_{11\text{-}1}\ (\mathtt{w1}) = " in out
        assert out.rstrip().endswith(r"\end{document}")
    if fmt == "html":
        assert out.count("<tr><td class='v'>") == 3  # one row per step (the gradients' cells have titles)
        assert "<span class='alias'>(w5)</span>" in out  # the file's names in the header


# --- one layout for every matrix; many steps shortened; no redundant section -------------------


def test_json_step_weights_are_laid_out_as_the_gradients(run_cli):
    """Mazur's file writes its weights in-out: the gradients, the update and every step's
    weights are in-out in the JSON, each saying so (the trial found the steps' out-in, unsaid)."""
    spec = load_network(find_example("mazur-2-2-2"))
    assert spec.display_layouts() == ["in-out", "in-out"]
    losses, _ = _torch_steps(spec, 3, 0.5, 0.0)
    after = _torch_mazur_parameters(3)  # torch's (out, in) weights after each step
    code, out, _ = run_cli(["explain", "mazur-2-2-2", "--lr", "0.5", "--steps", "3", "--format", "json"])
    doc = json.loads(out)
    assert code == 0 and [g["layout"] for g in doc["gradients"] if g["layout"]] == ["in-out", "in-out"]
    assert [u["layout"] for u in doc["update"] if u["layout"]] == ["in-out", "in-out"]
    for s, weights in zip(doc["steps"], after, strict=True):
        assert [w["layout"] for w in s["weights"]] == ["in-out", "in-out"]
        for ours, theirs in zip(s["weights"], weights, strict=True):
            np.testing.assert_allclose(ours["values"], theirs.T, rtol=1e-13)  # in-out = torch's .T
    # the first step's weights are the explanation's update, element for element
    update = {u["name"]: u["values"] for u in doc["update"]}
    np.testing.assert_allclose(doc["steps"][0]["weights"][1]["values"], update["w_2^new"], rtol=1e-15)
    assert doc["losses"] == pytest.approx(losses, rel=1e-13)
    # matrix notation is out-in throughout (the reference file: in-out in the reference notation)
    docs = [
        json.loads(
            run_cli(["explain", "--lr", "0.5", "--steps", "2", "--notation", n, "--format", "json"])[1]
        )
        for n in ("reference", "matrix")
    ]
    assert {w["layout"] for s in docs[0]["steps"] for w in s["weights"]} == {"in-out"}
    assert {w["layout"] for s in docs[1]["steps"] for w in s["weights"]} == {"out-in"}
    for ref, mat in zip(docs[0]["steps"][1]["weights"], docs[1]["steps"][1]["weights"], strict=True):
        np.testing.assert_array_equal(np.array(mat["values"]), np.array(ref["values"]).T)


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "html", "json"])
def test_many_steps_are_shortened_in_every_format(fmt, run_cli):
    """60 steps: steps 1-5 and 56-60 with their parameters, the loss every 5th step between
    (60 / 20 checkpoints = 3, rounded up to 5), and a note saying so; --all-steps shows all."""
    losses, _ = _torch_steps(load_network(find_example("mazur-2-2-2")), 60, 0.5, 0.0)
    argv = ["explain", "mazur-2-2-2", "--lr", "0.5", "--steps", "60", "--format", fmt]
    code, out, err = run_cli(argv)
    assert code == 0 and err == ""
    if fmt == "json":
        doc = json.loads(out)
        assert [s["step"] for s in doc["steps"]] == [1, 2, 3, 4, 5, 56, 57, 58, 59, 60]
        assert doc["losses"] == pytest.approx(losses, rel=1e-12)
    else:
        assert "the loss before every 5th step between them (--all-steps shows every step" in out
        for k in (1, 5, 10, 30, 55, 56, 60):  # each shown step's loss, as torch computes it
            assert f"{losses[k - 1]:.4g}" in out, k
        assert f"{losses[6]:.4g}" not in out  # step 7: neither a checkpoint nor an end
    code, everything, _ = run_cli([*argv, "--all-steps"])
    if fmt == "json":
        assert [s["step"] for s in json.loads(everything)["steps"]] == list(range(1, 61))
    else:
        assert f"{losses[6]:.4g}" in everything and "--all-steps shows" not in everything
    if fmt == "text":
        assert "  step 10: L = " + f"{losses[9]:.4g}" + "\n" in out  # a checkpoint: the loss alone
        assert out.count(", then\n") == 10 and everything.count(", then\n") == 60


def test_momentum_or_save_without_steps_adds_no_training_section(tmp_path, run_cli):
    code, out, _ = run_cli(["explain", "mazur-2-2-2", "--lr", "0.5", "--momentum", "0.9"])
    assert code == 0 and "Training:" not in out and "Gradient-descent update" in out
    saved = tmp_path / "next.toml"
    code, out, _ = run_cli(
        ["explain", "mazur-2-2-2", "--lr", "0.5", "--steps", "2", "--save-updated", str(saved)]
    )
    assert code == 0 and "Training: 2 steps" in out
    assert load_network(saved).title.endswith("[after 2 steps of SGD at lr = 0.5]")
    code, _, err = run_cli(["explain", "--lr", "0.5", "--all-steps"])
    assert code == 2 and "--all-steps needs --steps N" in err
