"""The one `model.fit` wrapper every CLI command uses: checkpoints, resume, early stopping, logs."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.training.callbacks import EpochTimer, NanGuard, StepClock, TrainingCheckpoint
from tfpretrain.training.checkpoint import CheckpointError
from tfpretrain.training.execution import record_execution


def _is_chief(model: keras.Model) -> bool:
    from tfpretrain.distribute import is_chief

    return is_chief(model.distribute_strategy)


def _steps_per_execution_dividing(requested: int, steps_per_epoch: int) -> int:
    """The largest value <= `requested` that divides `steps_per_epoch` (so epochs end on a call)."""
    for k in range(max(1, min(requested, steps_per_epoch)), 0, -1):
        if steps_per_epoch % k == 0:
            return k
    return 1


@dataclasses.dataclass
class _Stream:
    """The training batches: the data set, the function that rebuilds it (if given), the epoch
    length and whether one repeated stream runs across epochs (positions are then steps)."""

    data: object
    make: Callable[[], tf.data.Dataset] | None
    steps_per_epoch: int | None
    repeat: bool = False

    def at(self, position: int):
        """The training batches from `position` on (a fresh data set object when we can)."""
        data = self.data
        if self.make is not None and position:
            # A new object: a reshuffling data set's order depends on how often it was iterated.
            data = self.make()
        return (data.repeat() if self.repeat else data).skip(position)


def _stream(train_data, steps_per_epoch: int | None, checkpointing: bool) -> _Stream:
    make = (
        train_data if callable(train_data) and not isinstance(train_data, tf.data.Dataset) else None
    )
    data = make() if make is not None else train_data
    stream = _Stream(data, make, steps_per_epoch)
    if checkpointing and isinstance(data, tf.data.Dataset) and steps_per_epoch is None:
        cardinality = int(data.cardinality())
        if cardinality > 0:
            stream.steps_per_epoch, stream.repeat = cardinality, True
    return stream


def _state_dir(out_dir, stream: _Stream) -> Path | None:
    """Where the training state is checkpointed, or None (with a warning) when it cannot be."""
    if out_dir is None:
        return None
    if isinstance(stream.data, tf.data.Dataset) and stream.steps_per_epoch:
        return Path(out_dir) / "checkpoints" / "state"
    warnings.warn(
        "Training state is not checkpointed (needs a tf.data.Dataset with a known length, "
        "or steps_per_epoch with a repeated one); an interrupted run restarts.",
        stacklevel=3,
    )
    return None


@dataclasses.dataclass
class _Progress:
    """What the runs before this one did: steps, per-epoch logs and wall times, training time."""

    step: int = 0
    epoch_logs: list[dict] = dataclasses.field(default_factory=list)
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    training_seconds: float = 0.0


def _restore(model: keras.Model, state_dir: Path, steps_per_epoch: int) -> _Progress:
    """Loads the newest checkpoint in `state_dir` into `model`, if there is one."""
    from tfpretrain.training.checkpoint import latest_state, remove_temporary_files, restore_state

    if _is_chief(model):
        remove_temporary_files(state_dir)
    latest = latest_state(state_dir)
    if latest is None:
        return _Progress()
    header = restore_state(model, latest)
    if header["steps_per_epoch"] != steps_per_epoch:
        raise CheckpointError(
            f"The checkpoint {latest} was written with {header['steps_per_epoch']} steps per "
            f"epoch, this run has {steps_per_epoch}: the data or batch size changed. Use a "
            "new output directory, or the settings it was written with."
        )
    progress = _Progress(
        int(header["step"]),
        list(header.get("epoch_logs", [])),
        list(header.get("epoch_seconds", [])),
        float(header.get("training_seconds", 0.0)),
    )
    print(
        f"Resuming from {latest} at step {progress.step} "
        f"(epoch {progress.step // steps_per_epoch + 1})."
    )
    return progress


def _end_epochs_on_calls(model: keras.Model, steps_per_epoch: int) -> None:
    """Epochs must end on a compiled call's boundary for the step count to stay exact."""
    execution = int(getattr(model, "steps_per_execution", 1) or 1)
    fitted = _steps_per_execution_dividing(execution, steps_per_epoch)
    if fitted != execution:
        model.steps_per_execution = fitted
        model.train_function = None


