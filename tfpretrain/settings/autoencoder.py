"""Settings of `tfpretrain autoencoder`; the defaults reproduce the classic Keras example."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, at_least, non_negative, positive, setting
from tfpretrain.settings.data import ImageData


@dataclasses.dataclass(kw_only=True)
class AutoencoderRun(TrainingSettings, ImageData):
    """Settings of `tfpretrain autoencoder`: the dense 784-128-64-64-784 autoencoder (or the
    convolutional one) trained with Adam and binary cross-entropy."""

    epochs: int = setting(50, check=positive, resumable=True, help="training epochs")
    batch_size: int = setting(256, check=positive, help="examples per batch")
    learning_rate: float = setting(1e-3, check=positive, help="Adam learning rate")
    conv: bool = setting(False, help="use the convolutional autoencoder")
    validation_size: int = setting(
        5000,
        check=non_negative,
        help="training images held out for validation curves, class by class (0: none)",
    )
    early_stopping_patience: int | None = setting(
        None,
        flag="--early-stopping",
        check=positive,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without validation improvement",
    )
    steps_per_execution: int = setting(
        32,
        check=positive,
        defines_run=False,
        help="training steps run per compiled call (fewer Python round trips)",
    )
    gradient_accumulation_steps: int | None = setting(
        None,
        check=at_least(2),
        metavar="K",
        help="apply the mean gradient of K batches at once (K >= 2)",
    )
    deterministic: bool = setting(
        False, help="deterministic TensorFlow ops (bit-identical reruns and resumes; slower)"
    )
