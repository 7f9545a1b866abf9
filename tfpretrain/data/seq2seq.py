"""Batches for encoder-decoder training:
`({encoder_token_ids, decoder_token_ids}, targets, weights)`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfpretrain.models.t5 import DECODER_IDS, ENCODER_IDS


def teacher_forcing(inputs, targets, pad_id: int):
    """One example to the model's `(x, y, sample_weight)`: the decoder sees
    `[pad] + targets[:-1]`."""
    decoder_inputs = tf.concat([[pad_id], targets[:-1]], axis=0)
    weights = tf.cast(tf.not_equal(targets, pad_id), tf.float32)
    return {ENCODER_IDS: inputs, DECODER_IDS: decoder_inputs}, targets, weights


def seq2seq_batches(
    pairs: tf.data.Dataset,
    batch_size: int,
    *,
    pad_id: int,
    encoder_length: int,
    decoder_length: int,
    shuffle_buffer: int = 0,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Pads `{"inputs", "targets"}` pairs to fixed `[batch, encoder_length]` / `[batch,
    decoder_length]` shapes (one XLA compilation), with padded target positions weighted 0.

    Args:
        pairs: elements `{"inputs": int32 [I], "targets": int32 [J]}` with I <= encoder_length,
            J <= decoder_length.
        batch_size: examples per batch (the global batch under a strategy).
        pad_id: padding id (also the decoder start token).
        encoder_length, decoder_length: padded lengths.
        shuffle_buffer: shuffle examples with this buffer before batching (0: keep the order).
        seed: shuffle seed.
        drop_remainder: drop a last partial batch.
    """
    if shuffle_buffer:
        pairs = pairs.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    examples = pairs.map(
        lambda p: teacher_forcing(p["inputs"], p["targets"], pad_id),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    shapes = (
        {ENCODER_IDS: [encoder_length], DECODER_IDS: [decoder_length]},
        [decoder_length],
        [decoder_length],
    )
    values = ({ENCODER_IDS: pad_id, DECODER_IDS: pad_id}, pad_id, 0.0)
    return examples.padded_batch(
        batch_size, padded_shapes=shapes, padding_values=values, drop_remainder=drop_remainder
    ).prefetch(tf.data.AUTOTUNE)


def text_pairs(
    inputs: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    eos_id: int,
    encoder_length: int,
    decoder_length: int,
) -> tf.data.Dataset:
    """`{"inputs", "targets"}` pairs from tokenized texts, each ending with `eos_id`.

    Raises:
        ValueError: an input tokenizes to nothing, or an input / target (with its end token)
            is longer than the encoder / decoder context.
    """
    if len(inputs) != len(targets) or not len(inputs):
        raise ValueError(
            f"Need the same positive number of inputs and targets; got {len(inputs)} and "
            f"{len(targets)}."
        )
    ins, outs = [], []
    for n, (a, b) in enumerate(zip(inputs, targets, strict=True)):
        if len(a) == 0:
            raise ValueError(f"Example {n}: the input tokenizes to nothing; remove empty inputs.")
        if len(a) + 1 > encoder_length:
            raise ValueError(
                f"Example {n}: the input has {len(a) + 1} tokens (end token included), more than "
                f"the encoder context of {encoder_length}; shorten it or raise the encoder length."
            )
        if len(b) + 1 > decoder_length:
            raise ValueError(
                f"Example {n}: the target has {len(b) + 1} tokens (end token included), more than "
                f"the decoder context of {decoder_length}; shorten the targets or raise the "
                "decoder length."
            )
        ins.append(np.append(np.asarray(a, np.int32), eos_id).astype(np.int32))
        outs.append(np.append(np.asarray(b, np.int32), eos_id).astype(np.int32))

    def ragged(rows):
        return tf.RaggedTensor.from_row_lengths(np.concatenate(rows), [len(r) for r in rows])

    return tf.data.Dataset.from_tensor_slices({"inputs": ragged(ins), "targets": ragged(outs)})
