"""SavedModel export of an image encoder: one `encode` signature, images -> features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_images
from tfpretrain.export.core import export_saved_model


def encoder_image_shape(
    encoder: keras.Model, image_shape: Sequence[int] | None = None
) -> tuple[int, int, int]:
    """`(H, W, C)` of an encoder's images: `image_shape` if given, else its input's."""
    if image_shape is None:
        shape = getattr(encoder, "input_shape", None)
        if not isinstance(shape, tuple) or len(shape) != 4:
            raise ValueError(
                "Pass `image_shape` (height, width, channels): the encoder has no "
                "known input shape."
            )
        image_shape = shape[1:]
    height, width, channels = (int(d) for d in image_shape)
    return height, width, channels


def export_encoder(
    encoder: keras.Model, path, image_shape: Sequence[int] | None = None, version: int | str = 1
) -> Path:
    """Exports `encoder` to `path/<version>/` with the signature `encode` (also
    `serving_default`): `images` float32 `[batch, H, W, C]` in [0, 1] -> `features` float32
    `[batch, F]`, in inference mode, without XLA.

    A batch of another shape or rank, an empty batch, NaN/infinite values or pixels outside
    [0, 1] fail with `InvalidArgumentError` naming the problem before the encoder runs.

    Args:
        encoder: any Keras model mapping images to features (SimCLR's `model.encoder`, an
            autoencoder's encoder, ...).
        path: the base folder, e.g. `OUT/saved_model`.
        image_shape: `(H, W, C)`; taken from the encoder's input when None.
        version: the version folder (an integer, or "next").

    Returns:
        The version folder written.

    Example:

    >>> path = export_encoder(model.encoder, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load(str(path)).signatures["encode"](images=x)["features"]  # doctest: +SKIP
    """
    image_shape = encoder_image_shape(encoder, image_shape)
    spec = [tf.TensorSpec((None, *image_shape), tf.float32, name="images")]

    def encode(images):
        features = encoder(check_images(images, image_shape), training=False)
        return {"features": tf.cast(features, tf.float32)}

    return export_saved_model(
        path, {"encode": (encode, spec)}, [encoder], default="encode", version=version
    )
