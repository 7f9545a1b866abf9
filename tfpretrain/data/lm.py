"""Language-model data: a text corpus, a token stream, and `tf.data` windows of `seq_len + 1`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def split_tokens(
    tokens: np.ndarray, validation_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """The first `1 - validation_fraction` of the stream for training, the rest for validation."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction}.")
    tokens = np.asarray(tokens, dtype=np.int32)
    cut = int(len(tokens) * (1.0 - validation_fraction))
    return tokens[:cut], tokens[cut:]


def _check_length(tokens: np.ndarray, seq_len: int, what: str) -> None:
    if seq_len <= 0:
        raise ValueError(f"--seq-len must be > 0; got {seq_len}.")
    if len(tokens) < seq_len + 1:
        raise ValueError(
            f"The {what} token stream has {len(tokens)} tokens, fewer than seq_len + 1 = "
            f"{seq_len + 1}; use a longer corpus or a smaller --seq-len."
        )


def _windows(tokens: tf.Tensor, offsets: tf.Tensor, seq_len: int):
    """`[N]` offsets -> inputs and next-token targets `[N, seq_len]` from one gather."""
    index = offsets[:, None] + tf.range(seq_len + 1, dtype=offsets.dtype)[None, :]
    window = tf.gather(tokens, index)
    return window[:, :-1], window[:, 1:]


def lm_train_dataset(tokens, seq_len: int, batch_size: int, seed: int = 0) -> tf.data.Dataset:
    """An endless stream of batches of windows at uniformly random offsets (nanoGPT's sampling).

    Each element is `(inputs, targets)`, both int32 `[batch_size, seq_len]`, with
    `targets[:, t] == inputs[:, t + 1]`. The same seed gives the same batches.
    """
    tokens = np.asarray(tokens, dtype=np.int32)
    _check_length(tokens, seq_len, "training")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; got {batch_size}.")
    stream = tf.constant(tokens)
    count = len(tokens) - seq_len
    offsets = tf.data.Dataset.random(seed=seed).map(lambda r: tf.cast(r % count, tf.int32))
    batches = offsets.batch(batch_size, drop_remainder=True)
    return batches.map(
        lambda o: _windows(stream, o, seq_len), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)


def lm_eval_dataset(tokens, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """Every non-overlapping window of the stream, in order: a fixed validation set."""
    tokens = np.asarray(tokens, dtype=np.int32)
    _check_length(tokens, seq_len, "validation")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; got {batch_size}.")
    count = (len(tokens) - 1) // seq_len
    offsets = np.arange(count, dtype=np.int32) * seq_len
    x, y = _windows(tf.constant(tokens), tf.constant(offsets), seq_len)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
