"""SavedModel export of the autoencoder family: `encode` and `reconstruct` signatures."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_images
from tfpretrain.export.core import export_saved_model


def export_autoencoder(model: keras.Model, path, version: int | str = 1) -> Path:
    """Exports an autoencoder to `path/<version>/` with two signatures.

    - `encode(images)` -> `codes` float32 `[batch, code_dim]` (the bottleneck).
    - `reconstruct(images)` -> `reconstructions` float32 `[batch, H, W, C]` in [0, 1];
      also `serving_default`.

    Both take `images`, float32 `[batch, H, W, C]` (MNIST: `[batch, 28, 28, 1]`) in [0, 1].
    A batch of another shape or rank, an empty batch, NaN/infinite values or pixels outside
    [0, 1] (0-255 images not divided by 255) fail with `InvalidArgumentError` naming the
    problem before the model runs; another dtype is refused by the signature itself. Runs in
    inference mode, without XLA (any TF Serving build serves it).

    Args:
        model: a model from `build_autoencoder` (or loaded from its `.keras`).
        path: the base folder, e.g. `OUT/saved_model`.
        version: the version folder (an integer, or "next").

    Returns:
        The version folder written.

    Example:

    >>> path = export_autoencoder(model, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load(str(path)).signatures["encode"](images=x)["codes"]  # doctest: +SKIP
    """
    from tfpretrain.models.autoencoder import autoencoder_layer

    encoder = autoencoder_layer(model).encoder
    image_shape = tuple(int(d) for d in model.input_shape[1:])
    spec = [tf.TensorSpec((None, *image_shape), tf.float32, name="images")]

    def encode(images):
        return {"codes": encoder(check_images(images, image_shape), training=False)}

    def reconstruct(images):
        return {"reconstructions": model(check_images(images, image_shape), training=False)}

    endpoints = {"encode": (encode, spec), "reconstruct": (reconstruct, spec)}
    return export_saved_model(path, endpoints, [model], default="reconstruct", version=version)
