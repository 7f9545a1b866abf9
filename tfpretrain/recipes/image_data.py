"""The image commands' data: `--dataset` read through `load_image_dataset`, with the checks each
command needs (labels)."""

from __future__ import annotations

from tfpretrain.data import ImageDataset, load_image_dataset
from tfpretrain.settings.data import ImageData


def load_run_images(cfg: ImageData, labels_for: str | None = None) -> ImageDataset:
    """The images named by `cfg.dataset`, sized by `cfg.image_size` / `cfg.fit`.

    A source without a test split gets the data layer's seeded hold-out with seed 0 whatever
    `--seed` is, so that runs of several seeds (and `evaluate` of their encoders) share one test
    set. `labels_for` says what needs labels; unlabelled images are then refused.
    """
    data = load_image_dataset(
        cfg.dataset, data_dir=cfg.data_dir, image_size=cfg.image_size, fit=cfg.fit
    )
    if labels_for and data.y_train is None:
        raise ValueError(
            f"--dataset {cfg.dataset} has no labels, and {labels_for} needs them. Give labelled "
            "images: an .npz with y (or y_train/y_test), a folder of class folders or a tfds: "
            "set with a ClassLabel feature."
        )
    return data
