"""Learning-rate schedules with linear warm-up, shared by every family."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfpretrain")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_learning_rate`, then cosine or linear decay to
    `final_learning_rate`.

    Args:
        peak_learning_rate: learning rate reached at the end of warm-up, > 0.
        total_steps: steps of the whole run, warm-up included (> warmup_steps).
        warmup_steps: steps of linear warm-up, >= 0.
        decay: `"cosine"` (GPT, SimCLR), `"linear"` (BERT fine-tuning) or `"constant"`.
        final_learning_rate: learning rate at `total_steps` and after.

    Example:

    >>> schedule = WarmupSchedule(1e-3, total_steps=1000, warmup_steps=100)
    >>> optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    """

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        decay: str = "cosine",
        final_learning_rate: float = 0.0,
    ):
        if not peak_learning_rate > 0:
            raise ValueError(f"`peak_learning_rate` must be > 0; got {peak_learning_rate}.")
        if warmup_steps < 0 or total_steps <= warmup_steps:
            raise ValueError(
                f"Need 0 <= warmup_steps < total_steps; got warmup_steps={warmup_steps}, "
                f"total_steps={total_steps}."
            )
        if decay not in ("cosine", "linear", "constant"):
            raise ValueError(f"`decay` must be 'cosine', 'linear' or 'constant'; got {decay!r}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.final_learning_rate = float(final_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak, final = self.peak_learning_rate, self.final_learning_rate
        warm = peak * step / max(self.warmup_steps, 1)
        progress = ops.clip(
            (step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0
        )
        if self.decay == "cosine":
            decayed = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.decay == "linear":
            decayed = peak + (final - peak) * progress
        else:
            decayed = peak + 0.0 * progress
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "final_learning_rate": self.final_learning_rate,
        }


def warmup_steps(total_steps: int, fraction: float) -> int:
    """The warm-up steps of a run whose settings give warm-up as a share of `total_steps`.

    Rounds down, as `int(total_steps * fraction)` would, but a fraction converted from a step
    count (`steps / total_steps`) gives that count back despite float rounding.
    """
    return min(int(math.floor(total_steps * fraction + 1e-6)), max(total_steps - 1, 0))
