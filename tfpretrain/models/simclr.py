"""The SimCLR family (Chen et al., 2020): an image encoder, a projection MLP and the NT-Xent loss.

`SimCLR` is a `keras.Model` whose `train_step` takes batches of two augmented views
(`tfpretrain.data.augment.two_view_dataset`), so pre-training is a plain `model.fit`. Under a
`tf.distribute` strategy the projections of every replica are gathered before the loss, so each
image's negatives are the whole global batch and the loss equals the single-device loss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf

from tfpretrain.layers._validate import check_positive_float, check_positive_int
from tfpretrain.losses import nt_xent
from tfpretrain.settings import from_dict


@dataclasses.dataclass
class SimCLRConfig:
    """Everything needed to rebuild a SimCLR model with its default CNN encoder.

    Attributes:
        image_shape: `(height, width, channels)` of the images.
        encoder_filters: filters of the encoder's 3x3 convolutions; all but the first halve
            the resolution. The features are the global average of the last one, so its
            receptive field must span a digit: with three convolutions (9 pixels; 17 with
            four) the features are a bag of stroke fragments (94.0% supervised after one epoch
            on MNIST, 97.6% with four).
        projection_units: widths of the projection head's hidden layers.
        projection_dim: size of the projections the loss compares.
        temperature: NT-Xent temperature, > 0.
    """

    image_shape: tuple[int, ...] = (28, 28, 1)
    encoder_filters: tuple[int, ...] = (32, 64, 128, 256)
    projection_units: tuple[int, ...] = (256,)
    projection_dim: int = 64
    temperature: float = 0.5

    PRESETS = {
        "mnist": {},
        "small": {
            "encoder_filters": (16, 32, 64, 128),
            "projection_units": (128,),
            "projection_dim": 64,
        },
        "tiny": {"encoder_filters": (8, 16), "projection_units": (32,), "projection_dim": 16},
    }

    def __post_init__(self):
        check_positive_float("temperature", self.temperature)
        check_positive_int("projection_dim", self.projection_dim)
        if len(self.image_shape) != 3:
            raise ValueError(
                f"`image_shape` must be (height, width, channels); got {self.image_shape}."
            )

    @classmethod
    def preset(cls, name: str, **overrides) -> SimCLRConfig:
        """A named configuration (`mnist`, `small`, `tiny`) with optional field overrides."""
        if name not in cls.PRESETS:
            raise ValueError(
                f"Unknown SimCLR preset {name!r}; choose one of {sorted(cls.PRESETS)}."
            )
        return cls(**{**cls.PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> SimCLRConfig:
        return from_dict(cls, values, "SimCLR")


def build_cnn_encoder(
    image_shape: Sequence[int] = SimCLRConfig.image_shape,
    filters: Sequence[int] = SimCLRConfig.encoder_filters,
    name: str = "encoder",
) -> keras.Model:
    """A small CNN `images -> features`: conv-BN-ReLU blocks (stride 2 after the first), global
    average.

    Batch norm is synchronized across replicas, as SimCLR's global batch norm, so that a
    distributed step computes exactly what one device computes on the global batch. Its
    moving averages use momentum 0.9 (SimCLR's decay): with Keras' 0.99 the inference
    statistics of a few hundred fine-tuning steps still remember their initial values.

    Example:

    >>> build_cnn_encoder((28, 28, 1), (32, 64)).output_shape
    (None, 64)
    """
    filters = tuple(check_positive_int("encoder_filters", f) for f in filters)
    if not filters:
        raise ValueError("`encoder_filters` must list at least one convolution.")
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(
            f, 3, strides=1 if i == 0 else 2, padding="same", use_bias=False, name=f"conv_{i}"
        )(x)
        x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True, name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(images, features, name=name)


@keras.saving.register_keras_serializable(package="tfpretrain")
class ProjectionHead(keras.layers.Layer):
    """SimCLR's projection MLP: `Dense -> BatchNorm -> ReLU` per hidden width, then a linear
    `Dense`.

    Args:
        hidden_units: widths of the hidden layers.
        output_dim: size of the projection.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        features: `[B, F]` encoder features.
        training: batch-norm mode.

    Returns:
        `[B, output_dim]` projections.

    Example:

    >>> ProjectionHead((32,), 16)(keras.ops.zeros((4, 8))).shape
    TensorShape([4, 16])
    """

    def __init__(self, hidden_units: Sequence[int] = (256,), output_dim: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(check_positive_int("hidden_units", u) for u in hidden_units)
        self.output_dim = check_positive_int("output_dim", output_dim)

    def build(self, features_shape):
        if len(features_shape) != 2:
            raise ValueError(
                f"ProjectionHead expects features [batch, features]; got {tuple(features_shape)}."
            )
        policy = self.dtype_policy
        self.blocks = []
        shape = tuple(features_shape)
        for i, units in enumerate(self.hidden_units):
            dense = keras.layers.Dense(units, use_bias=False, dtype=policy, name=f"hidden_{i}")
            norm = keras.layers.BatchNormalization(
                momentum=0.9, synchronized=True, dtype=policy, name=f"bn_{i}"
            )
            dense.build(shape)
            shape = (shape[0], units)
            norm.build(shape)
            self.blocks.append((dense, norm))
        self.out = keras.layers.Dense(self.output_dim, dtype=policy, name="projection")
        self.out.build(shape)
        self.built = True

    def call(self, features, training=None):
        x = features
        for dense, norm in self.blocks:
            x = keras.ops.relu(norm(dense(x), training=training))
        return self.out(x)

    def compute_output_shape(self, features_shape):
        return (features_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": list(self.hidden_units), "output_dim": self.output_dim})
        return config


@keras.saving.register_keras_serializable(package="tfpretrain")
class SimCLR(keras.Model):
    """Contrastive pre-training of `encoder`: `fit` on batches of `(view_a, view_b)`.

    Calling the model maps images to projections; `model.encoder` is the part to keep for
    downstream tasks. Compile with only an optimizer (the loss is NT-Xent with `temperature`);
    the reported metrics are `loss` and `contrastive_accuracy` (how often an embedding's most
    similar other embedding is its positive).

    Args:
        encoder: any Keras model mapping `[B, H, W, C]` images to `[B, F]` features.
        projection_units: hidden widths of the projection head.
        projection_dim: projection size.
        temperature: NT-Xent temperature, > 0.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        images: `[B, H, W, C]` float images.
        training: batch-norm mode.

    Returns:
        `[B, projection_dim]` projections.

    Example:

    >>> model = build_simclr(SimCLRConfig.preset("tiny"))
    >>> model.compile(optimizer="adam", jit_compile=True)
    >>> model.fit(two_view_dataset(x_train, batch_size=256), epochs=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: keras.Model,
        projection_units: Sequence[int] = (256,),
        projection_dim: int = 64,
        temperature: float = 0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.temperature = check_positive_float("temperature", temperature)
        self.projection_head = ProjectionHead(
            projection_units, projection_dim, name="projection_head"
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        inputs = encoder.inputs[0] if getattr(encoder, "inputs", None) else None
        if inputs is not None:
            self.build(tuple(inputs.shape))

    def build(self, images_shape):
        if len(images_shape) != 4:
            raise ValueError(
                "SimCLR expects images [batch, height, width, channels]; got shape "
                f"{tuple(images_shape)}."
            )
        features = self.encoder.compute_output_shape(tuple(images_shape))
        self.projection_head.build(features)
        self.built = True

    def compile(self, optimizer="adam", jit_compile=True, **kwargs):
        """Compiles with only an optimizer (the loss is built in); XLA by default.

        Under a multi-replica (non-TPU) strategy the step runs as a graph without XLA: the global
        batch norm and the global-batch negatives need cross-replica collectives in the middle
        of the step, and `MirroredStrategy` implements those with `merge_call`, which cannot run
        inside the per-replica XLA function of `tfpretrain.training.xla`.
        """
        if "loss" in kwargs and kwargs["loss"] is not None:
            raise ValueError("SimCLR computes its own NT-Xent loss; compile it without `loss`.")
        strategy = tf.distribute.get_strategy()
        if (
            jit_compile
            and strategy.num_replicas_in_sync > 1
            and not isinstance(strategy, tf.distribute.TPUStrategy)
        ):
            jit_compile = False
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, images, training=None):
        return self.projection_head(self.encoder(images, training=training), training=training)

    def _views(self, data):
        if isinstance(data, dict):
            data = (data["view_a"], data["view_b"])
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError(
                "SimCLR trains on batches of two views: (view_a, view_b) or {'view_a', 'view_b'}."
            )
        view_a, view_b = data
        if view_a.shape.rank != 4 or view_b.shape.rank != 4:
            raise ValueError(
                f"Each view must be a batch of images [batch, height, width, channels]; got shapes "
                f"{view_a.shape} and {view_b.shape}."
            )
        return view_a, view_b

    def _loss(self, data, training: bool):
        """The global-batch NT-Xent loss and contrastive accuracy, seen from one replica."""
        view_a, view_b = self._views(data)
        n = tf.shape(view_a)[0]
        # One forward pass over both views, so batch norm sees the 2N images together.
        z = self(tf.concat([view_a, view_b], axis=0), training=training)
        z_a, z_b = z[:n], z[n:]
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        if replicas > 1:
            # Every replica sees all projections (the negatives of the global batch). all_gather's
            # gradient sums the replicas' upstream gradients, so each replica gets exactly its own
            # slice of d(loss)/dz.
            z_a, z_b = context.all_gather(z_a, axis=0), context.all_gather(z_b, axis=0)
        loss = nt_xent(z_a, z_b, self.temperature)
        return loss, self._accuracy(z_a, z_b), replicas

    @staticmethod
    def _accuracy(z_a, z_b):
        z = tf.math.l2_normalize(tf.cast(tf.concat([z_a, z_b], axis=0), tf.float32), axis=1)
        n2 = tf.shape(z)[0]
        similarity = tf.matmul(z, z, transpose_b=True) - 2.0 * tf.eye(n2)
        positives = tf.concat([tf.range(n2 // 2, n2), tf.range(0, n2 // 2)], axis=0)
        hits = tf.equal(tf.argmax(similarity, axis=1, output_type=tf.int32), positives)
        return tf.reduce_mean(tf.cast(hits, tf.float32))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss, accuracy, replicas = self._loss(data, training=True)
            # Keras sums the replicas' gradients; each replica holds the whole global loss.
            scaled = loss / replicas
            if hasattr(self.optimizer, "scale_loss"):
                scaled = self.optimizer.scale_loss(scaled)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(accuracy)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        loss, accuracy, _ = self._loss(data, training=False)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(accuracy)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "projection_units": list(self.projection_head.hidden_units),
            "projection_dim": self.projection_head.output_dim,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def build_simclr(config: SimCLRConfig | None = None, encoder: keras.Model | None = None) -> SimCLR:
    """Builds SimCLR with the default CNN encoder of `config`, or with any given `encoder`.

    Example:

    >>> model = build_simclr(SimCLRConfig.preset("tiny"))
    >>> model.encoder.output_shape
    (None, 16)
    """
    config = config or SimCLRConfig()
    if encoder is None:
        encoder = build_cnn_encoder(config.image_shape, config.encoder_filters)
    return SimCLR(
        encoder, config.projection_units, config.projection_dim, config.temperature, name="simclr"
    )
