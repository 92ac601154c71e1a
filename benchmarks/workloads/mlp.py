"""W2 and W3: one SGD step of a ReLU MLP with softmax cross-entropy (mean over the batch).

W2: 64-128-10, batch 64, float64. W3: 784-512-512-10, batch 128 (MNIST-sized), float32 and
float64. A step clears the gradients, runs forward, backward and the SGD update. Weights are
(out, in) as in PyTorch's ``nn.Linear``, initialised as it does (uniform +-1/sqrt(in));
gradients are returned in the order W1, b1, W2, b2, ...
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Impl, Workload

LR = 0.05


def problem_maker(sizes: tuple[int, ...], batch: int, dtype, seed: int = 0):
    def make_problem() -> SimpleNamespace:
        rng = np.random.default_rng(seed)
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / np.sqrt(n_in)
            layers.append((rng.uniform(-bound, bound, (n_out, n_in)).astype(dtype),
                           rng.uniform(-bound, bound, n_out).astype(dtype)))
        return SimpleNamespace(x=rng.standard_normal((batch, sizes[0])).astype(dtype),
                               labels=rng.integers(0, sizes[-1], batch), layers=layers)
    return make_problem


def _flat(layers):
    return [v for layer in layers for v in layer]


def chainrule_impl(p: SimpleNamespace) -> Impl:
    import chainrule as cr
    import chainrule.functional as F

    x, labels = cr.tensor(p.x), p.labels
    layers = [(cr.tensor(W, requires_grad=True), cr.tensor(b, requires_grad=True)) for W, b in p.layers]
    params = _flat(layers)
    zero_grad, update = _chainrule_sgd(params, LR)

    def step():
        zero_grad()
        h = x
        for W, b in layers[:-1]:
            h = F.relu(F.linear(h, W, b))
        loss = F.cross_entropy(F.linear(h, *layers[-1]), labels)
        loss.backward()
        update()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [q.grad for q in params],
                lambda: [q.data for q in params])


def _chainrule_sgd(params, lr):
    """chainrule.optim.SGD where it exists; otherwise the update a user writes by hand."""
    try:
        from chainrule.optim import SGD
    except ImportError:
        def zero_grad():
            for q in params:
                q.grad = None

        def update():
            for q in params:
                q.data -= lr * q.grad
        return zero_grad, update
    opt = SGD(params, lr=lr)
    return opt.zero_grad, opt.step


def torch_impl(p: SimpleNamespace) -> Impl:
    import torch
    import torch.nn.functional as F

    x, labels = torch.from_numpy(p.x), torch.from_numpy(p.labels)
    layers = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)) for W, b in p.layers]
    params = _flat(layers)
    opt = torch.optim.SGD(params, lr=LR)

    def step():
        opt.zero_grad()
        h = x
        for W, b in layers[:-1]:
            h = F.relu(F.linear(h, W, b))
        loss = F.cross_entropy(F.linear(h, *layers[-1]), labels)
        loss.backward()
        opt.step()
        return loss

    return Impl(step, lambda loss: loss.item(), lambda: [q.grad.numpy() for q in params],
                lambda: [q.detach().numpy() for q in params])


def numpy_impl(p: SimpleNamespace) -> Impl:
    x, labels = p.x, p.labels
    layers = [(W.copy(), b.copy()) for W, b in p.layers]
    rows = np.arange(len(labels))
    grads: list[np.ndarray] = []

    def step():
        hs, h = [x], x
        for W, b in layers[:-1]:
            h = np.maximum(h @ W.T + b, 0)
            hs.append(h)
        logits = h @ layers[-1][0].T + layers[-1][1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])
        d = e / total  # softmax minus one-hot, over the batch size
        d[rows, labels] -= 1
        d /= len(labels)
        grads.clear()
        for (W, _b), h in zip(reversed(layers), reversed(hs), strict=True):
            grads[:0] = [d.T @ h, d.sum(axis=0)]
            if h is not x:
                d = (d @ W) * (h > 0)
        for (W, b), gW, gb in zip(layers, grads[::2], grads[1::2], strict=True):
            W -= LR * gW
            b -= LR * gb
        return loss

    return Impl(step, float, lambda: grads, lambda: _flat(layers))


def autograd_impl(p: SimpleNamespace) -> Impl:
    import autograd.numpy as anp
    from autograd import value_and_grad
    from autograd.scipy.special import logsumexp

    def loss_fn(params, x, labels):
        h = x
        for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = anp.maximum(anp.dot(h, W.T) + b, 0)
        logits = anp.dot(h, params[-2].T) + params[-1]
        return anp.mean(logsumexp(logits, axis=1) - logits[anp.arange(len(labels)), labels])

    value_and_grad_fn = value_and_grad(loss_fn)
    state = {"params": _flat(p.layers), "grads": []}

    def step():
        loss, g = value_and_grad_fn(state["params"], p.x, p.labels)
        state["params"] = [q - LR * gq for q, gq in zip(state["params"], g, strict=True)]
        state["grads"] = g
        return loss

    return Impl(step, float, lambda: state["grads"], lambda: state["params"])


def jax_impl(p: SimpleNamespace) -> Impl:
    import jax
    import jax.numpy as jnp

    import benchmarks.workloads._jax  # noqa: F401 (float64 on)

    def loss_fn(params, x, labels):
        h = x
        for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = jax.nn.relu(h @ W.T + b)
        log_p = jax.nn.log_softmax(h @ params[-2].T + params[-1])
        return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))

    @jax.jit
    def train_step(params, x, labels):
        loss, g = jax.value_and_grad(loss_fn)(params, x, labels)
        return [q - LR * gq for q, gq in zip(params, g, strict=True)], loss, g

    state = {"params": [jnp.asarray(v) for v in _flat(p.layers)], "grads": []}
    x, labels = jnp.asarray(p.x), jnp.asarray(p.labels)

    def step():
        state["params"], loss, state["grads"] = jax.block_until_ready(
            train_step(state["params"], x, labels))
        return loss

    return Impl(step, float, lambda: [np.asarray(g) for g in state["grads"]],
                lambda: [np.asarray(q) for q in state["params"]])


def micrograd_impl(p: SimpleNamespace) -> Impl:
    from micrograd.nn import MLP

    from benchmarks.workloads._micrograd_ops import exp, log

    sizes = [W.shape[1] for W, _ in p.layers] + [p.layers[-1][0].shape[0]]
    model = MLP(sizes[0], sizes[1:])
    for layer, (W, b) in zip(model.layers, p.layers, strict=True):
        for neuron, w_row, b_j in zip(layer.neurons, W, b, strict=True):
            for w, value in zip(neuron.w, w_row, strict=True):
                w.data = float(value)
            neuron.b.data = float(b_j)
    xs = [list(map(float, row)) for row in p.x]
    labels = [int(k) for k in p.labels]

    def step():
        model.zero_grad()
        losses = []
        for xi, label in zip(xs, labels, strict=True):
            logits = model(xi)
            m = max(v.data for v in logits)  # a constant shift: log-sum-exp without overflow
            lse = log(sum(exp(v - m) for v in logits)) + m
            losses.append(lse - logits[label])
        loss = sum(losses) * (1.0 / len(losses))
        loss.backward()
        for q in model.parameters():
            q.data -= LR * q.grad
        return loss

    def grads():
        out = []
        for layer in model.layers:
            out += [np.array([[w.grad for w in n.w] for n in layer.neurons]),
                    np.array([n.b.grad for n in layer.neurons])]
        return out

    def params():
        out = []
        for layer in model.layers:
            out += [np.array([[w.data for w in n.w] for n in layer.neurons]),
                    np.array([n.b.data for n in layer.neurons])]
        return out

    return Impl(step, lambda loss: loss.data, grads, params)


def workloads() -> list[Workload]:
    peers = {"chainrule": chainrule_impl, "numpy": numpy_impl, "torch": torch_impl,
             "autograd": autograd_impl, "jax": jax_impl}
    no_micrograd = {"micrograd": "a scalar engine: about 1.3e8 graph nodes per step, not feasible"}
    return [
        Workload("W2", "MLP 64-128-10 ReLU, softmax CE, batch 64, one SGD step", np.float64,
                 problem_maker((64, 128, 10), 64, np.float64), {**peers, "micrograd": micrograd_impl},
                 heavy=frozenset({"micrograd"})),
        Workload("W3-f32", "MLP 784-512-512-10 ReLU, softmax CE, batch 128, one SGD step, float32",
                 np.float32, problem_maker((784, 512, 512, 10), 128, np.float32), peers, no_micrograd),
        Workload("W3-f64", "MLP 784-512-512-10 ReLU, softmax CE, batch 128, one SGD step, float64",
                 np.float64, problem_maker((784, 512, 512, 10), 128, np.float64), peers, dict(no_micrograd)),
    ]
