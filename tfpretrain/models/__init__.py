"""Pre-training families, each a functional Keras model built from `tfpretrain.layers`."""

from tfpretrain.models.autoencoder import AutoencoderConfig, autoencoder_layer, build_autoencoder
from tfpretrain.models.gan import (
    GAN,
    GAN_PRESETS,
    GANConfig,
    build_discriminator,
    build_gan,
    build_generator,
    discriminator_features,
    gan_config,
)

__all__ = [
    "GAN",
    "GAN_PRESETS",
    "AutoencoderConfig",
    "GANConfig",
    "autoencoder_layer",
    "build_autoencoder",
    "build_discriminator",
    "build_gan",
    "build_generator",
    "discriminator_features",
    "gan_config",
]
