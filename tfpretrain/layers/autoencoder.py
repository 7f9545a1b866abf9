"""A dense or convolutional autoencoder with its encoder and decoder exposed for fine-tuning."""

from __future__ import annotations

import math

import keras

from tfpretrain.layers._validate import check_positive_int


def _units(name: str, values) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise ValueError(f"`{name}` must list at least one layer width; got an empty sequence.")
    return tuple(check_positive_int(name, v) for v in values)


@keras.saving.register_keras_serializable(package="tfpretrain")
class Autoencoder(keras.layers.Layer):
    """Encodes images to a code and decodes the code back to an image of the input's shape.

    The dense variant flattens the image, applies `Dense(u, activation)` for each width of
    `encoder_units` (the last one is the code), then `Dense(u, activation)` for each width of
    `decoder_units` and a final `Dense(pixels, output_activation)` reshaped to the image. The
    defaults give the classic MNIST autoencoder 784 -> 128 -> 64 -> 64 -> 784.

    The convolutional variant (`conv=True`) uses stride-2 `Conv2D` layers with `conv_filters`
    followed by a dense code of width `encoder_units[-1]`, and mirrors them with
    `Conv2DTranspose` layers; the image height and width must be divisible by
    `2 ** len(conv_filters)`.

    Args:
        encoder_units: widths of the encoder's dense layers; the last is the code size.
        decoder_units: widths of the decoder's hidden dense layers before the output layer.
        activation: activation of the hidden layers.
        output_activation: activation of the reconstruction (sigmoid for pixels in [0, 1]).
        conv: use the convolutional variant.
        conv_filters: filters of the stride-2 convolutions (convolutional variant only).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        images: `[B, H, W]` or `[B, H, W, C]` float images (`[B, H, W, C]` for `conv=True`).

    Returns:
        Reconstructions with the shape of `images`.

    Attributes:
        encoder: a `keras.Sequential` mapping images to codes (available after building).
        decoder: a `keras.Sequential` mapping codes to images (available after building).

    Example:

    >>> ae = Autoencoder()
    >>> ae(keras.ops.zeros((2, 28, 28, 1))).shape
    TensorShape([2, 28, 28, 1])
    >>> ae.encoder(keras.ops.zeros((2, 28, 28, 1))).shape
    TensorShape([2, 64])
    """

    def __init__(
        self,
        encoder_units=(128, 64),
        decoder_units=(64,),
        activation="relu",
        output_activation="sigmoid",
        conv: bool = False,
        conv_filters=(32, 64),
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder_units = _units("encoder_units", encoder_units)
        self.decoder_units = tuple(check_positive_int("decoder_units", u) for u in decoder_units)
        self.activation = keras.activations.get(activation)
        self.output_activation = keras.activations.get(output_activation)
        self.conv = bool(conv)
        self.conv_filters = _units("conv_filters", conv_filters)
        self.encoder = None
        self.decoder = None

    def _dense(self, units: int, activation, name: str):
        return keras.layers.Dense(units, activation=activation, dtype=self.dtype_policy, name=name)

    def build(self, images_shape):
        image_shape = tuple(images_shape[1:])
        if len(image_shape) not in (2, 3) or any(d is None for d in image_shape):
            raise ValueError(
                "Autoencoder expects images of shape [batch, height, width] or "
                f"[batch, height, width, channels] with known sizes; got {tuple(images_shape)}."
            )
        self.image_shape = image_shape
        code = self.encoder_units[-1]
        policy = self.dtype_policy
        if self.conv:
            if len(image_shape) != 3:
                raise ValueError(
                    "The convolutional autoencoder needs images of shape [batch, height, width, "
                    f"channels]; got {tuple(images_shape)}. Add a channel axis, e.g. x[..., None]."
                )
            height, width, channels = image_shape
            factor = 2 ** len(self.conv_filters)
            if height % factor or width % factor:
                raise ValueError(
                    f"Image size {height}x{width} must be divisible by {factor} "
                    f"(2 ** len(conv_filters)) for the convolutional autoencoder."
                )
            convs = [
                keras.layers.Conv2D(
                    f,
                    3,
                    strides=2,
                    padding="same",
                    activation=self.activation,
                    dtype=policy,
                    name=f"conv_{i}",
                )
                for i, f in enumerate(self.conv_filters)
            ]
            encoder_layers = [*convs, keras.layers.Flatten(dtype=policy)]
            encoder_layers += [
                self._dense(u, self.activation, f"code_{i}")
                for i, u in enumerate(self.encoder_units)
            ]
            small = (height // factor, width // factor, self.conv_filters[-1])
            decoder_layers = [
                self._dense(u, self.activation, f"hidden_{i}")
                for i, u in enumerate(self.decoder_units)
            ]
            decoder_layers += [
                self._dense(math.prod(small), self.activation, "expand"),
                keras.layers.Reshape(small, dtype=policy),
            ]
            decoder_layers += [
                keras.layers.Conv2DTranspose(
                    f,
                    3,
                    strides=2,
                    padding="same",
                    activation=self.activation,
                    dtype=policy,
                    name=f"deconv_{i}",
                )
                for i, f in enumerate(reversed(self.conv_filters))
            ]
            decoder_layers.append(
                keras.layers.Conv2D(
                    channels,
                    3,
                    padding="same",
                    activation=self.output_activation,
                    dtype=policy,
                    name="reconstruction",
                )
            )
        else:
            encoder_layers = [keras.layers.Flatten(dtype=policy)]
            encoder_layers += [
                self._dense(u, self.activation, f"encoder_{i}")
                for i, u in enumerate(self.encoder_units)
            ]
            decoder_layers = [
                self._dense(u, self.activation, f"decoder_{i}")
                for i, u in enumerate(self.decoder_units)
            ]
            decoder_layers += [
                self._dense(math.prod(image_shape), self.output_activation, "reconstruction"),
                keras.layers.Reshape(image_shape, dtype=policy),
            ]
        self.encoder = keras.Sequential(encoder_layers, name="encoder")
        self.decoder = keras.Sequential(decoder_layers, name="decoder")
        self.encoder.build((None,) + image_shape)
        self.decoder.build((None, code))
        self.built = True

    def encode(self, images):
        """Returns the codes `[B, encoder_units[-1]]` of `images`."""
        return self.encoder(images)

    def call(self, images):
        return self.decoder(self.encoder(images))

    def compute_output_shape(self, images_shape):
        return tuple(images_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder_units": list(self.encoder_units),
                "decoder_units": list(self.decoder_units),
                "activation": keras.activations.serialize(self.activation),
                "output_activation": keras.activations.serialize(self.output_activation),
                "conv": self.conv,
                "conv_filters": list(self.conv_filters),
            }
        )
        return config
