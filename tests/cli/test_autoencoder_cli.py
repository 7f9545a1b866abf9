import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfpretrain.data import mnist
from tfpretrain.recipes.autoencoder import AutoencoderRun, run


@pytest.mark.slow
def test_cli_trains_evaluates_exports_and_plots(tmp_path, data_dir):
    out = tmp_path / "run"
    env = dict(os.environ, TFPRETRAIN_DATA_DIR=str(data_dir))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tfpretrain.cli.main",
            "autoencoder",
            "--epochs",
            "3",
            "--limit-train",
            "12000",
            "--validation-size",
            "2000",
            "--out",
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["seconds_per_epoch"] > 0
    # Three short epochs already take the test BCE well below the untrained model's ~0.69.
    assert 0.0 < metrics["test_mse"] < metrics["test_loss"] < 0.2
    for name in (
        "reconstructions.png",
        "loss.png",
        "model.keras",
        "config.json",
        "saved_model/1/saved_model.pb",
    ):
        assert (out / name).exists(), name
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"

    # The reported test loss is the saved model's loss on the real test set.
    model = keras.models.load_model(out / "model.keras")
    _, (x_test, _) = mnist()
    x = x_test[:2000, ..., None].astype("float32") / 255.0
    recon = np.clip(np.asarray(model(x)), 1e-7, 1 - 1e-7)
    bce = -np.mean(x * np.log(recon) + (1 - x) * np.log(1 - recon))
    assert abs(bce - metrics["test_loss"]) < 0.01


def test_recipe_loss_falls_and_conv_variant(tmp_path, data_dir):
    metrics = run(
        AutoencoderRun(
            out_dir=str(tmp_path),
            epochs=2,
            limit_train=3000,
            validation_size=500,
            conv=True,
            verbose=0,
        )
    )
    assert metrics["final_val_loss"] < 0.69 and metrics["epochs"] == 2


def test_cli_reports_bad_input(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfpretrain.cli.main",
            "autoencoder",
            "--epochs",
            "0",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "epochs" in result.stderr


def test_xla_flag_reaches_the_recipe(tmp_path, monkeypatch):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import autoencoder

    seen = []
    monkeypatch.setattr(autoencoder, "run", lambda cfg: seen.append(cfg) or {})
    assert main(["autoencoder", "--xla", "off", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert seen[0].xla == "off" and seen[0].epochs == 1
