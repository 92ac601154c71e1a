"""chainrule.nn: modules, parameters, state dicts, initialisation, and the thin layer/loss wrappers.

Oracles: plain NumPy written out here, and PyTorch (same weights, same inputs) when importable.
"""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.functional as F
from chainrule import nn, optim

torch_reason = "PyTorch is the optional oracle for layers and losses"


def _x(shape, seed=0, dtype=np.float64):
    return cr.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=dtype)


# --- Module mechanics -------------------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4, rng=0)
        self.act = nn.Tanh()
        self.second = nn.Linear(4, 2, rng=1)
        self.scale = nn.Parameter(np.ones(2))

    def forward(self, x):
        return self.second(self.act(self.first(x))) * self.scale


def test_parameters_are_registered_with_dotted_names():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "second.weight", "second.bias"]
    assert [type(c).__name__ for c in m.children()] == ["Linear", "Tanh", "Linear"]
    assert len(list(m.modules())) == 4
    assert m.num_parameters() == 2 + 12 + 4 + 8 + 2
    assert all(p.requires_grad and p.is_leaf for p in m.parameters())


def test_call_runs_forward_and_gradients_reach_every_parameter():
    m = TwoLayer()
    m(_x((5, 3))).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_shared_parameter_listed_once():
    layer = nn.Linear(2, 2, rng=0)
    m = nn.Sequential(layer, nn.ReLU(), layer)
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias"]


def test_assigning_wrong_type_to_a_parameter_slot_is_an_error():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="expected a Parameter or None"):
        m.weight = np.zeros((3, 2))
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Broken()


def test_train_and_eval_reach_every_submodule():
    m = nn.MLP([4, 8, 8, 2], dropout=0.5, rng=0)
    assert m.eval() is m and not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_state_dict_is_a_copy_and_load_is_in_place():
    m = nn.MLP([3, 5, 2], rng=0)
    state = m.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    state["0.weight"][:] = 7.0
    assert not np.any(m[0].weight.data == 7.0)  # the copy does not alias the weights
    other = nn.MLP([3, 5, 2], rng=1)
    weight_array = other[0].weight.data
    other.load_state_dict(m.state_dict())
    assert other[0].weight.data is weight_array  # in place: optimizers keep their references
    x = _x((4, 3))
    np.testing.assert_array_equal(other(x).data, m(x).data)


def test_load_state_dict_errors():
    m = nn.MLP([3, 5, 2], rng=0)
    state = m.state_dict()
    with pytest.raises(ValueError, match="missing keys: 2.bias"):
        m.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(ValueError, match="unexpected keys: extra"):
        m.load_state_dict({**state, "extra": np.ones(1)})
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 5\), the parameter has shape \(5, 3\)"):
        m.load_state_dict({**state, "0.weight": np.ones((3, 5))})
    result = m.load_state_dict({"0.bias": np.zeros(5), "x": np.ones(1)}, strict=False)
    assert result.missing_keys == ["0.weight", "2.weight", "2.bias"] and result.unexpected_keys == ["x"]
    np.testing.assert_array_equal(m[0].bias.data, 0.0)


def test_to_float32_keeps_float32_end_to_end():
    m = nn.MLP([3, 4, 2], activation="tanh", rng=0).to(np.float32)
    out = m(_x((5, 3), dtype=np.float32))
    assert out.dtype == np.float32
    nn.CrossEntropyLoss()(out, np.array([0, 1, 0, 1, 1])).backward()
    assert all(p.grad.dtype == np.float32 for p in m.parameters())


def test_repr_matches_pytorch():
    torch = pytest.importorskip("torch", reason=torch_reason)
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 2, bias=False), nn.Tanh()))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Linear(8, 2, bias=False), torch.nn.Tanh()))
    assert repr(ours) == repr(theirs)
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"  # PyTorch adds inplace=False, which we lack
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.HuberLoss(delta=2.0)) == "HuberLoss(delta=2.0)"


# --- Linear ------------------------------------------------------------------------------------------

def test_linear_layout_and_forward_written_out():
    layer = nn.Linear(3, 4, rng=0)
    assert layer.weight.shape == (4, 3) and layer.bias.shape == (4,)
    x = _x((5, 3))
    expected = x.data @ layer.weight.data.T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-15)
    assert layer(x).op == "linear"  # one fused primitive of chainrule.functional
    no_bias = nn.Linear(3, 4, bias=False, rng=0)
    assert no_bias.bias is None
    np.testing.assert_allclose(no_bias(x).data, x.data @ no_bias.weight.data.T)


