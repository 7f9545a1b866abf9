"""Pre-train an autoencoder on MNIST (or Fashion-MNIST), evaluate it, export it and draw it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.data import image_dataset, image_shape, scale_images
from tfpretrain.data.splits import stratified_split
from tfpretrain.distribute import get_strategy, is_chief, set_precision, xla_for_training
from tfpretrain.export import export_autoencoder
from tfpretrain.models.autoencoder import AutoencoderConfig, build_autoencoder
from tfpretrain.plots import image_rows, loss_curves
from tfpretrain.recipes.image_data import fixed_subset, load_run_images
from tfpretrain.settings.autoencoder import AutoencoderRun
from tfpretrain.training import fit, record_config, run_directory, write_json


def compile_autoencoder(
    model: keras.Model,
    learning_rate: float = 1e-3,
    steps_per_execution: int = 32,
    gradient_accumulation_steps: int | None = None,
    xla: str = "auto",
):
    """Adam + binary cross-entropy (plus MSE as a metric), XLA-compiled.

    `gradient_accumulation_steps=k` applies the mean gradient of k consecutive batches at once
    (an effective batch k times larger); the optimizer's step counter counts applied updates.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate, gradient_accumulation_steps=gradient_accumulation_steps
        ),
        loss="binary_crossentropy",
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
        jit_compile=xla_for_training(xla),
        steps_per_execution=steps_per_execution,
    )
    return model


def validation_split(
    x: np.ndarray, y: np.ndarray | None, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`(fit, validation)` images: `size` of `x` held out class by class, seeded.

    Never the last rows: a class-folder tree is read class after class, so its tail is its
    last class. Unlabelled images are held out by a plain seeded draw; `size` 0 holds out
    none (validation None).
    """
    if size >= len(x):
        raise ValueError(
            f"--validation-size must be below the {len(x)} training images; got {size}."
        )
    if not size:
        return x, None
    fit_rows, val_rows = stratified_split(y, len(x), size, seed)
    return x[fit_rows], x[val_rows]


@run_directory
def run(cfg: AutoencoderRun) -> dict:
    """Trains, evaluates on the test set, exports and plots; returns the metrics written to disk."""
    out = Path(cfg.out_dir)
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    set_precision(cfg.precision)
    strategy = get_strategy(cfg.strategy)
    chief = is_chief(strategy)

    data = load_run_images(cfg).limit(train=cfg.limit_train, seed=cfg.seed)
    x_train, x_test = data.x_train, data.x_test
    x_fit, x_val = validation_split(x_train, data.y_train, cfg.validation_size, cfg.seed)

    def train():  # a function, so that a resumed run can rebuild the same shuffled stream
        return image_dataset(x_fit, batch_size=cfg.batch_size, targets="images", seed=cfg.seed)

    val = None
    if x_val is not None:
        val = image_dataset(x_val, batch_size=1024, targets="images", shuffle=False)
    test = image_dataset(x_test, batch_size=1024, targets="images", shuffle=False)

    # The dense variant's input and output layers follow the images' size (784 for MNIST).
    model_config = AutoencoderConfig(image_shape=image_shape(x_train), conv=cfg.conv)
    with strategy.scope():
        model = compile_autoencoder(
            build_autoencoder(model_config),
            cfg.learning_rate,
            cfg.steps_per_execution,
            cfg.gradient_accumulation_steps,
            cfg.xla,
        )
    history = fit(
        model,
        train,
        epochs=cfg.epochs,
        validation_data=val,
        out_dir=out,
        early_stopping_patience=cfg.early_stopping_patience,
        tensorboard=cfg.tensorboard,
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
    )
    train_seconds = history.training_seconds
    test_loss, test_mse = model.evaluate(test, verbose=0)
    sample = scale_images(fixed_subset(x_test, data.y_test, 10)[0]).numpy()
    reconstructions = model.predict(sample, verbose=0)
    if not chief:  # the other workers of a multi-worker job computed the same; only one writes
        return {"test_loss": float(test_loss), "test_mse": float(test_mse)}

    model.save(out / "model.keras")
    if cfg.export:
        export_autoencoder(model, out / "saved_model")
    record_config(out, model=dataclasses.asdict(model_config))

    image_rows(
        [sample, reconstructions],
        out / "reconstructions.png",
        titles=["test images", "reconstructions"],
    )
    loss_curves(history.history, out / "loss.png")

    seconds = history.epoch_seconds  # every epoch's, those before a resume included

    metrics = {
        "test_loss": float(test_loss),
        "test_mse": float(test_mse),
        "epochs": len(history.history["loss"]),
        "seconds_per_epoch": float(np.mean(seconds)),
        "seconds_per_epoch_after_first": float(np.mean(seconds[1:] or seconds)),
        "train_seconds": train_seconds,
        "final_loss": float(history.history["loss"][-1]),
    }
    if "val_loss" in history.history:
        metrics["final_val_loss"] = float(history.history["val_loss"][-1])
    write_json(out / "metrics.json", metrics)
    return metrics
