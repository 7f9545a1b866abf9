"""Settings of `tfpretrain gan`; the defaults are the DCGAN recipe (Adam 2e-4, beta_1 0.5)."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, at_least, non_negative, positive, setting
from tfpretrain.settings.data import ImageData

# The names of `tfpretrain.models.gan.GAN_PRESETS` and `GAN_LOSSES` (tests assert they agree; the
# model module loads Keras).
GAN_PRESETS = ("dcgan_mnist", "dcgan_small", "dcgan_tiny")
GAN_LOSSES = ("non_saturating", "minimax")


@dataclasses.dataclass(kw_only=True)
class GanRun(TrainingSettings, ImageData):
    """Settings of `tfpretrain gan`: a DCGAN trained with `model.fit`, watched per epoch (sample
    grid, Fréchet distance, break-down checks), then its discriminator probed."""

    epochs: int = setting(20, check=positive, resumable=True, help="training epochs")
    steps_per_epoch: int | None = setting(
        None,
        check=positive,
        help="steps per epoch over the repeated data (default: one pass over the data)",
    )
    batch_size: int = setting(128, check=positive, help="global batch size (real images per step)")
    preset: str = setting("dcgan_mnist", choices=GAN_PRESETS, help="generator/discriminator widths")
    loss: str = setting(
        "non_saturating",
        choices=GAN_LOSSES,
        help="generator loss: maximise log D(G(z)), or minimise log(1 - D(G(z))) (original)",
    )
    d_learning_rate: float = setting(2e-4, check=positive, help="discriminator Adam learning rate")
    g_learning_rate: float = setting(2e-4, check=positive, help="generator Adam learning rate")
    beta_1: float = 0.5
    fd_samples: int = setting(
        10_000, check=at_least(2), defines_run=False, help="generated images scored per epoch"
    )
    classifier_epochs: int = setting(
        2,
        check=positive,
        defines_run=False,
        help="epochs of the feature classifier behind the Fréchet distance",
    )
    probe_epochs: int = setting(
        30, check=positive, defines_run=False, help="epochs of each linear probe"
    )
    fine_tune_labels: tuple[int, ...] = setting(
        (100, 1000),
        check=positive,
        nargs="*",
        metavar="N",
        defines_run=False,
        help="fine-tune the discriminator's trunk with N labelled images each (none: skip)",
    )
    limit_test: int | None = setting(
        None,
        check=positive,
        defines_run=False,
        help="score on N test images drawn class by class (the same for every --seed)",
    )
    d_loss_floor: float = setting(
        1e-3,
        check=non_negative,
        defines_run=False,
        help="an epoch's mean discriminator loss below this stops the run as diverged",
    )
    collapse_entropy: float = 0.5
    collapse_check_from_epoch: int = setting(
        3,
        flag="--collapse-check-from",
        check=positive,
        metavar="EPOCH",
        defines_run=False,
        help="first epoch at which mode collapse is checked",
    )
