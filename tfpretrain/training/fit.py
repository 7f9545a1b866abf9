"""The one `model.fit` wrapper every CLI command uses: checkpoints, resume, early stopping, logs."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from tfpretrain.training.callbacks import NanGuard, StepClock, TrainingCheckpoint
from tfpretrain.training.checkpoint import CheckpointError


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


def _is_chief(model: keras.Model) -> bool:
    from tfpretrain.distribute import is_chief

    return is_chief(model.distribute_strategy)


def _steps_per_execution_dividing(requested: int, steps_per_epoch: int) -> int:
    """The largest value <= `requested` that divides `steps_per_epoch` (so epochs end on a call)."""
    for k in range(max(1, min(requested, steps_per_epoch)), 0, -1):
        if steps_per_epoch % k == 0:
            return k
    return 1


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
    checkpoint_every: int | None = 1000,
    keep_checkpoints: int = 2,
) -> keras.callbacks.History:
    """Runs `model.fit` with the callbacks every tfpretrain run directory expects.

    With `out_dir` it keeps crash-safe training checkpoints in `out_dir/checkpoints/state/`
    (model and optimizer variables, random-seed states, step and data position; written
    atomically every `checkpoint_every` steps and at every epoch end, see
    `tfpretrain.training.checkpoint`), `out_dir/checkpoints/best.weights.h5` (best by `val_loss`
    when there is validation data, else `loss`), and `out_dir/logs/` for TensorBoard when
    `tensorboard` is true. When `resume` is true and a checkpoint exists, training continues at
    its step, in the middle of an epoch if need be, on the same batches an uninterrupted run
    would have seen (the training stream is `train_data.repeat()` advanced past the batches
    already used, so an explicitly seeded shuffle gives the same order). Early stopping restores
    the best weights. A NaN or infinite loss raises `NonFiniteLossError` naming the step.

    Under a multi-replica strategy the model is adapted first (`adapt_to_strategy`): its
    `jit_compile=True` becomes per-replica XLA steps, which Keras cannot do itself.

    Args:
        model: a compiled Keras model.
        train_data: what `model.fit` accepts as `x` (usually a `tf.data.Dataset`), or a
            function without arguments returning a `tf.data.Dataset`. Checkpointing needs a
            `tf.data.Dataset` with a known number of batches, or `steps_per_epoch` with a
            repeated one. Pass the function (with seeded shuffles inside) for exact resumes: a
            run resumed mid-epoch needs a second data set object for the later epochs, and a
            reshuffling data set's order depends on how many times that object was iterated.
        epochs: number of epochs, > 0.
        validation_data: optional validation set.
        out_dir: the run directory; None keeps nothing on disk.
        steps_per_epoch: for repeated data sets.
        early_stopping_patience: stop after this many epochs without improvement.
        tensorboard: write TensorBoard logs.
        resume: continue from the newest checkpoint in `out_dir/checkpoints/state/` if any.
        callbacks: extra callbacks.
        verbose: `model.fit`'s verbosity (the progress bar by default).
        checkpoint_every: save the training state every this many steps (None: epoch ends only).
        keep_checkpoints: how many training checkpoints to keep.

    Returns:
        The `History` of the run, its values Python floats; after a resume it holds the epochs
        of the earlier runs too, and `history.training_seconds` adds their wall time (up to
        their last checkpoint) to this run's.

    Raises:
        CheckpointError: the checkpoint to resume from is corrupt or from a different model
            (nothing is overwritten).
        NonFiniteLossError: the loss became NaN or infinite.
    """
    from tfpretrain.training.checkpoint import latest_state, remove_temporary_files, restore_state
    from tfpretrain.training.xla import adapt_to_strategy

    if not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}.")
    adapt_to_strategy(model)
    monitor = "val_loss" if validation_data is not None else "loss"

    import tensorflow as tf

    make_data = train_data if callable(train_data) and not isinstance(train_data, tf.data.Dataset) else None
    if make_data is not None:
        train_data = make_data()
    repeat = False
    state_dir = None
    if out_dir is not None:
        if isinstance(train_data, tf.data.Dataset):
            cardinality = int(train_data.cardinality())
            if steps_per_epoch is None and cardinality > 0:
                steps_per_epoch = cardinality
                repeat = True  # one stream across epochs: positions are steps
            if steps_per_epoch:
                state_dir = Path(out_dir) / "checkpoints" / "state"
        if state_dir is None:
            warnings.warn(
                "Training state is not checkpointed (needs a tf.data.Dataset with a known length, "
                "or steps_per_epoch with a repeated one); an interrupted run restarts.",
                stacklevel=2,
            )

    started = time.perf_counter()
    start_step, epoch_logs, earlier_seconds = 0, [], 0.0
    if state_dir is not None:
        if _is_chief(model):
            remove_temporary_files(state_dir)
        latest = latest_state(state_dir) if resume else None
        if latest is not None:
            header = restore_state(model, latest)
            if header["steps_per_epoch"] != steps_per_epoch:
                raise CheckpointError(
                    f"The checkpoint {latest} was written with {header['steps_per_epoch']} steps per "
                    f"epoch, this run has {steps_per_epoch}: the data or batch size changed. Use a "
                    "new output directory, or the settings it was written with."
                )
            start_step, epoch_logs = int(header["step"]), list(header.get("epoch_logs", []))
            earlier_seconds = float(header.get("training_seconds", 0.0))
            print(f"Resuming from {latest} at step {start_step} (epoch {start_step // steps_per_epoch + 1}).")
        # Epochs must end on a compiled call's boundary for the step count to stay exact.
        execution = int(getattr(model, "steps_per_execution", 1) or 1)
        fitted = _steps_per_execution_dividing(execution, steps_per_epoch)
        if fitted != execution:
            model.steps_per_execution = fitted
            model.train_function = None

    first_epoch, first_batch = divmod(start_step, steps_per_epoch) if steps_per_epoch else (0, 0)
    clock = StepClock(steps_per_epoch, first_epoch, first_batch)
    # The caller's callbacks run right after the NaN guard, so metrics they add to the epoch logs
    # (e.g. `knn_accuracy`) reach the checkpoint's history, best-model selection and early stopping.
    all_callbacks: list[keras.callbacks.Callback] = [NanGuard(clock=clock if state_dir else None), *callbacks]
    checkpointer = None
    if out_dir is not None:
        ckpt = Path(out_dir) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        if state_dir is not None:
            checkpointer = TrainingCheckpoint(
                state_dir, clock, every_steps=checkpoint_every, keep=keep_checkpoints,
                epoch_logs=epoch_logs, write=_is_chief(model), earlier_seconds=earlier_seconds,
            )
            all_callbacks.append(checkpointer)
        if _is_chief(model):  # one writer per multi-worker job
            all_callbacks.append(
                keras.callbacks.ModelCheckpoint(
                    str(ckpt / "best.weights.h5"), monitor=monitor, save_best_only=True,
                    save_weights_only=True,
                )
            )
        if tensorboard and _is_chief(model):
            all_callbacks.append(keras.callbacks.TensorBoard(str(Path(out_dir) / "logs")))
    if early_stopping_patience:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stopping_patience, restore_best_weights=True)
        )

    def run(data, initial_epoch, last_epoch, steps):
        return model.fit(
            data, epochs=last_epoch, initial_epoch=initial_epoch, validation_data=validation_data,
            steps_per_epoch=steps, callbacks=all_callbacks, verbose=verbose, shuffle=False,
        )

    def stream(position: int):
        """The training batches from `position` on (a fresh data set object when we can)."""
        data = train_data
        if make_data is not None and position:
            # A new object: a reshuffling data set's order depends on how often it was iterated.
            data = make_data()
        return (data.repeat() if repeat else data).skip(position)

    if state_dir is None:
        history = run(train_data, 0, epochs, steps_per_epoch)
    else:
        history = keras.callbacks.History()
        history.history = {}
        if first_batch and first_epoch < epochs:
            # Finish the interrupted epoch first: Keras cannot start an epoch at a later batch.
            run(stream(start_step), first_epoch, first_epoch + 1, steps_per_epoch - first_batch)
            first_epoch = epochs if model.stop_training else first_epoch + 1
        if first_epoch < epochs:
            run(stream(first_epoch * steps_per_epoch), first_epoch, epochs, steps_per_epoch)
        for logs in checkpointer.epoch_logs:
            for key, value in logs.items():
                history.history.setdefault(key, []).append(value)
        history.epoch = list(range(len(checkpointer.epoch_logs)))
        history.set_model(model)
    # Training time of the whole run, the processes before a resume included (up to their last
    # checkpoint; the checkpointer keeps that clock): what a recipe reports, not just this share.
    history.training_seconds = (checkpointer.training_seconds if checkpointer is not None
                                else time.perf_counter() - started)
    # Plain floats, so that callers can write the history as JSON or return it as it is.
    history.history = {key: [float(v) for v in values] for key, values in history.history.items()}
    for key, values in history.history.items():
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError(f"History '{key}' contains non-finite values: {values}.")
    return history
