"""Pre-training families, each a functional Keras model built from `tfpretrain.layers`."""

from tfpretrain.models.autoencoder import AutoencoderConfig, autoencoder_layer, build_autoencoder

__all__ = ["AutoencoderConfig", "autoencoder_layer", "build_autoencoder"]
