"""Train a DCGAN on any labelled image set (MNIST by default), watch it, score its samples,
probe its discriminator.

Per epoch the `GANMonitor` callback draws a fixed grid of samples (`samples_EPOCH.png`), scores
`fd_samples` generated images by their Fréchet distance to the real test images in the feature
space of a classifier trained on the real training images (cached in the run directory), and
stops the run with `GANDivergenceError` naming the epoch when the game breaks down. After
training, linear probes on the frozen discriminator features (trained and untrained) measure
the representation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.data import image_dataset, image_shape
from tfpretrain.distribute import get_strategy, set_precision, xla_for_training
from tfpretrain.evaluate import fine_tune, linear_probe
from tfpretrain.export import export_gan
from tfpretrain.frechet import FEATURE_CLASSIFIER_FILE, FrechetScorer, train_feature_classifier
from tfpretrain.models.gan import (
    build_discriminator,
    build_gan,
    discriminator_features,
    gan_config,
    sample_noise,
)
from tfpretrain.plots import image_rows, loss_curves
from tfpretrain.recipes.image_data import load_run_images
from tfpretrain.settings.gan import GanRun
from tfpretrain.training import (
    EpochTimer,
    NonFiniteLossError,
    fit,
    record_config,
    run_directory,
    write_json,
)
from tfpretrain.training.checkpoint import latest_state


class GANDivergenceError(FloatingPointError):
    """The adversarial game broke down (discriminator loss at ~0, mode collapse, NaN).

    Attributes:
        epoch: the 1-based epoch at which it was detected.
        kind: `"discriminator_wins"`, `"mode_collapse"` or `"non_finite"`.
    """

    def __init__(self, message: str, epoch: int, kind: str):
        super().__init__(message)
        self.epoch = epoch
        self.kind = kind


def class_entropy(classes: np.ndarray, num_classes: int) -> float:
    """Entropy of the class histogram divided by log(num_classes): 1 = uniform, 0 = one class."""
    counts = np.bincount(np.asarray(classes, dtype=int), minlength=num_classes).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, -(p * np.log(p)).sum() / math.log(num_classes)))


class GANMonitor(keras.callbacks.Callback):
    """Per-epoch sample grids, Fréchet distance and break-down checks of a `GAN` in training.

    Args:
        scorer: a `FrechetScorer` holding the real images' statistics.
        out_dir: where `samples_EPOCH.png` go (None: no images).
        num_samples: generated images scored per epoch (the same noise every epoch).
        num_classes: classes of the scorer's classifier, for the collapse check.
        d_loss_floor: an epoch-mean discriminator loss below this means D rejects every
            generated image with certainty and G gets no useful gradient.
        collapse_entropy: normalised entropy of the classes the classifier assigns to generated
            images below which the generator is said to have collapsed onto few modes.
        collapse_check_from_epoch: first (1-based) epoch at which collapse is checked (early
            samples are blobs that any classifier puts in few classes).
        seed: noise seed of the scored samples and the grid.
        resume: continue the per-epoch lists stored in `out_dir/gan_monitor.json` (when a
            training checkpoint is resumed).
    """

    STATE_FILE = "gan_monitor.json"

    def __init__(
        self,
        scorer: FrechetScorer,
        out_dir=None,
        num_samples: int = 10_000,
        num_classes: int = 10,
        d_loss_floor: float = 1e-3,
        collapse_entropy: float = 0.5,
        collapse_check_from_epoch: int = 3,
        seed: int = 0,
        resume: bool = False,
    ):
        super().__init__()
        self.scorer = scorer
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.d_loss_floor = d_loss_floor
        self.collapse_entropy = collapse_entropy
        self.collapse_check_from_epoch = collapse_check_from_epoch
        self.seed = seed
        self.frechet_distance: list[float] = []
        self.sample_class_entropy: list[float] = []
        self._generate = None
        if resume and self.out_dir is not None and (self.out_dir / self.STATE_FILE).exists():
            state = json.loads((self.out_dir / self.STATE_FILE).read_text())
            self.frechet_distance = state["frechet_distance"]
            self.sample_class_entropy = state["sample_class_entropy"]

    def generate(self, count: int, seed: int, batch_size: int = 1000) -> np.ndarray:
        if self._generate is None:
            generator = self.model.generator
            latent_dim = int(generator.input_shape[-1])
            self._generate = tf.function(
                lambda s, n: tf.cast(
                    generator(sample_noise(s, n, latent_dim), training=False), tf.float32
                )
            )
        batches = []
        for i, start in enumerate(range(0, count, batch_size)):
            n = min(batch_size, count - start)
            batches.append(
                np.asarray(self._generate(tf.constant(seed * 100_003 + i), tf.constant(n)))
            )
        return np.concatenate(batches)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        number = epoch + 1
        d_loss = float(logs.get("d_loss", np.nan))
        if not math.isfinite(d_loss):
            raise GANDivergenceError(
                f"The GAN diverged at epoch {number}: the discriminator loss is {d_loss}. Lower "
                "the learning rates.",
                number,
                "non_finite",
            )
        if d_loss < self.d_loss_floor:
            raise GANDivergenceError(
                f"The GAN diverged at epoch {number}: the discriminator loss fell to {d_loss:.2e} "
                f"(below {self.d_loss_floor:g}), so the discriminator rejects every generated "
                "image and the generator gets no gradient. Lower the discriminator's learning "
                "rate, use the non-saturating generator loss, or add dropout to the "
                "discriminator.",
                number,
                "discriminator_wins",
            )
        if self.out_dir is not None:
            grid = self.generate(64, self.seed)
            image_rows(
                [grid[i : i + 8] for i in range(0, 64, 8)], self.out_dir / f"samples_{number}.png"
            )
        images = self.generate(self.num_samples, self.seed + 1)
        features, classes = self.scorer.features_and_classes(images)
        from tfpretrain.frechet import frechet_distance, gaussian_statistics

        fd = frechet_distance(
            *gaussian_statistics(features), self.scorer.real_mean, self.scorer.real_cov
        )
        entropy = class_entropy(classes, self.num_classes)
        # After a resume, epochs before this one come from the stored lists.
        self.frechet_distance = self.frechet_distance[:epoch] + [fd]
        self.sample_class_entropy = self.sample_class_entropy[:epoch] + [entropy]
        if self.out_dir is not None:
            write_json(
                self.out_dir / self.STATE_FILE,
                {
                    "frechet_distance": self.frechet_distance,
                    "sample_class_entropy": self.sample_class_entropy,
                },
            )
        logs["frechet_distance"] = fd
        logs["sample_class_entropy"] = entropy
        if number >= self.collapse_check_from_epoch and entropy < self.collapse_entropy:
            counts = np.bincount(classes, minlength=self.num_classes)
            raise GANDivergenceError(
                f"Mode collapse at epoch {number}: the generated images cover few classes "
                f"(normalised class entropy {entropy:.2f} < {self.collapse_entropy}; class counts "
                f"{counts.tolist()}). Lower the learning rates or train the discriminator more "
                "gently.",
                number,
                "mode_collapse",
            )


@run_directory
def run(cfg: GanRun) -> dict:
    """Trains, monitors, exports, probes and plots; returns the metrics written to disk."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_precision(cfg.precision)
    keras.utils.set_random_seed(cfg.seed)
    data = load_run_images(cfg, labels_for="the Fréchet distance's feature classifier")
    data = data.limit(train=cfg.limit_train, test=cfg.limit_test, seed=cfg.seed)
    (x_train, y_train), (x_test, y_test) = data.as_tuples()
    # The preset's widths at the images' size and channels.
    config = gan_config(cfg.preset, image_shape=image_shape(x_train))
    if cfg.batch_size > len(x_train):
        raise ValueError(
            f"--batch-size {cfg.batch_size} exceeds the {len(x_train)} training "
            "images; lower it or raise --limit-train."
        )
    num_classes = int(y_train.max()) + 1

    start = time.perf_counter()
    classifier = train_feature_classifier(
        x_train,
        y_train,
        path=out / FEATURE_CLASSIFIER_FILE,
        epochs=cfg.classifier_epochs,
        seed=cfg.seed,
    )
    scorer = FrechetScorer(classifier, x_test)
    _, test_classes = scorer.features_and_classes(x_test)
    classifier_accuracy = float(np.mean(test_classes == y_test))
    classifier_seconds = time.perf_counter() - start

    strategy = get_strategy(cfg.strategy)
    with strategy.scope():
        gan = build_gan(config, loss=cfg.loss, seed=cfg.seed)
        gan.compile(
            d_optimizer=keras.optimizers.Adam(cfg.d_learning_rate, beta_1=cfg.beta_1),
            g_optimizer=keras.optimizers.Adam(cfg.g_learning_rate, beta_1=cfg.beta_1),
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=cfg.steps_per_execution,
        )
    # The untrained twin for the random-init probe: the same seed gives the same initial weights.
    keras.utils.set_random_seed(cfg.seed)
    random_discriminator = build_discriminator(config)

    # With steps_per_epoch an "epoch" is that many steps over the repeated data (shorter epochs
    # give more frequent samples and Fréchet distances).
    train = image_dataset(
        x_train,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        drop_remainder=True,
        repeat=cfg.steps_per_epoch is not None,
    )
    monitor = GANMonitor(
        scorer,
        out,
        num_samples=cfg.fd_samples,
        num_classes=num_classes,
        d_loss_floor=cfg.d_loss_floor,
        collapse_entropy=cfg.collapse_entropy,
        collapse_check_from_epoch=cfg.collapse_check_from_epoch,
        seed=cfg.seed,
        resume=latest_state(out / "checkpoints" / "state") is not None,
    )
    timer = EpochTimer()
    try:
        history = fit(
            gan,
            train,
            epochs=cfg.epochs,
            steps_per_epoch=cfg.steps_per_epoch,
            out_dir=out,
            callbacks=[timer, monitor],
            verbose=cfg.verbose,
            tensorboard=cfg.tensorboard,
            checkpoint_every=cfg.checkpoint_every,
        )
    except (GANDivergenceError, NonFiniteLossError) as err:
        epoch = getattr(err, "epoch", len(timer.seconds) + 1)
        kind = getattr(err, "kind", "non_finite")
        write_json(
            out / "metrics.json",
            {
                "failed": True,
                "failure": kind,
                "failed_at_epoch": epoch,
                "message": str(err),
                "frechet_distance": monitor.frechet_distance,
                "sample_class_entropy": monitor.sample_class_entropy,
            },
        )
        if isinstance(err, GANDivergenceError):
            raise
        raise GANDivergenceError(str(err), epoch, kind) from err
    train_seconds = history.training_seconds

    gan.generator.save(out / "generator.keras")
    gan.discriminator.save(out / "discriminator.keras")
    if cfg.export:
        export_gan(gan.generator, gan.discriminator, out / "saved_model")
    record_config(out, model=dataclasses.asdict(config))
    loss_curves(history.history, out / "loss.png", keys=("d_loss", "g_loss"))
    loss_curves(
        {"frechet_distance": monitor.frechet_distance},
        out / "frechet_distance.png",
        keys=("frechet_distance",),
        ylabel="Fréchet distance",
    )

    # The evaluation protocol shared with SimCLR and the autoencoder (tfpretrain.evaluate).
    start = time.perf_counter()
    train_split, test_split = (x_train, y_train), (x_test, y_test)
    probe = linear_probe(
        discriminator_features(gan.discriminator),
        train_split,
        test_split,
        epochs=cfg.probe_epochs,
        num_classes=num_classes,
        seed=cfg.seed,
    )
    random_probe = linear_probe(
        discriminator_features(random_discriminator),
        train_split,
        test_split,
        epochs=cfg.probe_epochs,
        num_classes=num_classes,
        seed=cfg.seed,
    )
    few_labels = {
        str(k): fine_tune(
            discriminator_features(gan.discriminator),
            train_split,
            test_split,
            labels=k,
            num_classes=num_classes,
            seed=cfg.seed,
        )
        for k in cfg.fine_tune_labels
    }
    probe_seconds = time.perf_counter() - start

    metrics = {
        "linear_probe_accuracy": probe["accuracy"],
        "linear_probe": probe,
        "random_init_probe_accuracy": random_probe["accuracy"],
        "fine_tune": few_labels,
        "frechet_distance": monitor.frechet_distance,
        "sample_class_entropy": monitor.sample_class_entropy,
        "d_loss": history.history["d_loss"],
        "g_loss": history.history["g_loss"],
        "d_real": history.history["d_real"],
        "d_fake": history.history["d_fake"],
        "epochs": len(history.history["d_loss"]),
        "steps": int(gan.d_optimizer.iterations.numpy()),
        "loss": cfg.loss,
        "fd_samples": cfg.fd_samples,
        "feature_classifier_accuracy": classifier_accuracy,
        "feature_classifier_seconds": classifier_seconds,
        "generator_params": gan.generator.count_params(),
        "discriminator_params": gan.discriminator.count_params(),
        "seconds_per_epoch": float(np.mean(timer.seconds)),
        "pretrain_seconds": train_seconds,
        "probe_seconds": probe_seconds,
        "failed": False,
    }
    write_json(out / "metrics.json", metrics)
    return metrics
