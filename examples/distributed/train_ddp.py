"""Keep training a chainrule model with PyTorch's DistributedDataParallel, then bring it back.

Run it under torchrun, one process per worker (here: 2 CPU processes, gloo, loopback only):

    chainrule train --dataset iris --epochs 2 --out iris.npz
    chainrule export iris.npz --to safetensors -o iris.safetensors
    GLOO_SOCKET_IFNAME=lo torchrun --nproc_per_node 2 --master_addr 127.0.0.1 --master_port 29533 \\
        examples/distributed/train_ddp.py iris.safetensors --epochs 30 --out trained.safetensors
    chainrule evaluate trained.safetensors --dataset iris

What happens: every process reads the exported file (architecture, weights under PyTorch's
names, the standardisation fitted by ``chainrule train``), builds the same ``torch.nn`` module
with ``chainrule.interop.to_torch``, wraps it in ``DistributedDataParallel`` and trains on its
own shard of the training rows (``DistributedSampler``); DDP averages the gradients across the
processes after every backward pass, so all of them hold the same weights at every step. At the
end, rank 0 checks that the ranks agree and writes the weights back: ``.safetensors`` through
``safetensors.torch`` with the input file's header (architecture, preprocessing) carried over,
or ``.npz`` through ``chainrule.interop.from_torch`` and ``TrainedModel.save``. Either file is
a chainrule model file that ``chainrule evaluate`` and ``chainrule predict`` read.

On several machines, the same script runs under ``torchrun --nnodes N --node_rank R
--master_addr HOST ...``; with GPUs, use the nccl backend and move the module and batches to
each rank's device. Nothing in chainrule changes.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from chainrule import data
from chainrule.interop import from_torch, to_torch
from chainrule.serialization import is_safetensors
from chainrule.train import TrainedModel

# chainrule's loss names -> PyTorch's functions (the losses whose targets need no re-encoding)
LOSSES = {
    "cross_entropy": F.cross_entropy,
    "mse_loss": F.mse_loss,
    "l1_loss": F.l1_loss,
    "huber_loss": F.huber_loss,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="a chainrule model file (.safetensors from `chainrule export`, or .npz)"
    )
    parser.add_argument("--dataset", help="built-in dataset (default: the one the model was trained on)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument(
        "--out", required=True, help="where to write the trained model (.safetensors or .npz)"
    )
    args = parser.parse_args()

    dist.init_process_group("gloo")  # torchrun's environment: rank, world size, master address
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same shuffling seed everywhere; the sampler shards by rank

    trained = TrainedModel.load(args.model)
    dataset = args.dataset or trained.info.get("dataset")
    if trained.head.loss not in LOSSES or dataset is None:
        raise SystemExit(
            f"this example trains {', '.join(LOSSES)} models on a built-in dataset; "
            f"got {trained.head.loss} on {dataset}"
        )
    features, targets, *_ = data.load_raw(dataset)
    train_idx, _ = data.train_test_split(
        len(features),
        trained.info.get("test_size", 0.2),
        trained.info.get("seed", 0),
        targets if trained.task == "classification" else None,
    )
    # standardised with the scaler fitted by `chainrule train`, in the model's dtype
    x = torch.from_numpy(trained.feature_scaler.transform(features[train_idx]).astype(trained.dtype))
    y = targets[train_idx]
    if trained.task == "regression":
        y = trained.target_scaler.transform(np.asarray(y, np.float64).reshape(len(y), -1))
        y = torch.from_numpy(y.astype(trained.dtype))
    else:
        y = torch.from_numpy(np.asarray(y, dtype=np.int64))
    rows = TensorDataset(x, y)
    sampler = DistributedSampler(rows, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(rows, batch_size=args.batch_size, sampler=sampler)

    model = DistributedDataParallel(to_torch(trained.model).train())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = LOSSES[trained.head.loss]
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every rank
        total = torch.zeros(2, dtype=torch.float64)
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            optimizer.step()
            total += torch.tensor([loss.item() * len(yb), len(yb)], dtype=torch.float64)
        dist.all_reduce(total)  # the epoch's mean loss over every rank's rows
        if rank == 0:
            print(
                f"epoch {epoch}/{args.epochs}  train loss {total[0] / total[1]:.4f}  ({world} processes)",
                flush=True,
            )

    # every rank must hold the same weights: DDP's guarantee, checked
    flat = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        if not all(torch.equal(gathered[0], g) for g in gathered[1:]):
            raise SystemExit("the ranks' weights differ")
        print(f"the {world} ranks hold identical weights", flush=True)
        save(model.module.eval(), trained, args.model, args.out)
        print(f"wrote {args.out}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


def save(module: torch.nn.Module, trained: TrainedModel, source: str, out: str) -> None:
    if out.endswith(".npz"):  # back into chainrule, then its own model file
        trained.model = from_torch(module)
        trained.save(out)
        return
    header = None
    if is_safetensors(source):
        with safe_open(source, framework="pt") as handle:  # the architecture and preprocessing
            header = handle.metadata()
    if not header or "chainrule.architecture" not in header:
        raise SystemExit(f"{source}: write .npz, or start from a `chainrule export --to safetensors` file")
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    tmp = out + ".tmp"
    save_file(state, tmp, metadata=header)
    os.replace(tmp, out)  # atomic: no half-written model file


if __name__ == "__main__":
    sys.exit(main())
