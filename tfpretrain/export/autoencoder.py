"""SavedModel export of the autoencoder family: `encode` and `reconstruct` signatures."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model


def export_autoencoder(model: keras.Model, path) -> Path:
    """Exports an autoencoder with signatures `encode` (images -> codes) and `reconstruct`.

    Both take `images`, float32 `[batch, H, W, C]` in [0, 1].

    Example:

    >>> export_autoencoder(model, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["encode"](images=x)["codes"]  # doctest: +SKIP
    """
    from tfpretrain.models.autoencoder import autoencoder_layer

    encoder = autoencoder_layer(model).encoder
    spec = [tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="images")]

    def encode(images):
        return {"codes": encoder(images, training=False)}

    def reconstruct(images):
        return {"reconstructions": model(images, training=False)}

    return export_saved_model(path, {"encode": (encode, spec), "reconstruct": (reconstruct, spec)}, [model])
