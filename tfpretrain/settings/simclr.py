"""Settings of `tfpretrain simclr`: contrastive pre-training of a small CNN image encoder."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import (
    TrainingSettings,
    at_least,
    deprecated,
    in_range,
    non_negative,
    positive,
    setting,
)
from tfpretrain.settings.data import ImageData

# The names of `SimCLRConfig.PRESETS` (tests assert they agree; the model module loads Keras).
SIMCLR_PRESETS = ("mnist", "small", "tiny")
OPTIMIZERS = ("lars", "adamw")


@dataclasses.dataclass(kw_only=True)
class SimCLRRun(TrainingSettings, ImageData):
    """Settings of `tfpretrain simclr`.

    `learning_rate` None picks SimCLR's LARS rule `0.3 x batch_size / 256`, or `1e-3 x
    batch_size / 256` for AdamW; it warms up linearly over `warmup_fraction` of the steps, then
    decays (cosine).
    """

    preset: str = setting("mnist", choices=SIMCLR_PRESETS, help="encoder size")
    epochs: int = setting(20, check=positive, resumable=True, help="pre-training epochs")
    batch_size: int = setting(
        256,
        check=at_least(2),
        help="global batch of image pairs (>= 2: the other images of a batch are the negatives)",
    )
    temperature: float = setting(0.5, check=positive, help="NT-Xent temperature")
    optimizer: str = setting("lars", choices=OPTIMIZERS, help="optimizer")
    learning_rate: float | None = setting(
        None,
        check=positive,
        help="peak learning rate (default: 0.3 x batch/256 for LARS, 1e-3 x batch/256 for AdamW)",
    )
    weight_decay: float | None = setting(
        None, check=non_negative, help="weight decay (default: 1e-6 for LARS, 1e-4 for AdamW)"
    )
    # One epoch of the default 20.
    warmup_fraction: float = setting(
        0.05, check=in_range(0, 1), help="share of the training steps spent in linear warm-up"
    )
    warmup_epochs: float | None = setting(
        None,
        check=non_negative,
        metavar="EPOCHS",
        help="deprecated: use --warmup-fraction (warm-up epochs / --epochs)",
    )
    knn_every: int = setting(
        1, check=non_negative, defines_run=False, help="k-NN accuracy every N epochs (0: never)"
    )
    knn_bank: int = 10000
    knn_queries: int = 2000
    probe_epochs: int = setting(
        30, check=positive, defines_run=False, help="epochs of the linear probe"
    )

    def check(self) -> None:
        if self.warmup_epochs is None:
            return
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"--warmup-epochs {self.warmup_epochs:g} is longer than the run "
                f"(--epochs {self.epochs}); use --warmup-fraction in [0, 1]."
            )
        self.warmup_fraction = self.warmup_epochs / self.epochs
        self.warmup_epochs = None  # recorded once, as the fraction
        deprecated(
            "--warmup-epochs",
            f"--warmup-fraction {self.warmup_fraction:g}",
            "the share of the steps",
        )
