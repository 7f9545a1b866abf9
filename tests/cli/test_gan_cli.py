import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfpretrain.data import load_images
from tfpretrain.frechet import FrechetScorer
from tfpretrain.recipes.gan import GANDivergenceError, GANMonitor, class_entropy


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tfpretrain.cli.main", "gan", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def test_help_lists_flags():
    out = _cli("--help").stdout
    for flag in (
        "--out",
        "--dataset",
        "--epochs",
        "--loss",
        "--fd-samples",
        "--strategy",
        "--precision",
        "--steps-per-epoch",
        "--d-loss-floor",
    ):
        assert flag in out


@pytest.mark.slow
def test_cli_trains_scores_probes_and_exports(tmp_path, data_dir):
    out = tmp_path / "run"
    env = dict(os.environ, TFPRETRAIN_DATA_DIR=str(data_dir))
    result = _cli(
        "--out",
        str(out),
        "--preset",
        "dcgan_tiny",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "8",
        "--batch-size",
        "32",
        "--limit-train",
        "1024",
        "--limit-test",
        "512",
        "--fd-samples",
        "300",
        "--classifier-epochs",
        "1",
        "--probe-epochs",
        "3",
        "--fine-tune-labels",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["frechet_distance"]) == 2
    assert metrics["steps"] == 16 and not metrics["failed"]
    for key in ("linear_probe_accuracy", "random_init_probe_accuracy"):
        # Chance is about 0.11 (the commonest digit); these settings gave 0.67 and 0.71. A probe
        # that learns nothing, or features that carry no class information, fail this.
        assert metrics[key] > 0.4, (key, metrics[key])
    for name in (
        "samples_1.png",
        "samples_2.png",
        "loss.png",
        "frechet_distance.png",
        "generator.keras",
        "feature_classifier.keras",
        "saved_model/1/saved_model.pb",
        "config.json",
    ):
        assert (out / name).exists(), name
    generator = keras.models.load_model(out / "generator.keras")
    assert generator.output_shape == (None, 28, 28, 1)
    # In the run's feature space, 300 real training digits lie far nearer the test digits than
    # the 16-step generator's samples (measured 0.019 against 1.16): a distance that does not
    # see the samples, or is not zero for matching sets, fails this.
    (x_train, _), (x_test, _) = load_images("mnist")
    scorer = FrechetScorer(keras.models.load_model(out / "feature_classifier.keras"), x_test[:512])
    real = scorer.score(x_train[:300])
    assert all(fd > 10 * real for fd in metrics["frechet_distance"]), real
    # The run directory is an encoder for `tfpretrain evaluate`: the discriminator's features.
    from tfpretrain.evaluate import load_encoder

    encoder, kind = load_encoder(out)
    assert kind == "gan" and encoder.output_shape == (None, 16 * 24)
    assert (
        json.loads((out / "gan_monitor.json").read_text())["frechet_distance"]
        == metrics["frechet_distance"]
    )


def test_divergence_is_reported_with_the_epoch(tmp_path, data_dir):
    env = dict(os.environ, TFPRETRAIN_DATA_DIR=str(data_dir))
    # A floor above any real discriminator loss makes the first epoch count as "D won".
    result = _cli(
        "--out",
        str(tmp_path),
        "--preset",
        "dcgan_tiny",
        "--epochs",
        "3",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "32",
        "--limit-train",
        "256",
        "--limit-test",
        "256",
        "--fd-samples",
        "64",
        "--classifier-epochs",
        "1",
        "--d-loss-floor",
        "100",
        env=env,
    )
    assert result.returncode == 2
    assert "diverged at epoch 1" in result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (
        metrics["failed"]
        and metrics["failed_at_epoch"] == 1
        and metrics["failure"] == "discriminator_wins"
    )


def _fake_features(call: int, n: int) -> np.ndarray:
    """N(0, I) draws moved by `call` in each direction: every call has its own distance."""
    return np.random.default_rng(call).normal(size=(n, 2)) + call


def _distance_to_standard_normal(features: np.ndarray) -> float:
    """Fréchet distance of the features' Gaussian to N(0, I), by the closed form in numpy:
    |m|^2 + tr(C) + tr(I) - 2 tr(C^1/2), with C^1/2 from C's eigenvalues."""
    mean, cov = features.mean(axis=0), np.cov(features, rowvar=False)
    eigenvalues = np.linalg.eigvalsh(cov)
    return float(mean @ mean + eigenvalues.sum() + len(mean) - 2 * np.sqrt(eigenvalues).sum())


class _FakeScorer:
    """Features and classes as a trained classifier would give for collapsed samples (every
    sample in class 3, unless `spread`), with features that differ at each call (each epoch)."""

    real_mean, real_cov = np.zeros(2), np.eye(2)

    def __init__(self, first_call: int = 1, spread: bool = False):
        self.calls, self.spread = first_call - 1, spread

    def features_and_classes(self, images):
        n = len(images)
        self.calls += 1
        classes = np.arange(n) % 10 if self.spread else np.full(n, 3)
        return _fake_features(self.calls, n), classes


class _Holder(keras.Model):
    def __init__(self):
        super().__init__()
        self.generator = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(784), keras.layers.Reshape((28, 28, 1))]
        )


