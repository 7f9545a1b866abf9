"""The autoencoder family: an `Autoencoder` layer wrapped in a functional Keras model."""

from __future__ import annotations

import dataclasses

import keras

from tfpretrain.layers.autoencoder import Autoencoder
from tfpretrain.settings import from_dict


@dataclasses.dataclass
class AutoencoderConfig:
    """Everything needed to rebuild an autoencoder model; the defaults are the classic MNIST
    example."""

    image_shape: tuple[int, ...] = (28, 28, 1)
    encoder_units: tuple[int, ...] = (128, 64)
    decoder_units: tuple[int, ...] = (64,)
    conv: bool = False
    conv_filters: tuple[int, ...] = (32, 64)

    @classmethod
    def from_dict(cls, values: dict) -> AutoencoderConfig:
        return from_dict(cls, values, "autoencoder")


def build_autoencoder(config: AutoencoderConfig | None = None) -> keras.Model:
    """Builds the functional autoencoder model `images -> reconstructions`.

    The `Autoencoder` layer is named `"autoencoder"`; its `encoder` and `decoder` are reachable
    with `autoencoder_layer(model)` for fine-tuning and export.

    Example:

    >>> model = build_autoencoder(AutoencoderConfig(conv=True))
    >>> model.output_shape
    (None, 28, 28, 1)
    """
    config = config or AutoencoderConfig()
    images = keras.Input(shape=config.image_shape, name="images")
    layer = Autoencoder(
        encoder_units=config.encoder_units,
        decoder_units=config.decoder_units,
        conv=config.conv,
        conv_filters=config.conv_filters,
        name="autoencoder",
    )
    return keras.Model(
        images, layer(images), name="conv_autoencoder" if config.conv else "autoencoder"
    )


def autoencoder_layer(model: keras.Model) -> Autoencoder:
    """The `Autoencoder` layer of a model built by `build_autoencoder` (or loaded from `.keras`)."""
    for layer in model.layers:
        if isinstance(layer, Autoencoder):
            return layer
    raise ValueError(f"Model {model.name!r} contains no Autoencoder layer.")
