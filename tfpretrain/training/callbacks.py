"""Callbacks every family's training uses."""

from __future__ import annotations

import math
import time

import keras


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss, or weights that are no longer finite."""


class StepClock:
    """Maps Keras' `(epoch, batch)` callback arguments to the global training step of a run.

    `fit` may resume inside an epoch: the first epoch it runs then starts at batch
    `first_batch` of epoch `first_epoch`, and Keras numbers its batches from 0 again.

    Args:
        steps_per_epoch: batches per epoch (None when unknown: steps are then counted).
        first_epoch: the epoch the run (re)starts in.
        first_batch: batches of `first_epoch` already done before this run.
    """

    def __init__(
        self, steps_per_epoch: int | None = None, first_epoch: int = 0, first_batch: int = 0
    ):
        self.steps_per_epoch = steps_per_epoch
        self.first_epoch = first_epoch
        self.first_batch = first_batch
        self.start_step = first_epoch * (steps_per_epoch or 0) + first_batch
        self._counted = self.start_step
        self._last: tuple[int, int] | None = None

    def step(self, epoch: int, batch: int) -> int:
        """The number of training steps done once batch `batch` of epoch `epoch` has ended."""
        if self.steps_per_epoch:
            offset = self.first_batch if epoch == self.first_epoch else 0
            return epoch * self.steps_per_epoch + offset + batch + 1
        # Unknown epoch length: count the batches Keras reports (several per call with
        # steps_per_execution > 1).
        if self._last is None or self._last[0] != epoch:
            self._counted += batch + 1
        else:
            self._counted += batch - self._last[1]
        self._last = (epoch, batch)
        return self._counted


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and says at which step it happened.

    Unlike `keras.callbacks.TerminateOnNaN` it raises `NonFiniteLossError`, so a command fails
    loudly instead of exporting a broken model, and checkpoints written before stay untouched
    (place it before checkpoint callbacks so that the failing step is never saved). At each
    epoch's end it also checks the weights: a NaN input that ReLU maps to 0 (as TensorFlow's CPU
    kernels can) leaves the loss finite while its gradients make the weights NaN, and a NaN
    moving statistic never shows in a training loss.

    Args:
        monitor: the logged loss to check.
        clock: maps Keras' batch numbers to global steps (resumed runs); counts steps without it.
    """

    def __init__(self, monitor: str = "loss", clock: StepClock | None = None):
        super().__init__()
        self.monitor = monitor
        self.clock = clock or StepClock()
        self._epoch = 0
        self._last_step = self.clock.start_step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.clock.step(self._epoch, batch)
        first, self._last_step = self._last_step + 1, step
        value = (logs or {}).get(self.monitor)
        if value is not None and not math.isfinite(float(value)):
            self.model.stop_training = True
            where = f"step {step}" if first == step else f"steps {first}-{step} (one compiled call)"
            raise NonFiniteLossError(
                f"The training loss became {float(value)} at {where}, epoch {self._epoch + 1}, "
                f"batch {batch + 1}. Lower the learning rate, clip gradients or check the data for "
                "NaN/Inf values; the last checkpoint written before this step is intact."
            )

    def on_epoch_end(self, epoch, logs=None):
        from tfpretrain.training.checkpoint import first_non_finite

        bad = first_non_finite(self.model.weights)
        if bad is not None:
            self.model.stop_training = True
            raise NonFiniteLossError(
                f"Weight {bad} holds NaN/Inf after epoch {epoch + 1} although the loss stayed "
                "finite (a NaN/Inf input can vanish behind ReLU). Check the data for NaN/Inf "
                "values; the last checkpoint written before this epoch's end is intact."
            )


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in `self.seconds` (training and validation included),
    after those of the runs before a resume (`seconds`)."""

    def __init__(self, seconds: list[float] | None = None):
        super().__init__()
        self.seconds: list[float] = list(seconds or [])
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the full training state (see `tfpretrain.training.checkpoint`) atomically.

    It saves every `every_steps` steps (at the first batch end at or after that many steps since
    the last save) and at the end of every epoch. Place it after `NanGuard`, so that a step with
    a non-finite loss is never saved.

    Args:
        directory: where the `step-*.npz` files go.
        clock: maps Keras' batch numbers to global steps; must know `steps_per_epoch`.
        every_steps: save period in steps (None: at epoch ends only).
        keep: how many checkpoints to keep.
        epoch_logs: per-epoch logs of the run so far (from the checkpoint resumed from).
        write: False on the non-chief workers of a multi-worker job (they save nothing).
        earlier_seconds: training wall time of the runs before this one (from the checkpoint);
            each checkpoint records it plus this run's time so far as `training_seconds`.
        epoch_timer: its per-epoch wall times are recorded with each checkpoint (place it
            before this callback), so that a resumed run reports every epoch's time.
    """

    def __init__(
        self,
        directory,
        clock: StepClock,
        every_steps: int | None = None,
        keep: int = 2,
        epoch_logs: list[dict] | None = None,
        write: bool = True,
        earlier_seconds: float = 0.0,
        epoch_timer: EpochTimer | None = None,
    ):
        super().__init__()
        if not clock.steps_per_epoch:
            raise ValueError("TrainingCheckpoint needs a StepClock that knows steps_per_epoch.")
        if every_steps is not None and every_steps <= 0:
            raise ValueError(f"`every_steps` must be positive or None; got {every_steps}.")
        self.directory = directory
        self.clock = clock
        self.every_steps = every_steps
        self.keep = keep
        self.epoch_logs = list(epoch_logs or [])
        self.write = write
        self.last_saved = clock.start_step
        self._epoch = clock.first_epoch
        self.earlier_seconds = float(earlier_seconds)
        self.epoch_timer = epoch_timer
        self._started = time.perf_counter()

    @property
    def training_seconds(self) -> float:
        """Wall time of every run that led to the current state, this one included."""
        return self.earlier_seconds + time.perf_counter() - self._started

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.clock.step(self._epoch, batch)
        if step % self.clock.steps_per_epoch == 0:
            return  # the epoch-end save follows, with this epoch's logs: one checkpoint per step
        if self.every_steps and step - self.last_saved >= self.every_steps:
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append({k: float(v) for k, v in (logs or {}).items()})
        self._save((epoch + 1) * self.clock.steps_per_epoch)

    def _save(self, step: int) -> None:
        from tfpretrain.training.checkpoint import save_state

        self.last_saved = step
        if not self.write:
            return
        epoch, batch = divmod(step, self.clock.steps_per_epoch)
        save_state(
            self.model,
            self.directory,
            {
                "step": step,
                "epoch": epoch,
                "batch": batch,
                "data_position": step,
                "steps_per_epoch": self.clock.steps_per_epoch,
                "epoch_logs": self.epoch_logs,
                "training_seconds": self.training_seconds,
                "epoch_seconds": self.epoch_timer.seconds if self.epoch_timer else [],
            },
            keep=self.keep,
        )
