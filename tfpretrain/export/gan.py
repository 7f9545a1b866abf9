"""SavedModel export of the GAN family: `sample` (seed, count -> images) and `features`."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model


def export_gan(generator: keras.Model, discriminator: keras.Model, path) -> Path:
    """Exports a trained GAN with two signatures.

    - `sample(seed, count)`: int32 scalars -> `{"images": [count, H, W, C]}` float32 in [0, 1];
      the same seed always gives the same images (stateless noise, `sample_noise`).
    - `features(images)`: float32 `[B, H, W, C]` in [0, 1] -> `{"features": [B, D]}`, the
      discriminator's pooled features (`discriminator_features`) for downstream probes.

    Example:

    >>> export_gan(gan.generator, gan.discriminator, "out/saved_model")  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["sample"](seed=tf.constant(0),
    ...                                                            count=tf.constant(16))  # doctest: +SKIP
    """
    from tfpretrain.models.gan import discriminator_features, sample_noise

    latent_dim = int(generator.input_shape[-1])
    features_model = discriminator_features(discriminator)

    def sample(seed, count):
        z = sample_noise(seed, count, latent_dim)
        return {"images": tf.cast(generator(z, training=False), tf.float32)}

    def features(images):
        return {"features": tf.cast(features_model(images, training=False), tf.float32)}

    image_spec = tf.TensorSpec((None,) + tuple(discriminator.input_shape[1:]), tf.float32, name="images")
    endpoints = {
        "sample": (sample, [tf.TensorSpec((), tf.int32, name="seed"), tf.TensorSpec((), tf.int32, name="count")]),
        "features": (features, [image_spec]),
    }
    return export_saved_model(path, endpoints, [generator, discriminator])
