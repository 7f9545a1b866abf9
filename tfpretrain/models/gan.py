"""The GAN family: a DCGAN generator and discriminator (28x28, 32x32, any H x W divisible by 4),
trained with `model.fit`.

`GAN` is a `keras.Model` whose overridden `train_step` plays the two-player game of Goodfellow et
al. (2014), min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]: one discriminator step on a real and
a generated batch, then one generator step. The generator either minimises log(1 - D(G(z))) (the
original "minimax" loss, whose gradient vanishes while D wins) or maximises log D(G(z)) (the
"non_saturating" loss, the default). The discriminator's pooled convolutional features are the
representation the evaluation protocol probes (Radford et al., 2016).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf
from keras import layers, ops

from tfpretrain.layers._validate import check_fraction, check_positive_int
from tfpretrain.layers.dropout import Dropout
from tfpretrain.settings import from_dict

GAN_LOSSES = ("non_saturating", "minimax")


@dataclasses.dataclass
class GANConfig:
    """Everything needed to rebuild a generator/discriminator pair.

    Attributes:
        image_shape: `(height, width, channels)`, height and width divisible by 4; the
            generator upsamples a quarter-size seed map twice (7 -> 14 -> 28 for MNIST,
            8 -> 16 -> 32 for CIFAR-sized images). Layer names keep MNIST's sizes.
        latent_dim: size of the Gaussian noise vector z.
        generator_filters: channels of the quarter-size seed map and of the half-size map.
        discriminator_filters: channels of the two stride-2 convolutions (half, quarter size).
        leaky_slope: negative slope of the discriminator's LeakyReLU.
        dropout: dropout after each discriminator convolution.
    """

    image_shape: tuple[int, ...] = (28, 28, 1)
    latent_dim: int = 100
    generator_filters: tuple[int, int] = (256, 128)
    discriminator_filters: tuple[int, int] = (64, 128)
    leaky_slope: float = 0.2
    dropout: float = 0.3

    def __post_init__(self):
        if len(self.image_shape) != 3 or any(d % 4 for d in self.image_shape[:2]):
            raise ValueError(
                "The DCGAN here makes (height, width, channels) images with height and width "
                f"divisible by 4 (28x28, 32x32, ...); got image_shape {tuple(self.image_shape)}. "
                "Pass --image-size H W to bring the images to such a size."
            )
        check_positive_int("latent_dim", self.latent_dim)
        for name in ("generator_filters", "discriminator_filters"):
            values = tuple(getattr(self, name))
            if len(values) != 2:
                raise ValueError(f"`{name}` needs two channel counts; got {values}.")
            for v in values:
                check_positive_int(name, v)
            setattr(self, name, values)
        check_fraction("dropout", self.dropout)
        self.image_shape = tuple(self.image_shape)

    @classmethod
    def from_dict(cls, values: dict) -> GANConfig:
        return from_dict(cls, values, "GAN")


GAN_PRESETS = {
    "dcgan_mnist": GANConfig(),
    # A CPU-sized DCGAN (~12x fewer FLOPs per step than dcgan_mnist).
    "dcgan_small": GANConfig(
        latent_dim=64, generator_filters=(64, 32), discriminator_filters=(32, 64)
    ),
    # For tests and quick checks: same graph, ~100x fewer parameters.
    "dcgan_tiny": GANConfig(
        latent_dim=16, generator_filters=(16, 8), discriminator_filters=(8, 16)
    ),
}


def gan_config(preset: str, **overrides) -> GANConfig:
    """The named preset, with fields overridden."""
    if preset not in GAN_PRESETS:
        raise ValueError(f"Unknown GAN preset {preset!r}; choose one of {sorted(GAN_PRESETS)}.")
    return dataclasses.replace(GAN_PRESETS[preset], **overrides)


def build_generator(config: GANConfig | None = None) -> keras.Model:
    """The generator `z [B, latent_dim] -> images [B, H, W, C]` in [0, 1] (sigmoid output).

    Dense seed map of a quarter of the image size (7x7 for MNIST), then two 5x5 stride-2
    transposed convolutions, batch norm and ReLU in between (DCGAN). The images are float32
    under any mixed-precision policy.

    Example:

    >>> build_generator(gan_config("dcgan_tiny")).output_shape
    (None, 28, 28, 1)
    """
    config = config or GANConfig()
    f0, f1 = config.generator_filters
    seed_height, seed_width = config.image_shape[0] // 4, config.image_shape[1] // 4
    z = keras.Input(shape=(config.latent_dim,), name="z")
    x = layers.Dense(seed_height * seed_width * f0, use_bias=False, name="project")(z)
    x = layers.BatchNormalization(name="project_norm")(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((seed_height, seed_width, f0))(x)
    x = layers.Conv2DTranspose(f1, 5, strides=2, padding="same", use_bias=False, name="up_14")(x)
    x = layers.BatchNormalization(name="up_14_norm")(x)
    x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(config.image_shape[-1], 5, strides=2, padding="same", name="up_28")(
        x
    )
    images = layers.Activation("sigmoid", dtype="float32", name="images")(x)
    return keras.Model(z, images, name="generator")


def build_discriminator(config: GANConfig | None = None) -> keras.Model:
    """The discriminator `images [B, H, W, C] -> logits [B, 1]` (float32; > 0 means "real").

    Two 5x5 stride-2 convolutions (LeakyReLU activations named `"act_14"` and `"act_7"` after
    MNIST's sizes, then dropout) and one logit on the flattened quarter-size map.
    `discriminator_features` reads the activations of both blocks.

    Example:

    >>> build_discriminator(gan_config("dcgan_tiny")).output_shape
    (None, 1)
    """
    config = config or GANConfig()
    d0, d1 = config.discriminator_filters
    images = keras.Input(shape=config.image_shape, name="images")
    x = layers.Conv2D(d0, 5, strides=2, padding="same", name="conv_14")(images)
    x = layers.LeakyReLU(config.leaky_slope, name="act_14")(x)
    x = Dropout(config.dropout)(x)
    x = layers.Conv2D(d1, 5, strides=2, padding="same", name="conv_7")(x)
    x = layers.LeakyReLU(config.leaky_slope, name="act_7")(x)
    x = Dropout(config.dropout)(x)
    logits = layers.Dense(1, dtype="float32", name="logits")(layers.Flatten()(x))
    return keras.Model(images, logits, name="discriminator")


def discriminator_features(discriminator: keras.Model) -> keras.Model:
    """`images -> features [B, 16 * (d0 + d1)]` sharing the discriminator's weights.

    Both blocks' activations are max-pooled to a 4x4 grid (for 28x28 or 32x32 images) and
    concatenated (3,072 values with the default widths), so that a probe sees low- and
    mid-level features, as in DCGAN's feature-extractor experiments. Float32 output.
    """
    try:
        blocks = [discriminator.get_layer(name).output for name in ("act_14", "act_7")]
    except ValueError:
        raise ValueError(
            f"Model {discriminator.name!r} is not a discriminator from build_discriminator "
            "(it lacks the layers 'act_14' and 'act_7')."
        ) from None
    pooled = [
        layers.Flatten()(layers.MaxPooling2D(size, padding="same")(block))
        for size, block in zip((4, 2), blocks, strict=True)
    ]
    features = layers.Concatenate(dtype="float32", name="features")(pooled)
    return keras.Model(discriminator.inputs, features, name="discriminator_features")


@keras.saving.register_keras_serializable(package="tfpretrain")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other by `fit`.

    Args:
        generator: `z -> images` model (`build_generator`).
        discriminator: `images -> logits` model (`build_discriminator`).
        loss: `"non_saturating"` (generator maximises log D(G(z))) or `"minimax"` (generator
            minimises log(1 - D(G(z))), the original objective).
        seed: seed of the noise drawn in `train_step`.

    Call arguments:
        z: `[B, latent_dim]` noise; returns the generated images.

    `compile(d_optimizer, g_optimizer, jit_compile=True, ...)` takes one optimizer per player.
    `fit` data are images (or `(images, labels)`, labels ignored); the logs hold `d_loss`,
    `g_loss`, `loss` (their sum, watched by the NaN guard), and the discriminator's mean
    probabilities on real (`d_real`) and generated (`d_fake`) images.

    Example:

    >>> config = gan_config("dcgan_tiny")
    >>> gan = GAN(build_generator(config), build_discriminator(config))
    >>> gan.compile(
    ...     keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    ... )
    >>> gan.fit(images, epochs=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        loss: str = "non_saturating",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in GAN_LOSSES:
            raise ValueError(f"Unknown GAN loss {loss!r}; choose one of {GAN_LOSSES}.")
        self.generator = generator
        self.discriminator = discriminator
        self.loss_type = loss
        self.seed = seed
        self.latent_dim = int(generator.input_shape[-1])
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "d_loss", "g_loss", "d_real", "d_fake")
        }
        # Both players are functional models whose weights already exist.
        self.built = True

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def compile(self, d_optimizer=None, g_optimizer=None, jit_compile=True, **kwargs):
        """Sets one optimizer per player (Adam(2e-4, beta_1=0.5) each by default, as in DCGAN)."""
        super().compile(jit_compile=jit_compile, **kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            # float16 gradients underflow without loss scaling.
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_optimizer)
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
        # Create the slots now, outside the XLA-compiled step.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def training_optimizers(self) -> list:
        """Both players' optimizers, for training checkpoints (`tfpretrain.training.checkpoint`)."""
        return [self.d_optimizer, self.g_optimizer] if hasattr(self, "d_optimizer") else []

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.noise_seed)

    def generator_loss(self, fake_logits):
        """The generator's loss on the discriminator's logits for generated images."""
        if self.loss_type == "non_saturating":
            return ops.mean(ops.softplus(-fake_logits))  # -log D(G(z))
        return -ops.mean(ops.softplus(fake_logits))  # log(1 - D(G(z)))

    @staticmethod
    def discriminator_loss(real_logits, fake_logits):
        """-E[log D(x)] - E[log(1 - D(G(z)))] in a numerically stable form."""
        return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))

    def _apply(self, optimizer, tape, loss, variables):
        scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, variables)
        optimizer.apply(grads, variables)

    def train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        real = ops.cast(real, self.discriminator.compute_dtype)
        batch_size = ops.shape(real)[0]
        # Gradients are summed over replicas, so each replica's mean is divided by their number.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        with tf.GradientTape() as tape:
            fake = self.generator(self._noise(batch_size), training=True)
            real_logits = ops.cast(self.discriminator(real, training=True), "float32")
            fake_logits = ops.cast(
                self.discriminator(ops.cast(fake, real.dtype), training=True), "float32"
            )
            d_loss = self.discriminator_loss(real_logits, fake_logits)
            scaled = d_loss / replicas
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)

        with tf.GradientTape() as tape:
            fake = self.generator(self._noise(batch_size), training=True)
            g_logits = ops.cast(
                self.discriminator(ops.cast(fake, real.dtype), training=True), "float32"
            )
            g_loss = self.generator_loss(g_logits)
            scaled = g_loss / replicas
        self._apply(self.g_optimizer, tape, scaled, self.generator.trainable_variables)

        values = {
            "loss": d_loss + g_loss,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": ops.mean(ops.sigmoid(real_logits)),
            "d_fake": ops.mean(ops.sigmoid(fake_logits)),
        }
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        return {
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "loss": self.loss_type,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def build_gan(
    config: GANConfig | None = None, loss: str = "non_saturating", seed: int | None = None
) -> GAN:
    """A fresh `GAN` with the generator and discriminator of `config`."""
    config = config or GANConfig()
    return GAN(
        build_generator(config), build_discriminator(config), loss=loss, seed=seed, name="gan"
    )


def sample_noise(seed, count, latent_dim: int) -> tf.Tensor:
    """The noise `[count, latent_dim]` that seed `seed` stands for (stateless: same seed, same z).

    The exported `sample` signature and the per-epoch sample grids both draw z this way.
    """
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.random.stateless_normal(tf.stack([tf.cast(count, tf.int32), latent_dim]), seed=seed)
