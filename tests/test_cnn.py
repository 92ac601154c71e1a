"""The small CNN on the digits images through the training code and the CLI (`--model cnn`)."""
from __future__ import annotations

import importlib.util

import pytest

from chainrule import nn
from chainrule.cli import main
from chainrule.train import CNN_DEFAULTS, TrainConfig, TrainedModel, resolve_config, run_training

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="the digits dataset needs scikit-learn")


@needs_sklearn
def test_cnn_defaults_reach_the_readme_accuracy():
    """README: 96.94% test accuracy at seed 0 (348 of 359); asserted with a margin of about
    seven test images for BLAS summation-order differences between machines."""
    run = run_training(TrainConfig(dataset="digits", model="cnn"))
    assert isinstance(run.trained.model, nn.CNN)
    assert run.config.hidden == CNN_DEFAULTS["digits"]["hidden"] and len(run.history.epochs) == 15
    assert run.history.last().metrics["accuracy"] >= 0.95


@needs_sklearn
def test_cli_trains_saves_and_evaluates_a_cnn(tmp_path, capsys):
    model = tmp_path / "cnn.npz"
    assert main(["train", "--dataset", "digits", "--model", "cnn", "--epochs", "1", "--hidden", "4,8",
                 "--quiet", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "1x8x8 -> conv3x3 4 -> maxpool -> conv3x3 8 -> maxpool -> 10" in out
    trained = TrainedModel.load(model)
    assert isinstance(trained.model, nn.CNN) and trained.model.channels == [4, 8]
    assert main(["evaluate", str(model), "--dataset", "digits"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_cnn_needs_an_image_dataset():
    with pytest.raises(ValueError, match="image dataset"):
        resolve_config(TrainConfig(dataset="iris", model="cnn"), "classification")
    with pytest.raises(ValueError, match="unknown model 'rnn'"):
        resolve_config(TrainConfig(dataset="digits", model="rnn"), "classification")
    with pytest.raises(ValueError, match="at least one convolution"):
        resolve_config(TrainConfig(dataset="digits", model="cnn", hidden=()), "classification")


def test_cli_rejects_cnn_on_tabular_data_before_loading(capsys):
    assert main(["train", "--csv", "/no/such.csv", "--target", "y", "--model", "cnn"]) == 2
    err = capsys.readouterr().err
    assert "cnn" in err and "CSV" in err and "Traceback" not in err


def test_mlp_stays_the_default():
    config = resolve_config(TrainConfig(dataset="digits"), "classification")
    assert config.model == "mlp" and config.hidden == (512,)
    cnn = resolve_config(TrainConfig(dataset="digits", model="cnn"), "classification")
    assert cnn.lr == 3e-3 and cnn.hidden == (16, 32)
