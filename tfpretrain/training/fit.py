"""The one `model.fit` wrapper every CLI command uses: checkpoints, resume, early stopping, logs."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from tfpretrain.training.callbacks import NanGuard


def write_json(path, values: dict) -> Path:
    """Writes `values` as pretty JSON atomically (floats from NumPy/TensorFlow converted)."""

    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, (np.floating, np.integer)):
            return v.item()
        if hasattr(v, "numpy"):
            return plain(v.numpy())
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(plain(values), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def fit(
    model: keras.Model,
    train_data,
    *,
    epochs: int,
    validation_data=None,
    out_dir=None,
    steps_per_epoch: int | None = None,
    early_stopping_patience: int | None = None,
    tensorboard: bool = False,
    resume: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose="auto",
) -> keras.callbacks.History:
    """Runs `model.fit` with the callbacks every tfpretrain run directory expects.

    With `out_dir` it keeps `out_dir/checkpoints/backup/` (resumes an interrupted run at the
    epoch it reached when `resume` is true), `out_dir/checkpoints/best.weights.h5` (best by
    `val_loss` when there is validation data, else `loss`), and `out_dir/logs/` for TensorBoard
    when `tensorboard` is true. Early stopping restores the best weights. A NaN or infinite loss
    raises `NonFiniteLossError` naming the step.

    Args:
        model: a compiled Keras model.
        train_data: what `model.fit` accepts as `x` (usually a `tf.data.Dataset`).
        epochs: number of epochs, > 0.
        validation_data: optional validation set.
        out_dir: the run directory; None keeps nothing on disk.
        steps_per_epoch: for repeated data sets.
        early_stopping_patience: stop after this many epochs without improvement.
        tensorboard: write TensorBoard logs.
        resume: continue from `out_dir/checkpoints/backup/` if an earlier run was interrupted.
        callbacks: extra callbacks.
        verbose: `model.fit`'s verbosity (the progress bar by default).

    Returns:
        The `History` of the run.
    """
    if not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}.")
    monitor = "val_loss" if validation_data is not None else "loss"
    all_callbacks: list[keras.callbacks.Callback] = [NanGuard()]
    if out_dir is not None:
        ckpt = Path(out_dir) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        if resume:
            all_callbacks.append(keras.callbacks.BackupAndRestore(str(ckpt / "backup")))
        all_callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(ckpt / "best.weights.h5"), monitor=monitor, save_best_only=True, save_weights_only=True
            )
        )
        if tensorboard:
            all_callbacks.append(keras.callbacks.TensorBoard(str(Path(out_dir) / "logs")))
    if early_stopping_patience:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stopping_patience, restore_best_weights=True)
        )
    all_callbacks.extend(callbacks)
    history = model.fit(
        train_data,
        epochs=epochs,
        validation_data=validation_data,
        steps_per_epoch=steps_per_epoch,
        callbacks=all_callbacks,
        verbose=verbose,
    )
    for key, values in history.history.items():
        if values and not all(math.isfinite(float(v)) for v in values):
            raise FloatingPointError(f"History '{key}' contains non-finite values: {values}.")
    return history
