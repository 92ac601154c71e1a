"""Optimizers and schedules against PyTorch's torch.optim and against the update rules written out."""
from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim

SHAPES = [(3, 4), (4,)]
STEPS = 6

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, weight_decay=0.1, amsgrad=True)),
]


def _problem(seed=0):
    """Initial parameters and a fixed sequence of gradients (so only the update rule is compared)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return init, grads


def _run_chainrule(name, config, init, grads, dtype=np.float64):
    params = [cr.tensor(p, dtype=dtype, requires_grad=True) for p in init]
    opt = getattr(optim, name)(params, **config)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.astype(dtype)
        opt.step()
        history.append([p.data.copy() for p in params])
    return history


# --- the update rules, written out in NumPy --------------------------------------------------------

def _reference_sgd(init, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    params = [p.copy() for p in init]
    bufs = [None] * len(params)
    history = []
    for step_grads in grads:
        for i, g in enumerate(step_grads):
            d = g + weight_decay * params[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = params[i] - lr * d
        history.append([p.copy() for p in params])
    return history


def _reference_adam(init, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                    decoupled=False):
    b1, b2 = betas
    params = [p.copy() for p in init]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params]
    history = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            if decoupled:
                params[i] = params[i] - lr * weight_decay * params[i]
            else:
                g = g + weight_decay * params[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g ** 2
            vmax[i] = np.maximum(vmax[i], v[i])
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = (vmax[i] if amsgrad else v[i]) / (1 - b2 ** t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in params])
    return history


def _reference(name, config, init, grads):
    if name == "SGD":
        return _reference_sgd(init, grads, **config)
    defaults = {"weight_decay": 0.01} if name == "AdamW" else {}
    return _reference_adam(init, grads, decoupled=name == "AdamW", **{**defaults, **config})


@pytest.mark.parametrize("name, config", CONFIGS)
def test_matches_update_rule_written_out(name, config):
    init, grads = _problem()
    ours = _run_chainrule(name, config, init, grads)
    expected = _reference(name, config, init, grads)
    for step, (a, b) in enumerate(zip(ours, expected, strict=True)):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_allclose(pa, pb, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


@pytest.mark.parametrize("name, config", CONFIGS)
def test_matches_torch_optim(name, config):
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for the optimizers")
    init, grads = _problem(seed=1)
    ours = _run_chainrule(name, config, init, grads)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in init]
    opt = getattr(torch.optim, name)(params, **config)
    for step, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
        for pa, pt in zip(ours[step], params, strict=True):
            np.testing.assert_allclose(pa, pt.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"{name} {config} step {step + 1}")


def test_defaults_match_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for the defaults")
    p = cr.tensor([1.0], requires_grad=True)
    tp = torch.zeros(1, requires_grad=True)
    for name in ("SGD", "Adam", "AdamW"):
        ours = getattr(optim, name)([p]).defaults
        theirs = getattr(torch.optim, name)([tp]).defaults
        for key, value in ours.items():
            assert theirs[key] == value, (name, key)


@pytest.mark.parametrize("name, config", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                          ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01))])
def test_float32_stays_float32(name, config):
    init, grads = _problem()
    history = _run_chainrule(name, config, init, grads, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in history[-1])
    expected = _reference(name, config, init, grads)[-1]
    for a, b in zip(history[-1], expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_step_updates_in_place_without_graph():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    data = p.data
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.data is data and p.is_leaf and p.requires_grad
    assert not np.allclose(p.data, [1.0, 2.0])


def test_parameter_without_grad_is_skipped_and_zero_grad_clears():
    a = cr.tensor([1.0], requires_grad=True)
    b = cr.tensor([2.0], requires_grad=True)
    opt = optim.SGD([a, b], lr=0.5)
    (a * 3.0).sum().backward()
    opt.step()
    assert a.data[0] == pytest.approx(1.0 - 0.5 * 3.0) and b.data[0] == 2.0
    opt.zero_grad()
    assert a.grad is None
    a.grad = np.ones(1)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0.0])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_state_dict_round_trip_resumes_identically(name):
    config = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    init, grads = _problem(seed=2)
    first = [cr.tensor(p, requires_grad=True) for p in init]
    opt = getattr(optim, name)(first, **config)
    for step_grads in grads[:3]:
        for p, g in zip(first, step_grads, strict=True):
            p.grad = g
        opt.step()
    saved = opt.state_dict()
    second = [cr.tensor(p.data.copy(), requires_grad=True) for p in first]
    resumed = getattr(optim, name)(second, **config)
    resumed.load_state_dict(saved)
    for step_grads in grads[3:]:
        for group in (first, second):
            for p, g in zip(group, step_grads, strict=True):
                p.grad = g
        opt.step()
        resumed.step()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    # the saved state is a copy: stepping on did not change it
    assert set(saved["state"]) == {0, 1}
    assert saved["param_groups"][0]["params"] == [0, 1]


def test_param_groups_have_their_own_settings():
    a = cr.tensor([1.0], requires_grad=True)
    b = cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=0), "lr"),
    (lambda p: optim.Adam(p, lr=-1e-3), "lr"),
    (lambda p: optim.SGD(p, lr=float("nan")), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "betas"),
    (lambda p: optim.AdamW(p, weight_decay=-1), "weight_decay"),
    (lambda p: optim.SGD([], lr=0.1), "empty"),
])
def test_bad_settings_raise(make, message):
    p = [cr.tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=message):
        make(p)


def test_non_leaf_or_frozen_parameters_rejected():
    with pytest.raises(ValueError, match="requires_grad"):
        optim.SGD([cr.tensor([1.0])], lr=0.1)
    with pytest.raises(TypeError, match="Tensor"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.get_optimizer("rmsprop")


# --- schedules ---------------------------------------------------------------------------------

def _lrs(scheduler, epochs):
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(epochs):
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    return lrs


def test_step_lr_formula():
    opt = optim.SGD([cr.tensor([1.0], requires_grad=True)], lr=0.1)
    lrs = _lrs(optim.StepLR(opt, step_size=3, gamma=0.5), 10)
    assert lrs == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(11)], rel=1e-15)


def test_cosine_formula():
    opt = optim.SGD([cr.tensor([1.0], requires_grad=True)], lr=0.1)
    lrs = _lrs(optim.CosineAnnealingLR(opt, T_max=8, eta_min=0.01), 8)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(9)]
    assert lrs == pytest.approx(expected, rel=1e-14)
    assert lrs[-1] == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_schedules_match_torch(kind):
    torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle for the schedules")
    opt = optim.Adam([cr.tensor([1.0], requires_grad=True)], lr=0.02)
    topt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.02)
    if kind == "step":
        ours, theirs = optim.StepLR(opt, 4, 0.3), torch.optim.lr_scheduler.StepLR(topt, 4, 0.3)
    else:
        ours = optim.CosineAnnealingLR(opt, 10, 1e-4)
        theirs = torch.optim.lr_scheduler.CosineAnnealingLR(topt, 10, 1e-4)
    expected = [theirs.get_last_lr()[0]]
    for _ in range(10):
        topt.step()
        theirs.step()
        expected.append(theirs.get_last_lr()[0])
    assert _lrs(ours, 10) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_scheduler_bad_input():
    opt = optim.SGD([cr.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(opt, -3)
    with pytest.raises(TypeError, match="Optimizer"):
        optim.StepLR("not an optimizer", 3)
