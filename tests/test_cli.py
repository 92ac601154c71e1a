"""The ``chainrule`` command as a whole: what a bare call shows, and bad flags refused early."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import COMMANDS, main

SRC = Path(__file__).resolve().parents[1] / "src"


def test_no_arguments_shows_the_usage_and_every_command(capsys):
    code = main([])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""  # a usage error, as argparse's missing required argument
    assert err.startswith("usage: chainrule")
    for name in (*COMMANDS, "evaluate", "predict"):
        assert f"\n    {name} " in err, name
    assert "chainrule COMMAND --help" in err


BAD_TRAIN_FLAGS = [
    (["--lr", "0"], "learning rate must be"),
    (["--loss", "foo"], "unknown loss 'foo'"),
    (["--activation", "swish"], "unknown activation 'swish'"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--batch-size", "0"], "batch size must be a positive integer"),
    (["--dropout", "1"], "dropout must be in [0, 1)"),
    (["--test-size", "1.5"], "test size must be a fraction"),
    (["--delta", "0", "--loss", "huber"], "Huber delta must be > 0"),
]


@pytest.mark.parametrize("flags,message", BAD_TRAIN_FLAGS,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_train_flags_are_refused_before_scikit_learn_loads(flags, message):
    # In a fresh interpreter, so that sys.modules shows what the command imported before it
    # refused: scikit-learn (and the dataset) would cost seconds, the refusal must not wait.
    probe = ("import sys; from chainrule.cli import main; "
             f"code = main(['train', '--dataset', 'digits', *{flags!r}]); "
             "loaded = any(m.split('.')[0] == 'sklearn' for m in sys.modules); "
             "print('exit', code, 'sklearn' if loaded else 'none')")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.split() == ["exit", "2", "none"], (proc.stdout, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr


def test_unknown_dataset_and_missing_csv_are_refused_before_scikit_learn_loads():
    probe = ("import sys; from chainrule.cli import main; "
             "a = main(['train', '--dataset', 'mnist']); "
             "b = main(['train', '--csv', '/no/such.csv', '--target', 'y']); "
             "print(a, b, 'sklearn' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.stdout.split() == ["2", "2", "False"], (proc.stdout, proc.stderr)
    assert "unknown dataset 'mnist'" in proc.stderr and "/no/such.csv: no such file" in proc.stderr


def test_train_help_states_each_datasets_defaults_and_that_they_carry_over(capsys):
    from chainrule.train import DATASET_DEFAULTS

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.replace("`", "").split())
    assert "--hidden 128,64 on digits still trains with dropout 0.5" in out
    for name, d in DATASET_DEFAULTS.items():
        hidden = ",".join(map(str, d["hidden"]))
        assert f"{name} hidden {hidden} {d['activation']}, dropout {d['dropout']:g}," in out


_HIDE_TORCH = '''
import importlib.machinery
import sys


class NoTorch:  # the path finder, minus torch: as on a machine without PyTorch
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @classmethod
    def invalidate_caches(cls):
        importlib.machinery.PathFinder.invalidate_caches()


sys.meta_path[:] = [NoTorch if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
'''


def test_pytest_summary_says_why_the_torch_oracle_tests_skipped(tmp_path):
    # tests/conftest.py's summary hook, in a pytest run on a machine without PyTorch
    (tmp_path / "hide_torch.py").write_text(_HIDE_TORCH)
    root = SRC.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hide_torch", "-p", "no:cacheprovider", "-q",
         "tests/test_losses.py::test_binary_cross_entropy_at_saturation_is_finite"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600)
    out = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "PyTorch is not installed, so 2 tests that compare chainrule with PyTorch" in out
    assert "pip install torch" in out and "torch==2.13.0" in out