def _callbacks(
    model: keras.Model,
    out_dir,
    state_dir: Path | None,
    clock: StepClock,
    timer: EpochTimer,
    progress: _Progress,
    *,
    monitor: str,
    callbacks: Sequence[keras.callbacks.Callback],
    checkpoint_every: int | None,
    keep_checkpoints: int,
    early_stopping_patience: int | None,
    tensorboard: bool,
) -> tuple[list[keras.callbacks.Callback], TrainingCheckpoint | None]:
    """Every callback of a run, in order, and the training-state checkpointer (if any)."""
    chief = _is_chief(model)  # one writer per multi-worker job
    # The caller's callbacks run right after the NaN guard, so metrics they add to the epoch logs
    # (e.g. `knn_accuracy`) reach the checkpoint's history, best-model selection and early
    # stopping; the timer runs before the checkpointer, which records its times.
    chain: list[keras.callbacks.Callback] = [
        NanGuard(clock=clock if state_dir else None),
        *callbacks,
        timer,
    ]
    checkpointer = None
    if state_dir is not None:
        checkpointer = TrainingCheckpoint(
            state_dir,
            clock,
            every_steps=checkpoint_every,
            keep=keep_checkpoints,
            epoch_logs=progress.epoch_logs,
            write=chief,
            earlier_seconds=progress.training_seconds,
            epoch_timer=timer,
        )
        chain.append(checkpointer)
    if out_dir is not None and chief:
        ckpt = Path(out_dir) / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        chain.append(
            keras.callbacks.ModelCheckpoint(
                str(ckpt / "best.weights.h5"),
                monitor=monitor,
                save_best_only=True,
                save_weights_only=True,
            )
        )
        if tensorboard:
            chain.append(keras.callbacks.TensorBoard(str(Path(out_dir) / "logs")))
    if early_stopping_patience:
        chain.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=early_stopping_patience, restore_best_weights=True
            )
        )
    return chain, checkpointer


def _train_from(
    model: keras.Model, stream: _Stream, start_step: int, epochs: int, run: Callable
) -> None:
    """Trains from `start_step` to the end of epoch `epochs`, finishing an interrupted epoch
    first: Keras cannot start an epoch at a later batch."""
    first_epoch, first_batch = divmod(start_step, stream.steps_per_epoch)
    if first_batch and first_epoch < epochs:
        run(
            stream.at(start_step),
            first_epoch,
            first_epoch + 1,
            stream.steps_per_epoch - first_batch,
        )
        first_epoch = epochs if model.stop_training else first_epoch + 1
    if first_epoch < epochs:
        run(
            stream.at(first_epoch * stream.steps_per_epoch),
            first_epoch,
            epochs,
            stream.steps_per_epoch,
        )


def _history(model: keras.Model, epoch_logs: list[dict]) -> keras.callbacks.History:
    """A History of every epoch of the run, resumed ones included."""
    history = keras.callbacks.History()
    history.history = {}
    for logs in epoch_logs:
        for key, value in logs.items():
            history.history.setdefault(key, []).append(value)
    history.epoch = list(range(len(epoch_logs)))
    history.set_model(model)
    return history


def _as_floats(history: keras.callbacks.History) -> None:
    """Plain floats, so that callers can write the history as JSON or return it as it is."""
    history.history = {key: [float(v) for v in values] for key, values in history.history.items()}
    for key, values in history.history.items():
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError(f"History '{key}' contains non-finite values: {values}.")