def test_linear_gradients_match_torch():
    torch = pytest.importorskip("torch", reason=torch_reason)
    layer = nn.Linear(3, 4, rng=0)
    x = _x((5, 3)).requires_grad_()
    g = np.random.default_rng(1).standard_normal((5, 4))
    (layer(x) * g).sum().backward()
    tx = torch.tensor(x.data, requires_grad=True)
    tl = torch.nn.Linear(3, 4).double()
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(layer.weight.data))
        tl.bias.copy_(torch.tensor(layer.bias.data))
    (tl(tx) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, tl.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, tl.bias.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("nonlinearity, variance", [
    ("linear", 2 / (400 + 600)), ("sigmoid", 2 / (400 + 600)), ("tanh", 2 / (400 + 600)),
    ("relu", 2 / 400), ("gelu", 2 / 400), ("leaky_relu", 2 / (1 + 0.01 ** 2) / 400),
])
def test_initialisation_per_activation(nonlinearity, variance):
    w = nn.Linear(400, 600, nonlinearity=nonlinearity, rng=0).weight.data
    assert w.shape == (600, 400)
    assert w.var() == pytest.approx(variance, rel=0.02)
    assert abs(w.mean()) < 0.01 * np.sqrt(variance) * 10
    if nonlinearity in nn.GLOROT_ACTIVATIONS:  # Glorot uniform: bounded by sqrt(6/(in+out))
        assert np.abs(w).max() <= np.sqrt(6 / 1000)
        assert np.abs(w).max() > 0.99 * np.sqrt(6 / 1000)
    else:  # He normal: Gaussian tails reach past 3 standard deviations
        assert np.abs(w).max() > 3 * np.sqrt(variance)


def test_initialisation_is_seeded():
    a = nn.MLP([5, 7, 3], rng=42).state_dict()
    b = nn.MLP([5, 7, 3], rng=np.random.default_rng(42)).state_dict()
    c = nn.MLP([5, 7, 3], rng=43).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    np.testing.assert_array_equal(a["0.bias"], 0.0)


@pytest.mark.parametrize("args, message", [
    ((0, 3), "in_features"), ((3, -1), "out_features"), ((2.5, 3), "in_features"),
])
def test_linear_bad_sizes(args, message):
    with pytest.raises(ValueError, match=message):
        nn.Linear(*args)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        nn.Linear(2, 2, nonlinearity="swish")


# --- MLP ----------------------------------------------------------------------------------------------

def test_mlp_structure_and_init_choice():
    m = nn.MLP([4, 16, 8, 3], activation="tanh", output_activation="softmax", dropout=0.1, rng=0)
    kinds = [type(x).__name__ for x in m]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear", "Softmax"]
    assert [x.nonlinearity for x in m if isinstance(x, nn.Linear)] == ["tanh", "tanh", "softmax"]
    relu = nn.MLP([4, 16, 2], activation="relu", rng=0)
    assert [x.nonlinearity for x in relu if isinstance(x, nn.Linear)] == ["relu", "linear"]
    with pytest.raises(ValueError, match="at least"):
        nn.MLP([4])
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([4, 4, 2], activation="swish")


def test_mlp_forward_written_out_in_numpy():
    m = nn.MLP([3, 5, 4, 2], activation="sigmoid", rng=0)
    x = _x((6, 3))
    w = [layer.weight.data for layer in m if isinstance(layer, nn.Linear)]
    b = [layer.bias.data for layer in m if isinstance(layer, nn.Linear)]
    h = x.data
    for i in range(3):
        h = h @ w[i].T + b[i]
        if i < 2:
            h = 1 / (1 + np.exp(-h))
    np.testing.assert_allclose(m(x).data, h, rtol=1e-13)


def test_mlp_loss_gradients_match_torch():
    torch = pytest.importorskip("torch", reason=torch_reason)
    m = nn.MLP([4, 6, 3], activation="relu", rng=0)
    x, y = _x((8, 4)), np.random.default_rng(2).integers(0, 3, 8)
    nn.CrossEntropyLoss()(m(x), y).backward()
    t = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        for (_, ours), theirs in zip(m.named_parameters(), t.parameters(), strict=True):
            theirs.copy_(torch.tensor(ours.data))
    torch.nn.CrossEntropyLoss()(t(torch.tensor(x.data)), torch.tensor(y)).backward()
    for (name, ours), theirs in zip(m.named_parameters(), t.parameters(), strict=True):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


def test_mlp_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    m = nn.MLP([2, 8, 1], activation="tanh", rng=0)
    opt = optim.Adam(m.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(m(cr.tensor(x)), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    np.testing.assert_array_equal(m(cr.tensor(x)).data > 0.5, y > 0.5)


# --- Dropout ----------------------------------------------------------------------------------------

def test_dropout_scales_kept_units_and_routes_gradient_through_them():
    drop = nn.Dropout(0.3, rng=0)
    x = cr.tensor(np.ones((200, 50)), requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.02)
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)


def test_dropout_eval_identity_and_edges():
    x = _x((3, 4))
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, 0.0)
    assert nn.Dropout(0.5)(_x((3, 4), dtype=np.float32)).dtype == np.float32
    for p in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="Dropout probability"):
            nn.Dropout(p)


