"""ELECTRA (Clark et al., 2020): replaced-token detection with a small generator.

A small masked-LM generator fills the masked positions with tokens sampled from its own
predictions; the discriminator, a full `BertEncoder`, labels every token of the result as
original or replaced. Every position gives the discriminator a training signal (masked LM
learns from the 15% masked ones only), which is why ELECTRA beats masked LM at equal compute,
most clearly for small models. The discriminator's encoder is what fine-tuning starts from.

Here the generator shares the discriminator's whole embedding stack (token, position and
segment embeddings and their norm, the paper shares token and position embeddings) and is made
small by depth and feed-forward width: `generator_layers` transformer blocks of the same
hidden width, the masked-LM head tied to the shared token embedding.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from tfpretrain.models.bert import ENCODER_INPUTS, BertEncoder, MaskedLMHead


def replaced_tokens(token_ids, positions, weights, labels, fills):
    """The original and the generator-corrupted token ids, and which tokens differ.

    Args:
        token_ids: int `[B, T]` masked-LM inputs (masked positions hold [MASK] or a stand-in).
        positions: int `[B, P]` masked positions; rows are padded with weight 0.
        weights: `[B, P]`, 1 for real predictions.
        labels: int `[B, P]` the original tokens at `positions`.
        fills: int `[B, P]` the generator's tokens for `positions`.

    Returns:
        `(original, corrupted, replaced)`: int `[B, T]`, int `[B, T]` and float32 `[B, T]`
        (1 where `corrupted` differs from `original`; a sampled original token counts as
        original, as in the paper).
    """
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    positions = tf.convert_to_tensor(positions, tf.int32)
    real = tf.convert_to_tensor(weights) > 0
    current = tf.gather(token_ids, positions, batch_dims=1)
    rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
    index = tf.stack([rows, positions], axis=-1)
    # Padding predictions rewrite their position with the value it already holds.
    original = tf.tensor_scatter_nd_update(token_ids, index, tf.where(real, labels, current))
    kept = tf.gather(original, positions, batch_dims=1)
    corrupted = tf.tensor_scatter_nd_update(original, index, tf.where(real, fills, kept))
    return original, corrupted, tf.cast(tf.not_equal(corrupted, original), tf.float32)


@keras.saving.register_keras_serializable(package="tfpretrain")
class ElectraPretrainer(keras.Model):
    """Generator + discriminator, trained with `mlm_loss + rtd_weight * rtd_loss`.

    Args:
        encoder: the discriminator's `BertEncoder` (what `finetune --init` later reads).
        generator_layers: transformer blocks of the generator.
        generator_intermediate_dim: their feed-forward width (default: the encoder's / 4).
        rtd_weight: weight of the replaced-token-detection loss (the paper's 50).
        seed: seed of the generator's samples.
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: masked-LM batch inputs (`token_ids`, `segment_ids`, `padding_mask`,
            `mask_positions`) plus `mlm_labels` and `mlm_weights` (`[B, P]`).
        training: sample the fills from the generator; otherwise take its likeliest tokens
            (a deterministic validation).

    Returns:
        dict: `mlm` generator logits `[B, P, V]`, `rtd` discriminator logits `[B, T]`,
        `replaced` the discriminator's targets `[B, T]`.

    Example:

    >>> from tfpretrain.models.bert import BertConfig
    >>> model = ElectraPretrainer(BertEncoder(BertConfig.preset("tiny", vocabulary_size=100)))
    >>> [m.name for m in (model.generator, model.discriminator)]
    ['generator', 'discriminator']
    """

    def __init__(
        self,
        encoder: BertEncoder,
        generator_layers: int = 1,
        generator_intermediate_dim: int | None = None,
        rtd_weight: float = 50.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(generator_layers) < 1:
            raise ValueError(f"generator_layers must be >= 1; got {generator_layers}.")
        c = encoder.config
        self.encoder = encoder
        self.generator_layers = int(generator_layers)
        self.generator_intermediate_dim = int(
            generator_intermediate_dim or max(c.intermediate_dim // 4, 1)
        )
        self.rtd_weight = float(rtd_weight)
        self.seed = seed
        init = c.initializer

        inputs = {
            name: keras.Input((None,), dtype="int32", name=name)
            for name in (*ENCODER_INPUTS, "mask_positions")
        }
        embedded = keras.Model(
            encoder.input, encoder.get_layer("embeddings_dropout").output, name="shared_embeddings"
        )
        x = embedded({k: inputs[k] for k in ENCODER_INPUTS})
        for i in range(self.generator_layers):
            block = c.block(f"generator_layer_{i}", self.generator_intermediate_dim)
            x = block(x, attention_mask=inputs["padding_mask"])
        selected = ops.take_along_axis(x, inputs["mask_positions"][:, :, None], axis=1)
        head = MaskedLMHead(
            encoder.token_embedding,
            activation=c.activation,
            layer_norm_epsilon=c.layer_norm_epsilon,
            kernel_initializer=init(),
            name="generator_head",
        )
        self.generator = keras.Model(inputs, head(selected), name="generator")

        enc_inputs = {
            name: keras.Input((None,), dtype="int32", name=name) for name in ENCODER_INPUTS
        }
        h = encoder(enc_inputs)["sequence_output"]
        h = keras.layers.Dense(
            c.hidden_dim, activation=c.activation, kernel_initializer=init(), name="rtd_transform"
        )(h)
        logit = keras.layers.Dense(1, kernel_initializer=init(), dtype="float32", name="rtd_logit")(
            h
        )
        self.discriminator = keras.Model(enc_inputs, ops.squeeze(logit, -1), name="discriminator")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "mlm_loss", "rtd_loss")
        }
        self.masked_accuracy = keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")
        self.rtd_accuracy = keras.metrics.BinaryAccuracy(name="rtd_accuracy", threshold=0.0)
        self.build()

    def build(self, input_shape=None):
        self.built = True  # every variable was made with the sub-models in __init__

    def call(self, inputs, training=None):
        gen_logits = self.generator(
            {k: inputs[k] for k in (*ENCODER_INPUTS, "mask_positions")}, training=training
        )
        flat = ops.reshape(ops.cast(gen_logits, "float32"), (-1, gen_logits.shape[-1]))
        if training:
            fills = keras.random.categorical(ops.stop_gradient(flat), 1, seed=self.seed_generator)
        else:
            fills = ops.argmax(flat, axis=-1)
        fills = ops.reshape(ops.cast(fills, "int32"), ops.shape(inputs["mask_positions"]))
        _, corrupted, replaced = replaced_tokens(
            inputs["token_ids"],
            inputs["mask_positions"],
            inputs["mlm_weights"],
            inputs["mlm_labels"],
            fills,
        )
        rtd = self.discriminator(
            {
                "token_ids": corrupted,
                "segment_ids": inputs["segment_ids"],
                "padding_mask": inputs["padding_mask"],
            },
            training=training,
        )
        return {"mlm": gen_logits, "rtd": rtd, "replaced": replaced}

    @property
    def trainable_weights(self):
        """All trainable weights but the encoder's pooler, which no pre-training loss reads (it
        stays in the saved encoder for fine-tuning with `pooling="cls"`)."""
        unused = {id(w) for w in self.encoder.get_layer("pooler").weights}
        return [w for w in super().trainable_weights if id(w) not in unused]

    @property
    def metrics(self):
        return [*self.trackers.values(), self.masked_accuracy, self.rtd_accuracy]

    @staticmethod
    def _batch(data):
        x, y, w = keras.utils.unpack_x_y_sample_weight(data)
        labels = y["mlm"] if isinstance(y, dict) else y
        weights = w["mlm"] if isinstance(w, dict) else w
        return {**x, "mlm_labels": labels, "mlm_weights": weights}, labels, weights

    def _objective(self, data, training: bool):
        inputs, labels, weights = self._batch(data)
        out = self(inputs, training=training)
        weights = ops.cast(weights, "float32")
        per_token = keras.losses.sparse_categorical_crossentropy(
            labels, out["mlm"], from_logits=True
        )
        mlm = ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)
        real = ops.cast(inputs["padding_mask"], "float32")
        per_position = keras.losses.binary_crossentropy(
            out["replaced"][..., None], out["rtd"][..., None], from_logits=True
        )
        rtd = ops.sum(per_position * real) / ops.maximum(ops.sum(real), 1.0)
        loss = mlm + self.rtd_weight * rtd
        for name, value in (("loss", loss), ("mlm_loss", mlm), ("rtd_loss", rtd)):
            self.trackers[name].update_state(value)
        self.masked_accuracy.update_state(labels, out["mlm"], sample_weight=weights)
        self.rtd_accuracy.update_state(out["replaced"], out["rtd"], sample_weight=real)
        return loss

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._objective(data, training=True)
            scaled = (
                self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
            )
        variables = self.trainable_weights  # not the pooler's
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self._objective(data, training=False)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "generator_layers": self.generator_layers,
            "generator_intermediate_dim": self.generator_intermediate_dim,
            "rtd_weight": self.rtd_weight,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
