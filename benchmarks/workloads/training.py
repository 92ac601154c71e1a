"""W5 and W6: one training epoch of ``chainrule train --dataset digits`` (W5: the default MLP;
W6: ``--model cnn``), against the same loop in PyTorch.

W6 is the same comparison for the small CNN of ``--model cnn`` (1x8x8 -> conv 3x3 16, batch
norm, ReLU, max pool 2 -> conv 3x3 32, batch norm, ReLU, max pool 2 -> dropout 0.25 -> 10,
Adam lr 3e-3, batch 64): PyTorch gets ``nn.Unflatten``, ``nn.Conv2d(padding='same')``,
``nn.BatchNorm2d``, ``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Dropout`` and
``nn.Linear`` in the same order, with chainrule's initial state (weights and running
statistics) loaded through ``load_state_dict``.

chainrule runs its own code path: the configuration ``resolve_config`` gives for digits (64-512-10
MLP, ReLU, dropout 0.5 after the hidden layer, softmax cross-entropy, Adam lr 1e-3, batch 64,
float64), the network, loss and optimizer from ``train.build``, and one epoch of ``train.fit``
over a shuffled ``DataLoader``: what the CLI runs, minus the per-epoch test evaluation, which
neither side does here. PyTorch gets the same network (``nn.Sequential`` of ``nn.Linear``,
``nn.ReLU``, ``nn.Dropout``) with chainrule's initial weights copied in, ``torch.optim.Adam``,
``F.cross_entropy``, and the loop a PyTorch user writes for in-memory data: a permutation per
epoch, one index per batch, ``loss.item()`` per batch for the epoch's mean loss. Both draw the
batch order from a NumPy generator with the run's seed, so they see the same batches.

Checked before timed: the check builds both with dropout 0 (their dropout masks come from
different generators) and compares, after one whole epoch (23 Adam steps), the epoch's mean
loss, the last batch's gradients and every weight. The timed runs use the real dropout of 0.5,
each framework's own masks. The state carries over from epoch to epoch, as in training.
"""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from benchmarks.harness import Impl, Workload


def problem_maker(dropout: float | None = None, model: str = "mlp"):
    """The digits split and its resolved default configuration for ``model`` (``dropout``
    overrides the configuration's)."""
    def make_problem() -> SimpleNamespace:
        from chainrule import train

        config = train.TrainConfig(dataset="digits", model=model)
        split = train.load_split(config)
        config = train.resolve_config(config, split.task)
        if dropout is not None:
            config = replace(config, dropout=dropout)
        return SimpleNamespace(config=config, split=split)
    return make_problem


def chainrule_impl(p: SimpleNamespace) -> Impl:
    from chainrule import data, train

    config, split = p.config, p.split
    trained, loss_fn, opt, _ = train.build(config, split)
    dataset = data.ArrayDataset(split.train.features,
                                trained.head.encode(split.train.targets, np.dtype(config.dtype)))
    loader = data.DataLoader(dataset, config.batch_size, shuffle=True, seed=config.seed)
    params = list(trained.model.parameters())

    def step():
        return train.fit(trained.model, loss_fn, opt, loader, 1)

    return Impl(step, lambda history: history.epochs[-1].train_loss,
                lambda: [q.grad for q in params], lambda: [q.data for q in params])


def torch_impl(p: SimpleNamespace) -> Impl:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from chainrule import train

    config, split = p.config, p.split
    initial = train.build(config, split)[0].model  # chainrule's initial weights, from the same seed
    dtype = getattr(torch, config.dtype)
    model = nn.Sequential(*(_torch_layer(m, nn, dtype) for m in initial))
    # chainrule's initial state, under the same names (weights, biases, running statistics)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.state_dict().items()})
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    features = torch.from_numpy(split.train.features)
    targets = torch.from_numpy(split.train.targets)
    order = np.random.default_rng(config.seed)  # the DataLoader's generator: same batches
    n, batch = len(targets), config.batch_size

    def step():
        model.train()
        perm = torch.from_numpy(order.permutation(n))
        total = 0.0
        for start in range(0, n, batch):
            index = perm[start:start + batch]
            x, y = features[index], targets[index]
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            value = loss.item()
            loss.backward()
            opt.step()
            total += value * len(y)
        model.eval()
        return total / n

    return Impl(step, float, lambda: [q.grad.numpy() for q in params],
                lambda: [q.detach().numpy() for q in params])


def _torch_layer(m, nn, dtype):
    """The torch module for one chainrule layer of an MLP or CNN (same settings, same names)."""
    name = type(m).__name__
    if name == "Linear":
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=dtype)
    if name == "Conv2d":
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                         m.groups, bias=m.bias is not None, padding_mode=m.padding_mode, dtype=dtype)
    if name == "BatchNorm2d":
        return nn.BatchNorm2d(m.num_features, m.eps, m.momentum, dtype=dtype)
    if name == "MaxPool2d":
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode)
    if name == "Dropout":
        return nn.Dropout(m.p)
    if name == "Unflatten":
        return nn.Unflatten(m.dim, m.unflattened_size)
    if name == "Flatten":
        return nn.Flatten(m.start_dim, m.end_dim)
    if name == "ReLU":
        return nn.ReLU()
    raise ValueError(f"no torch counterpart for {name} in this benchmark")


def workloads() -> list[Workload]:
    return [Workload("W5", "digits training epoch (chainrule train defaults: 64-512-10, dropout 0.5, "
                     "Adam, batch 64)", np.float64, problem_maker(),
                     {"chainrule": chainrule_impl, "torch": torch_impl},
                     make_check_problem=problem_maker(dropout=0.0)),
            Workload("W6", "digits CNN training epoch (chainrule train --model cnn: conv 16, conv 32, "
                     "batch norm, max pool, dropout 0.25, Adam, batch 64)", np.float64,
                     problem_maker(model="cnn"), {"chainrule": chainrule_impl, "torch": torch_impl},
                     make_check_problem=problem_maker(dropout=0.0, model="cnn"))]
