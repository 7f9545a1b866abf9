"""Callbacks every family's training uses."""

from __future__ import annotations

import math

import keras


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and says at which step it happened.

    Unlike `keras.callbacks.TerminateOnNaN` it raises `NonFiniteLossError`, so a command fails
    loudly instead of exporting a broken model, and checkpoints written before stay untouched.
    """

    def __init__(self, monitor: str = "loss"):
        super().__init__()
        self.monitor = monitor
        self._epoch = 0
        self._step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        value = (logs or {}).get(self.monitor)
        if value is not None and not math.isfinite(float(value)):
            self.model.stop_training = True
            raise NonFiniteLossError(
                f"The training loss became {float(value)} at epoch {self._epoch + 1}, batch {batch + 1} "
                f"(step {self._step}). Lower the learning rate, clip gradients or check the data for "
                "NaN/Inf values; the last checkpoint written before this step is intact."
            )


class EpochTimer(keras.callbacks.Callback):
    """Records the wall time of every epoch in `self.seconds` (training and validation included)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        self.seconds.append(time.perf_counter() - self._start)
