"""examples/distributed/train_ddp.py: a chainrule model exported, trained further with PyTorch's
DistributedDataParallel under ``torchrun --nproc_per_node 2`` (gloo, CPU, loopback), brought
back and evaluated with ``chainrule evaluate``. Bounded in time; skipped without PyTorch."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the example trains with it)")
pytest.importorskip("torch.distributed", reason="this PyTorch build has no torch.distributed")
pytest.importorskip("safetensors", reason="the safetensors package is not installed")
pytest.importorskip("sklearn", reason="the built-in datasets need scikit-learn")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this PyTorch build has no gloo backend", allow_module_level=True)

from chainrule.cli import main  # noqa: E402
from chainrule.serialization import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "distributed" / "train_ddp.py"
TIME_LIMIT_S = 600  # two CPU processes on a busy machine; the run itself takes about a minute


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_training_round_trip(tmp_path, capsys):
    exported = tmp_path / "iris.safetensors"
    assert (
        main(["train", "--dataset", "iris", "--epochs", "1", "--quiet", "--out", str(tmp_path / "iris.npz")])
        == 0
    )
    assert main(["export", str(tmp_path / "iris.npz"), "--to", "safetensors", "-o", str(exported)]) == 0
    assert main(["evaluate", str(exported), "--dataset", "iris"]) == 0
    before = float(re.search(r"accuracy\s+([\d.]+)%", capsys.readouterr().out).group(1))

    out = tmp_path / "trained.safetensors"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_loopback_port()),
        str(SCRIPT),
        str(exported),
        "--epochs",
        "30",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIME_LIMIT_S
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "epoch 30/30" in proc.stdout and "(2 processes)" in proc.stdout
    assert "the 2 ranks hold identical weights" in proc.stdout

    # the weights came back: different from the exported ones, loadable by chainrule and PyTorch
    start, trained = load_model(exported), load_model(out)
    assert trained.metadata == start.metadata
    assert any(
        not np.array_equal(trained.model.state_dict()[k], v) for k, v in start.model.state_dict().items()
    )
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", "iris"]) == 0
    after = float(re.search(r"accuracy\s+([\d.]+)%", capsys.readouterr().out).group(1))
    assert after >= 80.0 and after >= before  # 30 more epochs on iris: a better classifier


def test_the_example_saves_through_from_torch_to_npz(tmp_path):
    """The script's other way back (``--out x.npz``), without launching processes."""
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from chainrule.interop import to_torch
    from chainrule.train import TrainedModel

    assert (
        main(["train", "--dataset", "iris", "--epochs", "1", "--quiet", "--out", str(tmp_path / "a.npz")])
        == 0
    )
    trained = TrainedModel.load(tmp_path / "a.npz")
    module = to_torch(trained.model)
    with torch.no_grad():
        module[0].weight.mul_(2.0)
    script.save(module, trained, str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))
    back = TrainedModel.load(tmp_path / "b.npz")
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(back.model.state_dict()[key], value.numpy())
    with pytest.raises(SystemExit, match="write .npz"):  # an .npz source has no safetensors header
        script.save(module, trained, str(tmp_path / "a.npz"), str(tmp_path / "c.safetensors"))
    assert not (tmp_path / "c.safetensors").exists()
