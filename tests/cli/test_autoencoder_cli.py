import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfpretrain.data import mnist
from tfpretrain.recipes import autoencoder
from tfpretrain.recipes.autoencoder import AutoencoderRun, run, validation_split


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


def test_validation_is_a_stratified_draw_not_the_last_rows(data_dir):
    # Ordered class by class, as a class-folder tree is read: the last 100 rows are all 2s.
    y = np.repeat([0, 1, 2], [600, 300, 100])
    x = np.arange(1000)  # x identifies its row
    fit_x, val_x = validation_split(x, y, 100, seed=5)
    assert np.bincount(y[val_x]).tolist() == [60, 30, 10]
    assert sorted(np.concatenate([fit_x, val_x]).tolist()) == list(range(1000))
    assert (validation_split(x, y, 100, seed=5)[1] == val_x).all()
    assert set(validation_split(x, y, 100, seed=6)[1]) != set(val_x)
    unlabelled = validation_split(x, None, 100, seed=5)[1]
    assert len(set(unlabelled.tolist())) == 100 and set(unlabelled) != set(range(900, 1000))
    assert validation_split(x, y, 0, seed=5) == (x, None)
    with pytest.raises(ValueError, match="--validation-size must be below the 1000"):
        validation_split(x, y, 1000, seed=5)

    # The MNIST default keeps its 5,000 held-out images, now each digit's share of them.
    (_, y_train), _ = mnist()
    fit_x, val_x = validation_split(np.arange(len(y_train)), y_train, 5000, seed=0)
    assert len(val_x) == 5000 and len(fit_x) == 55_000
    share = np.bincount(y_train) * 5000 / len(y_train)
    assert np.abs(np.bincount(y_train[val_x]) - share).max() < 1


def test_recipe_plots_and_validates_on_every_class(tmp_path, monkeypatch):
    # Train and test arrays sorted by class; a class is told by its brightness (40, 120, 200).
    def images(counts, seed):
        y = np.repeat(np.arange(len(counts)), counts)
        noise = np.random.default_rng(seed).integers(-10, 10, (len(y), 8, 8))
        return (40 + 80 * y[:, None, None] + noise).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = images([30, 20, 10], 0), images([20, 20, 20], 1)
    np.savez(
        tmp_path / "sorted.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )

    def classes(images):
        return np.round((np.asarray(images).mean(axis=(1, 2, 3)) * 255 - 40) / 80).astype(int)

    seen = {}
    real_dataset = autoencoder.image_dataset

    def image_dataset(x, **kwargs):
        seen.setdefault("val" if kwargs.get("shuffle") is False else "fit", x)
        return real_dataset(x, **kwargs)

    monkeypatch.setattr(autoencoder, "image_dataset", image_dataset)
    monkeypatch.setattr(
        autoencoder, "image_rows", lambda rows, *a, **k: seen.setdefault("plotted", rows[0])
    )
    run(
        AutoencoderRun(
            out_dir=str(tmp_path / "run"),
            dataset=str(tmp_path / "sorted.npz"),
            epochs=1,
            batch_size=16,
            validation_size=12,
            verbose=0,
            export=False,
        )
    )
    assert np.bincount(classes(seen["val"][..., None] / 255)).tolist() == [6, 4, 2]
    assert len(seen["fit"]) == 48
    # The ten plotted test images: every class in its share, not the first ten (all 0s).
    assert sorted(np.bincount(classes(seen["plotted"])).tolist()) == [3, 3, 4]


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