def fit(
    model: keras.Model,
    train_data,
    *,
    epochs: int,
    validation_data=None,
    out_dir=None,
    steps_per_epoch: int | None = None,
    early_stopping_patience: int | None = None,
    monitor: str | None = None,
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
    `tfpretrain.training.checkpoint`), `out_dir/checkpoints/best.weights.h5` (best by
    `monitor`: by default `val_loss` with validation data, else `loss`), and `out_dir/logs/`
    for TensorBoard when `tensorboard` is true. When `resume` is true and a checkpoint exists,
    training continues at its step, in the middle of an epoch if need be, on the same batches
    an uninterrupted run would have seen (the training stream is `train_data.repeat()` advanced
    past the batches already used, so an explicitly seeded shuffle gives the same order). Early
    stopping restores the best weights. A NaN or infinite loss raises `NonFiniteLossError`
    naming the step.

    Under a multi-replica strategy the model is adapted first (`adapt_to_strategy`): its
    `jit_compile=True` becomes per-replica XLA steps, which Keras cannot do itself. Then, in a
    run directory (`out_dir`, or its parent for a recipe training in a subfolder), the chief
    records how the run executes in `config.json` (`execution`: XLA and why, the precision
    policy and why, the strategy, its devices and the machine's CPU and oneDNN state) and logs
    it in one line.

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
        monitor: the logged value that picks the best weights and stops early (an accuracy is
            maximised, a loss minimised); default `val_loss`, or `loss` without validation.
        tensorboard: write TensorBoard logs.
        resume: continue from the newest checkpoint in `out_dir/checkpoints/state/` if any.
        callbacks: extra callbacks.
        verbose: `model.fit`'s verbosity (the progress bar by default).
        checkpoint_every: save the training state every this many steps (None: epoch ends only).
        keep_checkpoints: how many training checkpoints to keep.

    Returns:
        The `History` of the run, its values Python floats; after a resume it holds the epochs
        of the earlier runs too (all of them when a run killed after its last checkpoint has
        nothing left to train), `history.epoch_seconds` the wall time of each epoch, and
        `history.training_seconds` adds the earlier runs' wall time (up to their last
        checkpoint) to this run's.

    Raises:
        CheckpointError: the checkpoint to resume from is corrupt or from a different model
            (nothing is overwritten).
        NonFiniteLossError: the loss became NaN or infinite.
    """
    from tfpretrain.training.xla import adapt_to_strategy

    if not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"`epochs` must be a positive integer; got {epochs!r}.")
    adapt_to_strategy(model)
    if out_dir is not None and _is_chief(model):
        record_execution(model, out_dir)
    monitor = monitor or ("val_loss" if validation_data is not None else "loss")
    stream = _stream(train_data, steps_per_epoch, checkpointing=out_dir is not None)
    state_dir = _state_dir(out_dir, stream)
    progress = _Progress()
    if state_dir is not None:
        if resume:
            progress = _restore(model, state_dir, stream.steps_per_epoch)
        _end_epochs_on_calls(model, stream.steps_per_epoch)

    started = time.perf_counter()
    clock = StepClock(
        stream.steps_per_epoch,
        *(divmod(progress.step, stream.steps_per_epoch) if state_dir else (0, 0)),
    )
    timer = EpochTimer(progress.epoch_seconds)
    chain, checkpointer = _callbacks(
        model,
        out_dir,
        state_dir,
        clock,
        timer,
        progress,
        monitor=monitor,
        callbacks=callbacks,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        early_stopping_patience=early_stopping_patience,
        tensorboard=tensorboard,
    )

    def run(data, initial_epoch, last_epoch, steps):
        return model.fit(
            data,
            epochs=last_epoch,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            steps_per_epoch=steps,
            callbacks=chain,
            verbose=verbose,
            shuffle=False,
        )

    if checkpointer is None:
        history = run(stream.data, 0, epochs, stream.steps_per_epoch)
    else:
        _train_from(model, stream, progress.step, epochs, run)
        history = _history(model, checkpointer.epoch_logs)
    # Training time of the whole run, the processes before a resume included (up to their last
    # checkpoint; the checkpointer keeps that clock): what a recipe reports, not just this share.
    history.training_seconds = (
        checkpointer.training_seconds if checkpointer is not None else time.perf_counter() - started
    )
    history.epoch_seconds = list(timer.seconds)
    _as_floats(history)
    return history