# --- activation and loss modules: thin wrappers over chainrule.functional ----------------------------

def test_every_functional_activation_and_loss_has_a_module():
    assert set(nn.ACTIVATIONS) == set(F.ACTIVATIONS)
    assert set(nn.LOSSES) == set(F.LOSSES)


ACTIVATION_CASES = [
    (nn.Sigmoid, {}, "Sigmoid", {}), (nn.Tanh, {}, "Tanh", {}), (nn.ReLU, {}, "ReLU", {}),
    (nn.LeakyReLU, {"negative_slope": 0.2}, "LeakyReLU", {"negative_slope": 0.2}),
    (nn.ELU, {"alpha": 0.7}, "ELU", {"alpha": 0.7}),
    (nn.GELU, {"approximate": "tanh"}, "GELU", {"approximate": "tanh"}),
    (nn.Softplus, {"beta": 2.0}, "Softplus", {"beta": 2.0}),
    (nn.Softmax, {"axis": 0}, "Softmax", {"dim": 0}),
    (nn.LogSoftmax, {"axis": -1}, "LogSoftmax", {"dim": -1}),
    (nn.LogSigmoid, {}, "LogSigmoid", {}), (nn.SiLU, {}, "SiLU", {}), (nn.SELU, {}, "SELU", {}),
    (nn.CELU, {"alpha": 0.5}, "CELU", {"alpha": 0.5}), (nn.Mish, {}, "Mish", {}),
    (nn.Hardswish, {}, "Hardswish", {}), (nn.Hardsigmoid, {}, "Hardsigmoid", {}),
    (nn.Hardtanh, {"min_val": -0.5, "max_val": 2.0}, "Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    (nn.ReLU6, {}, "ReLU6", {}), (nn.Softsign, {}, "Softsign", {}),
    (nn.Softmin, {"axis": 0}, "Softmin", {"dim": 0}),
]


@pytest.mark.parametrize("cls, kwargs, torch_name, torch_kwargs", ACTIVATION_CASES)
def test_activation_modules_are_the_functional_forms(cls, kwargs, torch_name, torch_kwargs):
    x = _x((4, 5)).requires_grad_()
    out = cls(**kwargs)(x)
    np.testing.assert_array_equal(out.data, getattr(F, cls.fn_name)(x, **kwargs).data)
    assert out.op == cls.fn_name  # the functional primitive itself, not a re-implementation
    torch = pytest.importorskip("torch", reason=torch_reason)
    expected = getattr(torch.nn, torch_name)(**torch_kwargs)(torch.tensor(x.data)).numpy()
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)


def _loss_inputs():
    rng = np.random.default_rng(3)
    return {
        "scores": rng.standard_normal((6, 4)), "classes": rng.integers(0, 4, 6),
        "pred": rng.standard_normal((6, 1)), "target": rng.standard_normal((6, 1)) * 2,
        "prob": 1 / (1 + np.exp(-rng.standard_normal((6, 1)))),
        "bits": rng.integers(0, 2, (6, 1)).astype(float),
        "signs": rng.choice([-1.0, 1.0], (6, 1)),
        "a": rng.standard_normal((6, 3)), "b": rng.standard_normal((6, 3)), "y": rng.choice([-1.0, 1.0], 6),
    }


