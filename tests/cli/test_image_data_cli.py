"""The image commands on the user's own images: a 32x32x3 .npz, an RGB PNG class-folder tree,
unlabelled .npy; `--dataset` checked in the settings, data errors as clean CLI errors."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from tfpretrain.recipes.autoencoder import AutoencoderRun
from tfpretrain.recipes.autoencoder import run as run_autoencoder
from tfpretrain.recipes.evaluate import EvaluateRun
from tfpretrain.recipes.evaluate import run as run_evaluate
from tfpretrain.recipes.gan import GanRun
from tfpretrain.recipes.gan import run as run_gan
from tfpretrain.recipes.image_data import fixed_subset
from tfpretrain.recipes.simclr import SimCLRRun
from tfpretrain.recipes.simclr import run as run_simclr

CLI = [sys.executable, "-m", "tfpretrain.cli.main"]


def _images(n: int, size=(32, 32), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB images of two classes that differ in colour: class 0 reddish, class 1 bluish."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 80, (n, *size, 3))
    x[y == 0, ..., 0] += 150
    x[y == 1, ..., 2] += 150
    return x.astype(np.uint8), y


@pytest.fixture
def cifar_like(tmp_path):
    """A 32x32x3 .npz with string class names and no test split (the data layer holds one out)."""
    x, y = _images(60)
    path = tmp_path / "pets.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["cat", "dog"]))
    return path


@pytest.fixture
def folder(tmp_path):
    """photos/<class>/*.png, RGB, one image of another size (brought to 32x32 by --image-size)."""
    x, y = _images(40, seed=1)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        target = tmp_path / "photos" / ("ant" if label == 0 else "bee") / f"{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target)
    Image.fromarray(_images(1, size=(40, 48))[0][0]).save(tmp_path / "photos" / "ant" / "big.png")
    return tmp_path / "photos"


def test_plotted_images_are_drawn_from_every_class():
    # Test images as a split tree's test/ folder is read: 20 of class 0, then 20, then 10.
    y = np.repeat([0, 1, 2], [20, 20, 10])
    x = np.arange(50)  # x identifies its row
    shown, labels = fixed_subset(x, y, 10)
    assert np.bincount(labels).tolist() == [4, 4, 2] and (y[shown] == labels).all()
    again = fixed_subset(x, y, 10)  # a fixed seed: every run plots these ten
    assert (again[0] == shown).all()
    assert fixed_subset(x, y, 3000)[0] is x  # fewer images than asked: all of them
    assert len(set(fixed_subset(x, None, 10)[0].tolist())) == 10  # unlabelled: a plain draw


def test_autoencoder_dense_and_conv_on_rgb(tmp_path, cifar_like, folder):
    metrics = run_autoencoder(
        AutoencoderRun(
            out_dir=str(tmp_path / "dense"),
            dataset=str(cifar_like),
            epochs=1,
            batch_size=16,
            validation_size=6,
            verbose=0,
            export=False,
        )
    )
    assert metrics["epochs"] == 1 and 0 < metrics["test_loss"] < 1
    model = keras.models.load_model(tmp_path / "dense" / "model.keras")
    # The dense variant is sized to the input: 3072 -> 128 -> 64 -> 64 -> 3072.
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 32, 32, 3)
    assert model.count_params() == (3072 * 128 + 128) + (128 * 64 + 64) + (64 * 64 + 64) + (
        64 * 3072 + 3072
    )
    config = json.loads((tmp_path / "dense" / "config.json").read_text())
    assert config["model"]["image_shape"] == [32, 32, 3]

    run_autoencoder(
        AutoencoderRun(
            out_dir=str(tmp_path / "conv"),
            dataset=str(folder),
            image_size=(32, 32),
            conv=True,
            epochs=1,
            batch_size=16,
            validation_size=4,
            verbose=0,
            export=False,
        )
    )
    conv = keras.models.load_model(tmp_path / "conv" / "model.keras")
    assert conv.output_shape == (None, 32, 32, 3)


def test_simclr_and_evaluate_on_a_class_folder(tmp_path, folder):
    simclr = tmp_path / "simclr"
    metrics = run_simclr(
        SimCLRRun(
            out_dir=str(simclr),
            dataset=str(folder),
            image_size=(32, 32),
            fit="crop",
            preset="tiny",
            epochs=1,
            batch_size=8,
            knn_every=0,
            probe_epochs=2,
            verbose=0,
            export=False,
        )
    )
    assert 0 <= metrics["linear_probe_accuracy"] <= 1 and metrics["steps_per_epoch"] == 4
    assert keras.models.load_model(simclr / "encoder.keras").input_shape == (None, 32, 32, 3)

    rows = run_evaluate(
        EvaluateRun(
            encoders=[str(simclr)],
            out_dir=str(tmp_path / "eval"),
            dataset=str(folder),
            image_size=(32, 32),
            fit="crop",
            labels=[8],
            steps=2,
            scratch=False,
        )
    )
    assert set(rows) == {"simclr"} and 0 <= rows["simclr"]["8"]["accuracy"] <= 1
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["class_names"] == ["ant", "bee"]


def test_gan_scales_to_rgb_32(tmp_path, cifar_like):
    metrics = run_gan(
        GanRun(
            out_dir=str(tmp_path / "run"),
            dataset=str(cifar_like),
            preset="dcgan_tiny",
            epochs=1,
            steps_per_epoch=2,
            batch_size=8,
            fd_samples=16,
            classifier_epochs=1,
            probe_epochs=1,
            fine_tune_labels=(),
            verbose=0,
            export=False,
        )
    )
    assert not metrics["failed"] and metrics["steps"] == 2
    generator = keras.models.load_model(tmp_path / "run" / "generator.keras")
    assert generator.output_shape == (None, 32, 32, 3)
    # Seed map 8x8 (a quarter of 32), 16 latent dims: the Dense projection has 16 * 8 * 8 * 16.
    assert generator.get_layer("project").kernel.shape == (16, 8 * 8 * 16)


def test_mnist_gan_keeps_its_parameter_count():
    from tfpretrain.models.gan import GANConfig, build_discriminator, build_generator

    # Projection 100 -> 7x7x256 (no bias), BN, 5x5 256 -> 128 (no bias), BN, 5x5 128 -> 1.
    assert build_generator(GANConfig()).count_params() == (
        100 * 7 * 7 * 256 + 4 * 7 * 7 * 256 + 25 * 256 * 128 + 4 * 128 + 25 * 128 + 1
    )
    assert build_discriminator(GANConfig()).count_params() == (
        25 * 64 + 64 + 25 * 64 * 128 + 128 + 7 * 7 * 128 + 1
    )
    with pytest.raises(ValueError, match="divisible by 4.*--image-size"):
        GANConfig(image_shape=(30, 30, 3))


def test_unlabelled_npy_trains_the_autoencoder_but_not_evaluate(tmp_path):
    images = tmp_path / "images.npy"
    np.save(images, _images(30)[0])
    run_autoencoder(
        AutoencoderRun(
            out_dir=str(tmp_path / "ae"),
            dataset=str(images),
            epochs=1,
            batch_size=8,
            validation_size=3,
            verbose=0,
            export=False,
        )
    )
    with pytest.raises(ValueError, match=r"images.npy has no labels, and evaluate .*needs them"):
        run_evaluate(
            EvaluateRun(
                encoders=[str(tmp_path / "ae")], out_dir=str(tmp_path / "e"), dataset=str(images)
            )
        )


def test_dataset_form_is_checked_in_the_settings(tmp_path):
    with pytest.raises(ValueError, match="--dataset names an array file that does not exist"):
        AutoencoderRun(out_dir="x", dataset=str(tmp_path / "missing.npz"))
    with pytest.raises(
        ValueError, match="--dataset must be one of mnist, fashion_mnist, tfds:NAME"
    ):
        GanRun(out_dir="x", dataset="cifar10")
    with pytest.raises(ValueError, match="--dataset needs a name after tfds:"):
        SimCLRRun(out_dir="x", dataset="tfds:")
    with pytest.raises(ValueError, match="--image-size must be > 0"):
        SimCLRRun(out_dir="x", image_size=(0, 32))
    assert GanRun(out_dir="x", dataset="tfds:cifar10", image_size=[32, 32]).image_size == (32, 32)


def test_cli_flags_and_clean_data_errors(tmp_path, folder):
    # A folder of mixed sizes without --image-size: the data layer names both files; exit 2.
    result = subprocess.run(
        [
            *CLI,
            "autoencoder",
            "--dataset",
            str(folder),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "big.png" in result.stderr and "--image-size" in result.stderr
    result = subprocess.run(
        [
            *CLI,
            "gan",
            "--dataset",
            "tfds:no_such_set",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "g"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no_such_set" in result.stderr


@pytest.mark.slow
def test_cli_trains_the_autoencoder_on_a_folder(tmp_path, folder):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            *CLI,
            "autoencoder",
            "--dataset",
            str(folder),
            "--image-size",
            "32",
            "32",
            "--fit",
            "crop",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--validation-size",
            "4",
            "--no-export",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads((out / "config.json").read_text())["run"]
    assert run["image_size"] == [32, 32] and run["fit"] == "crop"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