def test_monitor_detects_collapse_and_nan_with_epoch():
    monitor = GANMonitor(_FakeScorer(), out_dir=None, num_samples=50, collapse_check_from_epoch=2)
    monitor.set_model(_Holder())
    monitor.on_epoch_end(0, {"d_loss": 1.2})  # epoch 1: collapse not checked yet
    expected = _distance_to_standard_normal(_fake_features(1, 50))
    assert monitor.frechet_distance == pytest.approx([expected])
    assert monitor.sample_class_entropy == [0.0]
    with pytest.raises(GANDivergenceError, match="Mode collapse at epoch 2") as info:
        monitor.on_epoch_end(1, {"d_loss": 1.2})
    assert info.value.epoch == 2 and info.value.kind == "mode_collapse"
    with pytest.raises(GANDivergenceError, match="epoch 4.*nan") as info:
        monitor.on_epoch_end(3, {"d_loss": float("nan")})
    assert info.value.kind == "non_finite"
    # Samples spread over the ten classes are no collapse, at any epoch.
    healthy = GANMonitor(
        _FakeScorer(spread=True), out_dir=None, num_samples=50, collapse_check_from_epoch=1
    )
    healthy.set_model(_Holder())
    for epoch in range(3):
        healthy.on_epoch_end(epoch, {"d_loss": 1.2})
    assert healthy.sample_class_entropy == pytest.approx([1.0, 1.0, 1.0])


def test_monitor_resumes_its_lists(tmp_path):
    monitor = GANMonitor(
        _FakeScorer(), out_dir=tmp_path, num_samples=20, collapse_check_from_epoch=99
    )
    monitor.set_model(_Holder())
    for epoch in range(3):
        monitor.on_epoch_end(epoch, {"d_loss": 1.0})
    assert (tmp_path / "samples_3.png").exists()
    first = [_distance_to_standard_normal(_fake_features(call, 20)) for call in (1, 2, 3)]
    assert monitor.frechet_distance == pytest.approx(first)  # one distance per epoch, in order
    # A run resumed at epoch 2 keeps epochs 1-2 and replaces epoch 3 with its new score.
    resumed = GANMonitor(
        _FakeScorer(first_call=10),
        out_dir=tmp_path,
        num_samples=20,
        collapse_check_from_epoch=99,
        resume=True,
    )
    resumed.set_model(_Holder())
    assert resumed.frechet_distance == monitor.frechet_distance
    resumed.on_epoch_end(2, {"d_loss": 1.0})
    again = _distance_to_standard_normal(_fake_features(10, 20))
    assert resumed.frechet_distance == pytest.approx([*first[:2], again])
    stored = json.loads((tmp_path / "gan_monitor.json").read_text())
    assert stored["frechet_distance"] == resumed.frechet_distance


def test_class_entropy():
    assert class_entropy(np.arange(10).repeat(5), 10) == pytest.approx(1.0)
    assert class_entropy(np.zeros(20), 10) == 0.0
    assert 0 < class_entropy(np.array([0, 0, 0, 1]), 10) < 0.3


def test_cli_rejects_bad_arguments(tmp_path):
    result = _cli("--out", str(tmp_path), "--fd-samples", "1")
    assert result.returncode == 2 and "--fd-samples must be >= 2" in result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs must be > 0; got 0"),
        (["--steps-per-epoch", "0"], "--steps-per-epoch must be > 0"),
        (["--fine-tune-labels", "100", "0"], "--fine-tune-labels must be > 0; got 0"),
        (["--d-learning-rate", "0"], "--d-learning-rate must be > 0; got 0.0"),
        (["--d-loss-floor", "-1"], "--d-loss-floor must be >= 0"),
        (["--collapse-check-from", "0"], "--collapse-check-from must be > 0"),
    ],
)
def test_bad_settings_are_refused_before_loading_data(argv, message, tmp_path, monkeypatch, capsys):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import gan

    monkeypatch.setattr(gan, "run", lambda cfg: pytest.fail(f"the recipe ran with {cfg}"))
    assert main(["gan", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_settings_refuse_unknown_choices_and_name_the_models():
    from tfpretrain.models import gan
    from tfpretrain.recipes.gan import GanRun
    from tfpretrain.settings.gan import GAN_LOSSES, GAN_PRESETS

    assert GAN_PRESETS == tuple(gan.GAN_PRESETS) and GAN_LOSSES == gan.GAN_LOSSES
    with pytest.raises(
        ValueError, match="--loss must be one of non_saturating, minimax; got 'wgan'"
    ):
        GanRun(out_dir="x", loss="wgan")
    with pytest.raises(ValueError, match="--preset must be one of"):
        GanRun(out_dir="x", preset="dcgan_huge")


def test_shared_training_flags_reach_the_recipe(tmp_path, monkeypatch):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import gan

    seen = []
    monkeypatch.setattr(gan, "run", lambda cfg: seen.append(cfg) or {})
    assert (
        main(
            [
                "gan",
                "--tensorboard",
                "--checkpoint-every",
                "50",
                "--no-export",
                "--xla",
                "off",
                "--fine-tune-labels",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    cfg = seen[0]
    assert cfg.tensorboard and cfg.checkpoint_every == 50 and not cfg.export and cfg.xla == "off"
    assert list(cfg.fine_tune_labels) == []