LOSS_CASES = [
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, ("scores", "classes"), {"label_smoothing": 0.1}),
    ("MultiMarginLoss", {"margin": 0.5}, ("scores", "classes"), {"margin": 0.5}),
    ("L1Loss", {}, ("pred", "target"), {}),
    ("MSELoss", {"reduction": "sum"}, ("pred", "target"), {"reduction": "sum"}),
    ("HuberLoss", {"delta": 0.7}, ("pred", "target"), {"delta": 0.7}),
    ("BCELoss", {}, ("prob", "bits"), {}),
    ("BCEWithLogitsLoss", {"reduction": "none"}, ("pred", "bits"), {"reduction": "none"}),
    ("CosineEmbeddingLoss", {"margin": 0.2}, ("a", "b", "y"), {"margin": 0.2}),
    ("NLLLoss", {}, ("scores", "classes"), {}),
    ("SmoothL1Loss", {"beta": 0.5}, ("pred", "target"), {"beta": 0.5}),
    ("KLDivLoss", {"reduction": "batchmean"}, ("pred", "prob"), {"reduction": "batchmean"}),
]


@pytest.mark.parametrize("name, kwargs, inputs, torch_kwargs", LOSS_CASES)
def test_loss_modules_match_functional_and_torch(name, kwargs, inputs, torch_kwargs):
    values = _loss_inputs()
    args = [values[k] for k in inputs]
    module = getattr(nn, name)(**kwargs)
    tensors = [cr.tensor(a) if a.dtype.kind == "f" and i < len(args) - 1 else a for i, a in enumerate(args)]
    out = module(*tensors)
    fn_kwargs = {k: v for k, v in kwargs.items()}
    np.testing.assert_array_equal(out.data, getattr(F, module.fn_name)(*tensors, **fn_kwargs).data)
    torch = pytest.importorskip("torch", reason=torch_reason)
    expected = getattr(torch.nn, name)(**torch_kwargs)(*[torch.tensor(a) for a in args]).numpy()
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-15)


_W = np.array([0.5, 2.0, 1.0, 3.0])  # one weight per class of "scores"
OPTION_CASES = [  # (module, its settings, inputs; torch's module takes the same settings)
    ("CrossEntropyLoss", {"weight": _W, "ignore_index": 2, "label_smoothing": 0.1}, ("scores", "classes")),
    ("CrossEntropyLoss", {"weight": _W, "reduction": "sum"}, ("scores", "classes")),
    ("BCEWithLogitsLoss", {"pos_weight": np.array([3.0]), "weight": np.linspace(0.5, 1.5, 6)[:, None]},
     ("pred", "bits")),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": _W}, ("scores", "classes")),
    ("NLLLoss", {"weight": _W, "ignore_index": 2}, ("scores", "classes")),
]


@pytest.mark.parametrize("name, kwargs, inputs", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_loss_modules_pass_weights_and_options_through(name, kwargs, inputs):
    """Class weights, ignore_index, pos_weight and p reach the functional form (checked against torch)."""
    torch = pytest.importorskip("torch", reason=torch_reason)
    x, y = (_loss_inputs()[k] for k in inputs)
    assert np.any(y == 2) or name != "CrossEntropyLoss"  # some rows are ignored, so ignore_index matters
    module = getattr(nn, name)(**kwargs)
    assert all(f"{k}=" in repr(module) for k in kwargs if k != "reduction")
    xt = cr.tensor(x, requires_grad=True)
    out = module(xt, y)
    out.backward()
    tx = torch.tensor(x, requires_grad=True)
    torch_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    want = getattr(torch.nn, name)(**torch_kwargs)(tx, torch.tensor(y))
    want.backward()
    np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    plain = getattr(nn, name)(reduction=kwargs.get("reduction", "mean"))(cr.tensor(x), y)
    assert not np.allclose(out.data, plain.data)  # the settings changed the loss


def test_hinge_and_l2_modules_written_out():
    v = _loss_inputs()
    s, y = v["pred"], v["signs"]
    hinge = nn.HingeLoss()(cr.tensor(s), y)
    assert hinge.item() == pytest.approx(np.mean(np.maximum(0, 1 - y * s)), rel=1e-14)
    l2 = nn.L2Loss()(cr.tensor(v["pred"]), v["target"])  # the reference solution's 0.5 * sum
    assert l2.item() == pytest.approx(0.5 * np.sum((v["pred"] - v["target"]) ** 2), rel=1e-14)
    assert nn.L2Loss(reduction="mean")(cr.tensor(v["pred"]), v["target"]).item() == pytest.approx(
        0.5 * np.mean((v["pred"] - v["target"]) ** 2), rel=1e-14)


def test_loss_module_lookup_and_bad_reduction():
    assert isinstance(nn.loss_module("huber", delta=2.0), nn.HuberLoss)
    assert isinstance(nn.loss_module("cross_entropy"), nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="unknown loss 'hamming'"):
        nn.loss_module("hamming")
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="average")
    assert isinstance(nn.activation_module("leaky_relu", negative_slope=0.3), nn.LeakyReLU)
