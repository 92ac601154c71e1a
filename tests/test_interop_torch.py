"""chainrule.interop.torch: to_torch / from_torch / explain_torch against PyTorch itself.

Oracles: PyTorch's own state dict (keys, order, shapes), PyTorch's forward on the same weights,
and torch.autograd's gradients. Skipped, with the reason, where PyTorch is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='PyTorch is not installed (pip install "chainrule[torch]")')

from chainrule import nn  # noqa: E402
from chainrule.interop.torch import explain_torch, from_torch, supported_layers, to_torch  # noqa: E402

RNG = np.random.default_rng(7)


def every_layer(dtype=np.float64) -> nn.Sequential:
    """One of every layer to_torch converts, in a chain that runs on (N, 4) inputs."""
    return nn.Sequential(
        nn.Linear(4, 6, rng=0, dtype=dtype),
        nn.Sigmoid(),
        nn.Linear(6, 6, rng=1, dtype=dtype),
        nn.Tanh(),
        nn.Linear(6, 6, bias=False, rng=2, dtype=dtype),
        nn.ReLU(),
        nn.Linear(6, 6, rng=3, dtype=dtype),
        nn.LeakyReLU(0.2),
        nn.ELU(0.7),
        nn.GELU(),
        nn.GELU("tanh"),
        nn.Softplus(2.0, 5.0),
        nn.Dropout(0.3),
        nn.Identity(),
        nn.Sequential(nn.Linear(6, 3, rng=4, dtype=dtype), nn.Softmax(axis=-1)),
        nn.LogSoftmax(axis=1),
    )


def torch_every_layer(dtype=torch.float64) -> torch.nn.Sequential:
    """The same architecture written directly in PyTorch (the key-name oracle)."""
    T = torch.nn
    return T.Sequential(
        T.Linear(4, 6),
        T.Sigmoid(),
        T.Linear(6, 6),
        T.Tanh(),
        T.Linear(6, 6, bias=False),
        T.ReLU(),
        T.Linear(6, 6),
        T.LeakyReLU(0.2),
        T.ELU(0.7),
        T.GELU(),
        T.GELU("tanh"),
        T.Softplus(2.0, 5.0),
        T.Dropout(0.3),
        T.Identity(),
        T.Sequential(T.Linear(6, 3), T.Softmax(dim=-1)),
        T.LogSoftmax(dim=1),
    ).to(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_torch_has_torchs_keys_and_computes_the_same(dtype):
    ours = every_layer(dtype).eval()
    converted = to_torch(ours)
    oracle = torch_every_layer(torch.float32 if dtype == np.float32 else torch.float64)
    assert list(converted.state_dict()) == list(oracle.state_dict()) == list(ours.state_dict())
    assert repr(converted) == repr(oracle.eval())  # the same layers with the same settings
    for key, value in converted.state_dict().items():
        assert value.numpy().dtype == dtype
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key])  # an exact copy
    x = RNG.standard_normal((5, 4)).astype(dtype)
    expected = converted(torch.from_numpy(x)).detach().numpy()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(ours(x).data, expected, rtol=tol, atol=tol)
    assert not converted.training


def test_from_torch_runs_a_torch_model_as_torch_does():
    torch.manual_seed(0)
    model = torch_every_layer().eval()
    ours = from_torch(model)
    x = RNG.standard_normal((7, 4))
    np.testing.assert_allclose(
        ours(x).data, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-13, atol=1e-13
    )
    assert not ours.training and isinstance(ours[14], nn.Sequential)


def test_round_trips_are_exact_and_copies():
    torch.manual_seed(1)
    model = torch_every_layer()
    back = to_torch(from_torch(model))
    assert repr(back) == repr(model)
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)
    ours = nn.MLP([3, 5, 2], activation="tanh", rng=3)
    again = from_torch(to_torch(ours))
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)
    with torch.no_grad():
        back[0].weight.add_(1.0)
    assert not torch.equal(back[0].weight, model[0].weight)  # no aliasing either way


def test_training_in_torch_comes_back_through_the_state_dict():
    ours = nn.MLP([2, 4, 1], activation="tanh", rng=0)
    model = to_torch(ours)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    ours.load_state_dict(model.state_dict())
    np.testing.assert_allclose(ours(x.numpy()).data, model(x).detach().numpy(), rtol=1e-13)


class Custom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * 2


@pytest.mark.parametrize(
    "model, words",
    [
        (
            torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv3d(1, 1, 1)),
            ["model.1", "torch.nn.Conv3d"],
        ),
        (Custom(), ["model", "Custom", "custom Module"]),
        (torch.nn.Sequential(torch.nn.Sequential(torch.nn.PReLU())), ["model.0.0", "PReLU"]),
    ],
)
def test_unsupported_torch_layers_are_named(model, words):
    with pytest.raises(TypeError) as info:
        from_torch(model)
    for word in words:
        assert word in str(info.value)


def test_settings_chainrule_cannot_express_are_refused():
    with pytest.raises(ValueError, match=r"model.0: torch.nn.Softmax\(dim=None\)"):
        from_torch(torch.nn.Sequential(torch.nn.Softmax()))
    with pytest.raises(TypeError, match="bfloat16"):
        from_torch(torch.nn.Linear(2, 2).to(torch.bfloat16))
    hooked = torch.nn.Linear(2, 2)
    hooked.register_forward_hook(lambda m, i, o: o * 2)
    with pytest.raises(ValueError, match="forward hooks"):
        from_torch(hooked)
    with pytest.raises(TypeError, match="torch.nn.Module, got ndarray"):
        from_torch(np.zeros(2))
    with pytest.raises(TypeError, match="chainrule.nn.Module, got Linear"):
        to_torch(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="L2Loss"):
        to_torch(nn.Sequential(nn.L2Loss()))


def test_supported_layers_lists_what_converts():
    names = supported_layers()
    for name in names:
        assert hasattr(torch.nn, name)
    assert {"Sequential", "Linear", "ReLU", "Dropout"} <= set(names)


# --- explain a PyTorch model ------------------------------------------------------------------------

REFERENCE_LIKE = """
sizes = [3, 2, 2]
activation = ["tanh", "sigmoid"]
[loss]
name = "mse_loss"
reduction = "mean"
[data]
input = [[0.02, 0.03, -2.06], [0.5, -0.1, 0.3]]
target = [[0.61, 0.2], [0.1, 0.9]]
[[layers]]
weights = [[0.36, 0.74, -0.28], [0.29, -0.27, -0.84]]
bias = [0.7, 0.17]
[[layers]]
weights = [[0.5, -0.6], [-0.2, 0.8]]
bias = [-0.3, 0.25]
"""


def reference_torch_model():
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 2), torch.nn.Sigmoid()
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.36, 0.74, -0.28], [0.29, -0.27, -0.84]], dtype=torch.float64))
        model[0].bias.copy_(torch.tensor([0.7, 0.17], dtype=torch.float64))
        model[2].weight.copy_(torch.tensor([[0.5, -0.6], [-0.2, 0.8]], dtype=torch.float64))
        model[2].bias.copy_(torch.tensor([-0.3, 0.25], dtype=torch.float64))
    x = torch.tensor([[0.02, 0.03, -2.06], [0.5, -0.1, 0.3]], dtype=torch.float64)
    y = torch.tensor([[0.61, 0.2], [0.1, 0.9]], dtype=torch.float64)
    return model, x, y


def test_explain_torch_gradients_equal_torch_autograd():
    model, x, y = reference_torch_model()
    explanation = explain_torch(model, x, y, "mse_loss")
    torch.nn.functional.mse_loss(model(x), y).backward()
    nodes = {n.name: n for n in explanation.nodes}
    for name, param in (
        ("W1", model[0].weight),
        ("b1", model[0].bias),
        ("W2", model[2].weight),
        ("b2", model[2].bias),
    ):
        np.testing.assert_allclose(nodes[name].gradient, param.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert explanation.loss == pytest.approx(torch.nn.functional.mse_loss(model(x), y).item(), abs=1e-15)


def test_explain_torch_names_what_the_network_file_names(tmp_path):
    from chainrule.explain import explain_network, load_network

    path = tmp_path / "net.toml"
    path.write_text(REFERENCE_LIKE)
    expected = explain_network(load_network(path))
    model, x, y = reference_torch_model()
    got = explain_torch(model, x, y, "mse_loss")
    assert got.network is not None
    assert got.render("text") == expected.render("text")
    assert [q.name for q in got.quantities] == [q.name for q in expected.quantities]


def test_explain_torch_refuses_bad_losses_and_layers():
    model, x, y = reference_torch_model()
    with pytest.raises(ValueError, match="unknown loss"):
        explain_torch(model, x, y, "no_such_loss")
    with pytest.raises(TypeError, match="Conv3d"):
        explain_torch(torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1)), x, y)


def test_chainrule_explain_takes_a_torch_model():
    import chainrule

    model, x, y = reference_torch_model()
    got = chainrule.explain(model, x, y, loss="mse_loss", digits=6)
    assert got.render("text") == explain_torch(model, x, y, "mse_loss", digits=6).render("text")
    with pytest.raises(TypeError, match="chainrule Tensor"):  # anything else still goes to explain(loss)
        chainrule.explain(np.zeros(1))


# --- convolution, pooling, normalisation, embedding ---------------------------------------------


def conv_stack(dtype=np.float64) -> nn.Sequential:
    return nn.Sequential(
        nn.Unflatten(1, (2, 6, 6)),
        nn.Conv2d(2, 4, 3, padding="same", bias=False, rng=0, dtype=dtype),
        nn.BatchNorm2d(4, momentum=None, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=1, padding=1, dilation=2),
        nn.Conv2d(
            4,
            4,
            (2, 3),
            stride=(2, 1),
            padding=(1, 0),
            dilation=(1, 2),
            groups=2,
            rng=1,
            padding_mode="reflect",
            dtype=dtype,
        ),
        nn.AvgPool2d(2, padding=1, count_include_pad=False, divisor_override=3),
        nn.Flatten(2),  # (N, 4, H*W)
        nn.Conv1d(4, 3, 2, padding="valid", rng=2, dtype=dtype),
        nn.BatchNorm1d(3, affine=False, dtype=dtype),
        nn.LayerNorm(5, elementwise_affine=True, bias=False, dtype=dtype),
        nn.AvgPool1d(2, ceil_mode=True),
        nn.MaxPool1d(1),
        nn.Flatten(),
    )


def torch_conv_stack() -> torch.nn.Sequential:
    T = torch.nn
    return T.Sequential(
        T.Unflatten(1, (2, 6, 6)),
        T.Conv2d(2, 4, 3, padding="same", bias=False),
        T.BatchNorm2d(4, momentum=None),
        T.ReLU(),
        T.MaxPool2d(2, stride=1, padding=1, dilation=2),
        T.Conv2d(
            4, 4, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, padding_mode="reflect"
        ),
        T.AvgPool2d(2, padding=1, count_include_pad=False, divisor_override=3),
        T.Flatten(2),
        T.Conv1d(4, 3, 2, padding="valid"),
        T.BatchNorm1d(3, affine=False),
        T.LayerNorm(5, bias=False),
        T.AvgPool1d(2, ceil_mode=True),
        T.MaxPool1d(1),
        T.Flatten(),
    ).double()


def test_conv_layers_convert_with_buffers_and_train_identically():
    ours = conv_stack()
    converted = to_torch(ours)
    assert list(converted.state_dict()) == list(torch_conv_stack().state_dict()) == list(ours.state_dict())
    assert repr(converted) == repr(torch_conv_stack())
    x = RNG.standard_normal((6, 72))
    for _ in range(2):  # training mode: batch statistics, and both update their running buffers alike
        np.testing.assert_allclose(
            ours(x).data, converted(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12
        )
    for key, value in converted.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12, atol=1e-15)
    assert int(converted.state_dict()["2.num_batches_tracked"]) == 2
    assert converted.state_dict()["2.num_batches_tracked"].shape == ()  # 0-d, as torch's own
    ours.eval()
    back = from_torch(converted.eval())
    np.testing.assert_allclose(
        back(x).data, converted(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )
    for key, value in converted.state_dict().items():
        assert back.state_dict()[key].tobytes() == value.numpy().tobytes()


def test_cnn_and_embedding_convert():
    cnn = nn.CNN((1, 8, 8), (4,), 3, rng=0, dropout=0.2)
    converted = to_torch(cnn)
    assert type(converted) is torch.nn.Sequential and "0.weight" not in converted.state_dict()
    x = RNG.standard_normal((4, 64))
    cnn.eval()
    np.testing.assert_allclose(
        cnn(x).data, converted.eval()(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )
    emb = torch.nn.Sequential(torch.nn.Embedding(5, 3, padding_idx=1), torch.nn.Flatten()).double()
    ours = from_torch(emb)
    idx = np.array([[0, 1], [4, 2]])
    np.testing.assert_array_equal(ours(idx).data, emb(torch.from_numpy(idx)).detach().numpy())
    assert repr(to_torch(ours)) == repr(emb)


def test_conv_settings_chainrule_cannot_express():
    with pytest.raises(ValueError, match="model.0: .*max_norm"):
        from_torch(torch.nn.Sequential(torch.nn.Embedding(3, 2, max_norm=1.0)))
    with pytest.raises(ValueError, match=r"model: torch.nn.BatchNorm1d\(bias=False\)"):
        from_torch(torch.nn.BatchNorm1d(3, bias=False))


@pytest.mark.parametrize(
    "name, args",
    [
        ("LogSigmoid", ()),
        ("SiLU", ()),
        ("SELU", ()),
        ("Mish", ()),
        ("Hardswish", ()),
        ("Hardsigmoid", ()),
        ("ReLU6", ()),
        ("Softsign", ()),
        ("CELU", (0.7,)),
        ("Hardtanh", (-0.5, 2.0)),
        ("Softmin", (1,)),
    ],
)
def test_newer_activations_convert_both_ways(name, args):
    oracle = torch.nn.Sequential(torch.nn.Linear(3, 4), getattr(torch.nn, name)(*args)).double()
    ours = from_torch(oracle)
    assert repr(to_torch(ours)) == repr(oracle)
    x = RNG.standard_normal((6, 3)) * 4
    np.testing.assert_allclose(
        ours(x).data, oracle(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12
    )
