import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfpretrain.data import load_image_dataset
from tfpretrain.evaluate import KNNAccuracy
from tfpretrain.models import build_autoencoder
from tfpretrain.recipes.evaluate import EvaluateRun
from tfpretrain.recipes.evaluate import run as run_evaluate
from tfpretrain.recipes.image_data import fixed_subset
from tfpretrain.recipes.simclr import SimCLRRun, knn_monitor

CLI = [sys.executable, "-m", "tfpretrain.cli.main"]

RELOAD = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], loaded.signatures["encode"](images=tf.constant(x))["features"].numpy())
print(sorted(m for m in sys.modules if m.startswith("tfpretrain")))
"""


def test_help_lists_every_flag():
    for command, flags in {
        "simclr": (
            "--dataset",
            "--epochs",
            "--batch-size",
            "--temperature",
            "--optimizer",
            "--out",
            "--strategy",
            "--precision",
            "--knn-every",
        ),
        "evaluate": (
            "--encoder",
            "--labels",
            "--per-class",
            "--out",
            "--no-scratch",
            "--random-head",
            "--strategy",
            "--precision",
        ),
    }.items():
        out = subprocess.run(
            [*CLI, command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        for flag in flags:
            assert flag in out, (command, flag)


@pytest.mark.slow
def test_simclr_then_evaluate_with_an_autoencoder_run(tmp_path, data_dir):
    run_dir = tmp_path / "simclr"
    env = dict(os.environ, TFPRETRAIN_DATA_DIR=str(data_dir))
    subprocess.run(
        [
            *CLI,
            "simclr",
            "--preset",
            "tiny",
            "--epochs",
            "2",
            "--limit-train",
            "1024",
            "--batch-size",
            "128",
            "--optimizer",
            "adamw",
            "--probe-epochs",
            "2",
            "--steps-per-execution",
            "4",
            "--out",
            str(run_dir),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (
        metrics["epochs"] == 2
        and metrics["steps_per_epoch"] == 8
        and len(metrics["knn_accuracy"]) == 2
    )
    assert (
        metrics["linear_probe_accuracy"] == metrics["linear_probe"]["accuracy"]
        and metrics["images_per_second"] > 0
    )
    # Chance is 0.11 (the commonest test digit); these settings gave k-NN 0.35 and a (2-epoch,
    # underfitted) probe 0.22 on the frozen features: features without class information fail.
    assert metrics["knn_accuracy"][-1] > 0.25 and metrics["linear_probe_accuracy"] > 0.16
    assert set(metrics["linear_probe"]) == {"accuracy", "precision", "recall", "f1"}
    for name in (
        "views.png",
        "embeddings.png",
        "loss.png",
        "model.keras",
        "encoder.keras",
        "config.json",
    ):
        assert (run_dir / name).read_bytes(), name
    assert (run_dir / "views.png").read_bytes()[:4] == b"\x89PNG"

    # The SavedModel reloads without tfpretrain and computes the saved encoder's features.
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    saved = run_dir / "saved_model" / "1"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RELOAD,
            str(saved),
            str(tmp_path / "x.npy"),
            str(tmp_path / "f.npy"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    encoder = keras.models.load_model(run_dir / "encoder.keras")
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), encoder(x, training=False), atol=1e-5)
    # The last k-NN accuracy logged is the saved encoder's, on the run's bank (the 1,024 images
    # --limit-train drew with seed 0) and queries (2,000 test images drawn class by class).
    (x_train, y_train), (x_test, y_test) = load_image_dataset("mnist").limit(1024).as_tuples()
    knn = KNNAccuracy((x_train, y_train), fixed_subset(x_test, y_test, 2000))
    assert knn.accuracy(encoder) == pytest.approx(metrics["knn_accuracy"][-1], abs=1e-3)

    # `evaluate` takes the SimCLR run and an autoencoder run side by side.
    ae_dir = tmp_path / "autoencoder"
    ae_dir.mkdir()
    build_autoencoder().save(ae_dir / "model.keras")
    out = tmp_path / "eval"
    result = subprocess.run(
        [
            *CLI,
            "evaluate",
            "--encoder",
            str(run_dir),
            "--encoder",
            str(ae_dir),
            "--labels",
            "50",
            "--steps",
            "10",
            "--limit-train",
            "600",
            "--limit-test",
            "300",
            "--random-head",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((out / "metrics.json").read_text())
    results = written["results"]
    assert (
        set(results) == {"scratch", "simclr", "autoencoder"}
        and written["run"]["random_head"] is True
    )
    for row in results.values():
        assert set(row) == {"50", "linear_probe"} and row["50"]["labels"] == 50
        assert row["50"]["steps"] == 10
        # Chance is about 0.12 on these 300 digits; the probes gave 0.28 to 0.60.
        assert row["linear_probe"]["accuracy"] > 0.2
    # Ten steps from a random head lift even the untrained autoencoder's encoder well above
    # chance (0.39 measured); the scratch and SimCLR encoders still predict one class after them.
    assert results["autoencoder"]["50"]["accuracy"] > 0.25
    assert "| simclr |" in (out / "table.md").read_text()


def test_knn_monitor_draws_every_class_the_same_for_every_seed(tmp_path):
    # Sorted class by class, as a class-folder tree is read: the first rows are all 0s.
    def images(counts):
        y = np.repeat(np.arange(len(counts)), counts)
        return np.broadcast_to(y[:, None, None, None], (len(y), 4, 4, 1)).astype(np.uint8), y

    train, test = images([600, 300, 100]), images([300, 150, 50])

    def monitor(seed):
        cfg = SimCLRRun(out_dir=str(tmp_path), knn_bank=100, knn_queries=50, seed=seed)
        return knn_monitor(cfg, train, test)

    knn = monitor(1)
    assert np.bincount(knn.bank[1]).tolist() == [60, 30, 10]
    assert np.bincount(knn.queries[1]).tolist() == [30, 15, 5]
    # Each image keeps its label (the pixels are the label here).
    assert (knn.bank[0][:, 0, 0, 0] == knn.bank[1]).all()
    other = monitor(2)
    assert (other.bank[0] == knn.bank[0]).all() and (other.queries[0] == knn.queries[0]).all()


def test_run_settings_are_checked():
    with pytest.raises(ValueError, match="temperature"):
        SimCLRRun(out_dir="x", temperature=0.0)
    with pytest.raises(ValueError, match="--batch-size must be >= 2"):
        SimCLRRun(out_dir="x", batch_size=1)
    with pytest.raises(ValueError, match="optimizer"):
        SimCLRRun(out_dir="x", optimizer="sgd")


def test_evaluate_rejects_too_many_labels(tmp_path, data_dir):
    (tmp_path / "ae").mkdir()
    build_autoencoder().save(tmp_path / "ae" / "model.keras")
    with pytest.raises(ValueError, match="larger than the training set"):
        run_evaluate(
            EvaluateRun(
                encoders=[str(tmp_path / "ae")],
                out_dir=str(tmp_path / "o"),
                labels=[2000],
                limit_train=1000,
            )
        )


def test_cli_reports_bad_input(tmp_path):
    bad = subprocess.run(
        [*CLI, "simclr", "--temperature", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "temperature" in bad.stderr
    missing = subprocess.run(
        [*CLI, "evaluate", "--encoder", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "No encoder found" in missing.stderr


def _refused_before_the_recipe(command, recipe, argv, monkeypatch, capsys) -> str:
    """Runs `tfpretrain command argv` with the recipe replaced by a failure: a settings error
    must stop the command before the recipe loads any data. Returns stderr."""
    from tfpretrain.cli.main import main

    monkeypatch.setattr(recipe, "run", lambda cfg: pytest.fail(f"the recipe ran with {cfg}"))
    assert main([command, *argv]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "--epochs must be > 0; got 0"),
        (["--batch-size", "1"], "--batch-size must be >= 2; got 1"),
        (["--probe-epochs", "-1"], "--probe-epochs must be > 0"),
        (["--warmup-fraction", "1.5"], "--warmup-fraction must be in [0, 1]; got 1.5"),
        (["--warmup-epochs", "30"], "--warmup-epochs 30 is longer than the run (--epochs 20)"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be > 0"),
    ],
)
def test_simclr_refuses_bad_settings_before_loading_data(
    argv, message, tmp_path, monkeypatch, capsys
):
    from tfpretrain.recipes import simclr

    err = _refused_before_the_recipe(
        "simclr", simclr, [*argv, "--out", str(tmp_path)], monkeypatch, capsys
    )
    assert message in err


def test_simclr_settings_refuse_unknown_choices():
    with pytest.raises(ValueError, match="--optimizer must be one of lars, adamw; got 'sgd'"):
        SimCLRRun(out_dir="x", optimizer="sgd")
    with pytest.raises(ValueError, match="--preset must be one of"):
        SimCLRRun(out_dir="x", preset="huge")


def test_simclr_presets_are_the_models():
    from tfpretrain.models.simclr import SimCLRConfig
    from tfpretrain.settings.simclr import SIMCLR_PRESETS

    assert SIMCLR_PRESETS == tuple(SimCLRConfig.PRESETS)


def test_old_warmup_epochs_flag_becomes_the_fraction(tmp_path, monkeypatch, capsys):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import simclr

    seen = []
    monkeypatch.setattr(simclr, "run", lambda cfg: seen.append(cfg) or {})
    assert (
        main(
            [
                "simclr",
                "--warmup-epochs",
                "2",
                "--epochs",
                "8",
                "--no-export",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert seen[0].warmup_fraction == 0.25 and seen[0].warmup_epochs is None
    assert not seen[0].export
    out, err = capsys.readouterr()
    assert "--warmup-epochs is deprecated; use --warmup-fraction 0.25" in err
    assert "saved_model" not in out  # --no-export: nothing is said to be exported


def test_default_warmup_is_one_epoch_as_before():
    """The default fraction warms up for exactly the steps of the old default (1 epoch of 20)."""
    from tfpretrain.recipes.simclr import make_optimizer

    for steps_per_epoch in (1, 7, 234, 235, 1000, 1171):  # 234: MNIST at batch 256
        schedule = make_optimizer(SimCLRRun(out_dir="x"), None, steps_per_epoch)._learning_rate
        assert schedule.warmup_steps == steps_per_epoch, steps_per_epoch


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--labels", "0"], "--labels must be > 0; got 0"),
        (["--epochs", "0"], "--epochs must be > 0"),
        (["--steps", "-5"], "--steps must be > 0"),
        (["--limit-test", "0"], "--limit-test must be > 0"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
    ],
)
def test_evaluate_refuses_bad_settings_before_loading_data(
    argv, message, tmp_path, monkeypatch, capsys
):
    from tfpretrain.recipes import evaluate

    err = _refused_before_the_recipe(
        "evaluate",
        evaluate,
        ["--encoder", str(tmp_path / "nowhere"), *argv, "--out", str(tmp_path)],
        monkeypatch,
        capsys,
    )
    assert message in err and "No encoder found" not in err


def test_evaluate_settings_refuse_unknown_choices_and_no_encoder():
    with pytest.raises(ValueError, match="--dataset must be one of mnist, fashion_mnist"):
        EvaluateRun(encoders=["a"], out_dir="x", dataset="cifar10")
    with pytest.raises(ValueError, match="at least one encoder"):
        EvaluateRun(encoders=[], out_dir="x")


def test_evaluate_flags_reach_the_recipe(tmp_path, monkeypatch):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import evaluate

    seen = []
    rows = {"simclr": {"10": {"accuracy": 0.5}}}
    monkeypatch.setattr(evaluate, "run", lambda cfg: seen.append(cfg) or rows)
    assert (
        main(
            [
                "evaluate",
                "--encoder",
                "a",
                "--encoder",
                "b",
                "c",
                "--labels",
                "10",
                "all",
                "--no-scratch",
                "--random-head",
                "--xla",
                "off",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    cfg = seen[0]
    assert cfg.encoders == ["a", "b", "c"] and cfg.labels == [10, None]
    assert not cfg.scratch and cfg.probe and cfg.random_head and cfg.xla == "off"
