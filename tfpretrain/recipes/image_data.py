"""The image commands' data: `--dataset` read through `load_image_dataset`, with the checks each
command needs (labels)."""

from __future__ import annotations

import numpy as np

from tfpretrain.data import ImageDataset, load_image_dataset
from tfpretrain.data.splits import stratified_subset
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


def fixed_subset(
    x: np.ndarray, y: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """At most `n` rows of `(x, y)` for monitors and plots, drawn class by class with seed 0.

    Seed 0 whatever `--seed` is, as for the held-out test split and `--limit-test`: every run
    scores its k-NN monitor on, and plots, the same images, and a class-sorted set (a folder
    tree) gives every class its share instead of its first classes only.
    """
    return stratified_subset(x, y, n, seed=0)
