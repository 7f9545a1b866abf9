"""SavedModel export of an image encoder: one `encode` signature, images -> features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model


def export_encoder(encoder: keras.Model, path, image_shape: Sequence[int] | None = None) -> Path:
    """Exports `encoder` with the signature `encode`: `images` `[batch, H, W, C]` float32 in [0, 1]
    -> `features` `[batch, F]` (inference mode).

    Args:
        encoder: any Keras model mapping images to features (SimCLR's `model.encoder`, an
            autoencoder's encoder, ...).
        path: destination folder.
        image_shape: `(H, W, C)`; taken from the encoder's input when None.

    Example:

    >>> export_encoder(model.encoder, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["encode"](images=x)["features"]  # doctest: +SKIP
    """
    if image_shape is None:
        shape = getattr(encoder, "input_shape", None)
        if not isinstance(shape, tuple) or len(shape) != 4:
            raise ValueError("Pass `image_shape` (height, width, channels): the encoder has no known input shape.")
        image_shape = shape[1:]
    spec = [tf.TensorSpec((None, *tuple(image_shape)), tf.float32, name="images")]

    def encode(images):
        return {"features": encoder(images, training=False)}

    return export_saved_model(path, {"encode": (encode, spec)}, [encoder])
