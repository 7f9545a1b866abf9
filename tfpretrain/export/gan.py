"""SavedModel export of the GAN family: `sample` (seed, count -> images) and `features`."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import MAX_SAMPLES, check_images, check_scalar
from tfpretrain.export.core import export_saved_model


def export_gan(
    generator: keras.Model, discriminator: keras.Model, path, version: int | str = 1
) -> Path:
    """Exports a trained GAN to `path/<version>/` with two signatures, without XLA.

    - `sample(seed, count)`: int32 scalars -> `{"images": [count, H, W, C]}` float32 in
      [0, 1]; also `serving_default`. The same seed always gives the same images (stateless
      noise, `sample_noise`). `count` must be in [1, 1024] and both inputs scalars.
    - `features(images)`: float32 `[B, H, W, C]` in [0, 1] -> `{"features": [B, D]}`, the
      discriminator's pooled features (`discriminator_features`) for downstream probes.
      Images of another shape, NaN or values outside [0, 1] fail before the model runs.

    Bad requests fail with `InvalidArgumentError` naming the problem.

    Args:
        generator, discriminator: the trained GAN's halves.
        path: the base folder, e.g. `OUT/saved_model`.
        version: the version folder (an integer, or "next").

    Returns:
        The version folder written.

    Example:

    >>> path = export_gan(gan.generator, gan.discriminator, "out/saved_model")  # doctest: +SKIP
    >>> sample = tf.saved_model.load(str(path)).signatures["sample"]  # doctest: +SKIP
    >>> sample(seed=tf.constant(0), count=tf.constant(16))["images"]  # doctest: +SKIP
    """
    from tfpretrain.models.gan import discriminator_features, sample_noise

    latent_dim = int(generator.input_shape[-1])
    features_model = discriminator_features(discriminator)
    image_shape = tuple(int(d) for d in discriminator.input_shape[1:])

    def sample(seed, count):
        seed = check_scalar(seed, "seed")
        count = check_scalar(count, "count", low=1, high=MAX_SAMPLES)
        z = sample_noise(seed, count, latent_dim)
        return {"images": tf.cast(generator(z, training=False), tf.float32)}

    def features(images):
        images = check_images(images, image_shape)
        return {"features": tf.cast(features_model(images, training=False), tf.float32)}

    image_spec = tf.TensorSpec((None, *image_shape), tf.float32, name="images")
    scalars = [tf.TensorSpec((), tf.int32, name="seed"), tf.TensorSpec((), tf.int32, name="count")]
    endpoints = {"sample": (sample, scalars), "features": (features, [image_spec])}
    return export_saved_model(
        path, endpoints, [generator, discriminator], default="sample", version=version
    )
