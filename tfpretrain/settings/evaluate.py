"""Settings of `tfpretrain evaluate`: few-label fine-tuning and linear probes of image encoders."""

from __future__ import annotations

import argparse
import dataclasses

from tfpretrain.settings import RunSettings, positive, setting
from tfpretrain.settings.data import ImageData


def label_count(value: str) -> int | None:
    """A `--labels` value: a whole number, or 'all' (None) for every label."""
    if value.lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number or 'all'; got {value!r}"
        ) from None


# Not `TrainingSettings`: the fine-tunings are many short fits without checkpoints, logs or
# exports, so only the seed, strategy, precision and XLA apply.
@dataclasses.dataclass(kw_only=True)
class EvaluateRun(RunSettings, ImageData):
    """Settings of `tfpretrain evaluate`.

    `labels` lists the labelled-subset sizes to fine-tune with (None = all labels); `per_class`
    counts them per class. The `scratch` row is the first encoder's network re-initialised.
    Each fine-tuned linear layer starts from a linear probe of the subset unless `random_head`.
    """

    encoders: list[str] = setting(
        flag="--encoder",
        metavar="DIR",
        repeat=True,
        help="run directory or .keras file of a pre-trained encoder (repeat to compare several)",
    )
    labels: list[int | None] = setting(
        default_factory=lambda: [100],
        check=positive,
        parse=label_count,
        metavar="K",
        help="labelled examples for fine-tuning, in total (or per class with --per-class); "
        "'all' for all",
    )
    per_class: bool = setting(False, help="count --labels per class")
    scratch: bool = setting(True, help="add the from-scratch baseline")
    probe: bool = setting(True, help="add the linear probe")
    epochs: int = setting(
        3, check=positive, help="fine-tuning passes over the labelled set (at least 300 steps)"
    )
    steps: int | None = setting(None, check=positive, help="fine-tuning steps (overrides --epochs)")
    batch_size: int = setting(128, check=positive, help="fine-tuning batch size")
    learning_rate: float = setting(
        1e-3, check=positive, help="fine-tuning peak learning rate (Adam, cosine)"
    )
    random_head: bool = setting(
        False,
        help="start the fine-tuned linear layer at random instead of from a linear probe "
        "of the labelled subset",
    )
    limit_test: int | None = setting(
        None,
        check=positive,
        help="score on N test images drawn class by class (the same for every --seed)",
    )

    def check(self) -> None:
        if not self.encoders:
            raise ValueError("Name at least one encoder run directory with --encoder.")
