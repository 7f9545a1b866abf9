"""SavedModel export of a masked LM: `encode` (text features) and `fill_mask` ([MASK] guesses)."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.export.checks import check_scalar, check_strings
from tfpretrain.export.core import export_saved_model
from tfpretrain.generation import require

MASK = "[MASK]"
DEFAULT_TOP_K = 5


def export_mlm(
    model: keras.Model,
    tokenizer,
    path,
    sequence_length: int | None = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    version: int | str = 1,
) -> Path:
    """Exports a `BertMaskedLM` and its WordPiece tokenizer to `path/<version>/`.

    Signatures (tokenization in the graph: serving needs only `tensorflow` and
    `tensorflow_text`):

    - `encode(strings)` (also `serving_default`): `strings` string `[N >= 1]` ->
      `pooled` float32 `[N, H]` (the pooler's [CLS] features), `sequence` float32 `[N, L, H]`
      (one vector per token) and `padding_mask` int32 `[N, L]` (1 for real tokens), with
      `L = sequence_length`; longer texts are truncated.
    - `fill_mask(strings)`: texts holding `[MASK]` (as written, any number) ->
      `tokens` string `[N, M, top_k]`, `token_ids` int32 and `probabilities` float32 of the
      same shape (the most likely tokens at each mask, most likely first) and `num_masks`
      int32 `[N]`; `M` is the most masks of a text, the rows of texts with fewer are padded
      with "" and 0.
    - `fill_mask_top_k(strings, k)`: the same for `k` int32 (a scalar in [1, vocabulary]);
      a signature has no optional inputs, so `fill_mask` is this one with `k = top_k`.

    A text without `[MASK]`, or with one past the first `L - 2` tokens, an empty or non-1-D
    batch and `k` out of range fail with `InvalidArgumentError` naming the problem.

    Args:
        model: a `BertMaskedLM` (its `encoder` gives `encode`'s features).
        tokenizer: its `WordPieceTokenizer`.
        path: the base folder, e.g. `OUT/saved_model`.
        sequence_length: tokens per text, [CLS] and [SEP] included; default the tokenizer's.
        top_k: `fill_mask`'s number of guesses per mask.
        version: the version folder (an integer, or "next").

    Returns:
        The version folder written.

    Example:

    >>> path = export_mlm(model, tokenizer, "out/saved_model")  # doctest: +SKIP
    >>> import tensorflow_text  # doctest: +SKIP
    >>> tf.saved_model.load(str(path)).signatures["fill_mask"](
    ...     strings=tf.constant(["the [MASK] sat on the mat"]))["tokens"]  # doctest: +SKIP
    """
    length = int(sequence_length or tokenizer.sequence_length)
    vocabulary_size = tokenizer.vocabulary_size
    if not 1 <= int(top_k) <= vocabulary_size:
        raise ValueError(f"top_k must be in [1, {vocabulary_size}]; got {top_k}.")
    vocabulary = tf.constant(tokenizer.vocabulary)

    def encode(strings):
        inputs = tokenizer.pack(check_strings(strings), length)
        outputs = model.encoder(inputs, training=False)
        return {
            "pooled": tf.cast(outputs["pooled_output"], tf.float32),
            "sequence": tf.cast(outputs["sequence_output"], tf.float32),
            "padding_mask": inputs["padding_mask"],
        }

    def masked_inputs(strings):
        """The model's inputs with `[MASK]` ids where the texts say `[MASK]`, and mask counts."""
        parts = tf.strings.split(strings, MASK)  # [N, masks + 1]
        pieces = tokenizer.tokenize(parts.flat_values)
        # Each piece followed by the mask id, then the last of each text's dropped.
        marks = tf.RaggedTensor.from_tensor(tf.fill([pieces.nrows(), 1], tokenizer.mask_id))
        joined = tf.concat([pieces, marks], axis=1)
        ids = tf.RaggedTensor.from_row_splits(joined, parts.row_splits).merge_dims(1, 2)
        ids = ids[:, :-1]
        written = tf.cast(parts.row_lengths() - 1, tf.int32)
        inputs = tokenizer.pack_ids(ids, length)
        found = tf.equal(inputs["token_ids"], tokenizer.mask_id)
        counts = tf.reduce_sum(tf.cast(found, tf.int32), axis=1)
        checks = require(
            [
                (written > 0, f"Every text needs at least one {MASK} to fill."),
                (
                    counts == written,
                    f"Every {MASK} must be within the first {length - 2} tokens; "
                    "shorten the texts.",
                ),
            ]
        )
        with tf.control_dependencies(checks):
            where = tf.cast(tf.where(found), tf.int32)
        positions = tf.RaggedTensor.from_value_rowids(
            where[:, 1], where[:, 0], nrows=tf.shape(strings)[0]
        ).to_tensor()
        return {**inputs, "mask_positions": positions}, counts

    def fill(strings, k):
        inputs, counts = masked_inputs(check_strings(strings))
        logits = model(inputs, training=False)["mlm"]
        probabilities, ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32)), k)
        valid = tf.sequence_mask(counts, tf.shape(ids)[1])[:, :, None]
        return {
            "tokens": tf.where(valid, tf.gather(vocabulary, ids), ""),
            "token_ids": tf.where(valid, ids, 0),
            "probabilities": tf.where(valid, probabilities, 0.0),
            "num_masks": counts,
        }

    def fill_mask(strings):
        return fill(strings, int(top_k))

    def fill_mask_top_k(strings, k):
        return fill(strings, check_scalar(k, "k", low=1, high=vocabulary_size))

    strings_spec = tf.TensorSpec((None,), tf.string, name="strings")
    endpoints = {
        "encode": (encode, [strings_spec]),
        "fill_mask": (fill_mask, [strings_spec]),
        "fill_mask_top_k": (fill_mask_top_k, [strings_spec, tf.TensorSpec([], tf.int32, name="k")]),
    }
    return export_saved_model(
        path, endpoints, [model, tokenizer], default="encode", version=version
    )
