"""SavedModel export of text classifiers: raw strings in, class probabilities out."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.core import export_saved_model


def export_text_classifier(model: keras.Model, tokenizer, path, sequence_length: int | None = None) -> Path:
    """Exports `serve`: a batch of raw strings -> `probabilities` `[batch, num_classes]`.

    The tokenizer runs inside the graph, so the SavedModel needs only `tensorflow` and
    `tensorflow_text` (imported before loading, for its ops) to serve.

    Args:
        model: a classifier taking the tokenizer's `pack` dict and returning logits.
        tokenizer: a tokenizer layer with `pack(strings, sequence_length)` (e.g.
            `WordPieceTokenizer`).
        path: the SavedModel folder.
        sequence_length: tokens per input (longer texts are truncated); default the
            tokenizer's.

    Example:

    >>> export_text_classifier(model, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> import tensorflow_text  # doctest: +SKIP
    >>> tf.saved_model.load("out/saved_model").signatures["serve"](strings=tf.constant(["great film"]))
    """
    length = int(sequence_length or tokenizer.sequence_length)

    def serve(strings):
        logits = model(tokenizer.pack(strings, length), training=False)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    spec = [tf.TensorSpec((None,), tf.string, name="strings")]
    return export_saved_model(path, {"serve": (serve, spec)}, [model, tokenizer])
