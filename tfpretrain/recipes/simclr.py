"""Pre-train a SimCLR encoder on MNIST (or Fashion-MNIST), probe it, export it and draw it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import numpy as np

from tfpretrain.data import image_shape
from tfpretrain.data.augment import AugmentConfig, example_views, two_view_dataset
from tfpretrain.distribute import get_strategy, is_chief, set_precision, xla_for_training
from tfpretrain.evaluate import KNNAccuracy, encode, linear_probe
from tfpretrain.export.encoder import export_encoder
from tfpretrain.models.simclr import SimCLRConfig, build_simclr
from tfpretrain.plots import embedding_scatter, image_rows, loss_curves
from tfpretrain.recipes.image_data import fixed_subset, load_run_images
from tfpretrain.settings.simclr import SimCLRRun
from tfpretrain.training import (
    EpochTimer,
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    write_json,
)
from tfpretrain.training.lars import LARS


def make_optimizer(cfg: SimCLRRun, model: keras.Model, steps_per_epoch: int):
    """LARS (SimCLR's choice) or AdamW, with linear warm-up and cosine decay."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(int(round(cfg.warmup_fraction * total)), total - 1)
    base = 0.3 if cfg.optimizer == "lars" else 1e-3
    peak = cfg.learning_rate or base * cfg.batch_size / 256
    schedule = WarmupSchedule(peak, total_steps=total, warmup_steps=warmup, decay="cosine")
    if cfg.optimizer == "lars":
        return LARS(
            schedule,
            momentum=0.9,
            weight_decay=1e-6 if cfg.weight_decay is None else cfg.weight_decay,
        )
    return adamw(
        model, schedule, weight_decay=1e-4 if cfg.weight_decay is None else cfg.weight_decay
    )


def knn_monitor(cfg: SimCLRRun, train: tuple, test: tuple) -> KNNAccuracy:
    """The k-NN monitor on `cfg.knn_bank` training and `cfg.knn_queries` test images.

    Both are drawn class by class with seed 0 (`fixed_subset`), never the first rows: every
    class is scored, and every run scores the same images.
    """
    return KNNAccuracy(
        fixed_subset(*train, cfg.knn_bank),
        fixed_subset(*test, cfg.knn_queries),
        every=cfg.knn_every,
    )


@run_directory
def run(cfg: SimCLRRun) -> dict:
    """Pre-trains, probes, exports and plots; returns the metrics written to
    `out_dir/metrics.json`."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_precision(cfg.precision)
    strategy = get_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)

    data = load_run_images(cfg, labels_for="the linear probe and the k-NN monitor")
    (x_train, y_train), (x_test, y_test) = data.limit(
        train=cfg.limit_train, seed=cfg.seed
    ).as_tuples()
    if cfg.batch_size > len(x_train):
        raise ValueError(
            f"--batch-size {cfg.batch_size} exceeds the {len(x_train)} training "
            "images; lower it or raise --limit-train."
        )
    augment_config = AugmentConfig()
    steps_per_epoch = len(x_train) // cfg.batch_size
    views = two_view_dataset(
        x_train, batch_size=cfg.batch_size, config=augment_config, seed=cfg.seed, repeat=True
    )

    model_config = SimCLRConfig.preset(
        cfg.preset, image_shape=image_shape(x_train), temperature=cfg.temperature
    )
    with strategy.scope():
        model = build_simclr(model_config)
        model.compile(
            optimizer=make_optimizer(cfg, model, steps_per_epoch),
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=min(cfg.steps_per_execution, steps_per_epoch),
        )

    timer = EpochTimer()
    callbacks: list[keras.callbacks.Callback] = [timer]
    if cfg.knn_every:
        callbacks.append(knn_monitor(cfg, (x_train, y_train), (x_test, y_test)))
    history = fit(
        model,
        views,
        epochs=cfg.epochs,
        steps_per_epoch=steps_per_epoch,
        out_dir=out,
        tensorboard=cfg.tensorboard,
        callbacks=callbacks,
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
    )
    train_seconds = history.training_seconds
    if not is_chief(strategy):  # the other workers of a multi-worker job hold the same; one writes
        return history.history

    probe = linear_probe(
        model.encoder, (x_train, y_train), (x_test, y_test), epochs=cfg.probe_epochs, seed=cfg.seed
    )

    model.save(out / "model.keras")
    model.encoder.save(out / "encoder.keras")
    if cfg.export:
        export_encoder(model.encoder, out / "saved_model")
    record_config(
        out, model=dataclasses.asdict(model_config), augment=dataclasses.asdict(augment_config)
    )

    originals, view_a, view_b = example_views(
        fixed_subset(x_test, y_test, 10)[0], n=10, seed=cfg.seed, config=augment_config
    )
    image_rows(
        [originals, view_a, view_b], out / "views.png", titles=["images", "view A", "view B"]
    )
    x_plot, y_plot = fixed_subset(x_test, y_test, 3000)
    n_plot = len(x_plot)
    embedding_scatter(
        encode(model.encoder, x_plot),
        y_plot,
        out / "embeddings.png",
        title=f"SimCLR features of {n_plot} test images (PCA)",
    )
    loss_curves(history.history, out / "loss.png", keys=("loss",))

    seconds = timer.seconds
    metrics = {
        "linear_probe_accuracy": probe["accuracy"],
        "linear_probe": probe,
        "final_loss": history.history["loss"][-1],
        "final_contrastive_accuracy": history.history["contrastive_accuracy"][-1],
        "epochs": len(history.history["loss"]),
        "steps_per_epoch": steps_per_epoch,
        "replicas": strategy.num_replicas_in_sync,
        "train_seconds": train_seconds,
        "seconds_per_epoch": float(np.mean(seconds)),
        "images_per_second": float(
            steps_per_epoch * cfg.batch_size / np.mean(seconds[1:] if len(seconds) > 1 else seconds)
        ),
    }
    if "knn_accuracy" in history.history:
        metrics["knn_accuracy"] = [v for v in history.history["knn_accuracy"] if not math.isnan(v)]
    write_json(out / "metrics.json", metrics)
    return metrics
