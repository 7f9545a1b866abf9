"""A text classifier on top of any encoder that returns `sequence_output` (and maybe
`pooled_output`)."""

from __future__ import annotations

import keras
from keras import ops

from tfpretrain.layers.dropout import Dropout
from tfpretrain.models.bert import HuggingFaceFolders


@keras.saving.register_keras_serializable(package="tfpretrain")
class MaskedMeanPooling(keras.layers.Layer):
    """Averages `[B, T, H]` hidden states over the positions where `padding_mask` is 1.

    Call arguments:
        sequence: `[B, T, H]`.
        padding_mask: `[B, T]`, 1 for real tokens.

    Returns:
        `[B, H]`.

    Example:

    >>> MaskedMeanPooling()(keras.ops.ones((2, 3, 4)), keras.ops.ones((2, 3))).shape
    TensorShape([2, 4])
    """

    def call(self, sequence, padding_mask):
        mask = ops.cast(padding_mask, sequence.dtype)[:, :, None]
        total = ops.sum(sequence * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), ops.cast(1.0, sequence.dtype))

    def compute_output_shape(self, sequence_shape, padding_mask_shape):
        return (sequence_shape[0], sequence_shape[-1])


@keras.saving.register_keras_serializable(package="tfpretrain")
class TextClassifier(HuggingFaceFolders, keras.Model):
    """Encoder + pooling + dropout + a dense layer giving class logits.

    Works with any encoder model whose input is a dict of `[B, T]` tensors (including
    `padding_mask`) and whose output dict has `sequence_output` `[B, T, H]`; `pooling="cls"`
    uses its `pooled_output` when it has one (BERT's tanh pooler), else the first position.

    Args:
        encoder: the encoder model, e.g. `BertEncoder`.
        num_classes: number of classes, >= 2.
        pooling: "cls" or "mean" (masked mean over real tokens).
        dropout: dropout rate before the output layer.
        label_names: optional name of each class (a fine-tuned checkpoint's `id2label`).
        **kwargs: standard `keras.Model` arguments.

    Call arguments:
        inputs: the encoder's input dict.

    Returns:
        float32 logits `[B, num_classes]`.

    Example:

    >>> from tfpretrain.models.bert import BertConfig, BertEncoder
    >>> model = TextClassifier(BertEncoder(BertConfig.preset("tiny", vocabulary_size=100)), 2)
    >>> ids = keras.ops.ones((3, 8), "int32")
    >>> model({"token_ids": ids, "segment_ids": ids * 0, "padding_mask": ids}).shape
    TensorShape([3, 2])
    """

    hf_head = "classifier"  # `*ForSequenceClassification` folders, their id2label kept

    def __init__(
        self,
        encoder: keras.Model,
        num_classes: int,
        pooling: str = "cls",
        dropout: float = 0.1,
        label_names: list[str] | None = None,
        **kwargs,
    ):
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}.")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean'; got {pooling!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        if label_names is not None and len(label_names) != int(num_classes):
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes.")
        inputs = {
            name: keras.Input((None,), dtype=t.dtype, name=name)
            for name, t in encoder.input.items()
        }
        encoded = encoder(inputs)
        if pooling == "mean":
            pooled = MaskedMeanPooling(name="mean_pooling")(
                encoded["sequence_output"], inputs["padding_mask"]
            )
        elif "pooled_output" in encoded:
            pooled = encoded["pooled_output"]
        else:
            pooled = encoded["sequence_output"][:, 0, :]
        x = Dropout(dropout, name="classifier_dropout")(pooled)
        logits = keras.layers.Dense(
            num_classes,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",
            name="logits",
        )(x)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.encoder = encoder
        self.num_classes = int(num_classes)
        self.pooling = pooling
        self.dropout = float(dropout)
        self.label_names = None if label_names is None else [str(name) for name in label_names]

    def get_config(self):
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "label_names": self.label_names,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)


def freeze_encoder(encoder: keras.Model, num_layers: int | str) -> None:
    """Freezes the embeddings and the lowest `num_layers` transformer layers ("all": the whole
    encoder).

    Layers are found as `transformer_layer_{i}`; everything before the first of them (the
    embeddings) is frozen together with them.
    """
    if num_layers in ("all", -1):
        encoder.trainable = False
        return
    n = int(num_layers)
    if n < 0:
        raise ValueError(f"freeze must be >= 0 or 'all'; got {num_layers}.")
    if n == 0:
        return
    names = [layer.name for layer in encoder.layers]
    blocks = [i for i, name in enumerate(names) if name.startswith("transformer_layer_")]
    if n > len(blocks):
        raise ValueError(
            f"Cannot freeze {n} layers: the encoder has {len(blocks)}; use 'all' to freeze it "
            "whole."
        )
    stop = blocks[n - 1]
    for layer in encoder.layers[: stop + 1]:
        layer.trainable = False
