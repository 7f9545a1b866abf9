"""Language-model data: a token stream and `tf.data` windows of `seq_len + 1`, from a token
array in memory (`lm_train_dataset`, `lm_eval_dataset`) or from a corpus streamed line by line
(`streamed_corpus`, `text_sample`, `token_windows`, `shuffled_windows`, `held_out_windows`,
`lm_stream_train`, `lm_stream_eval`); span corruption (`recipes/seq2seq.py`) shares the
streamed pieces."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfpretrain.data.pipeline import shard_by_element
from tfpretrain.data.text_files import corpus_dataset

# Lines joined into one text per tokenizer call. A tokenizer sees the line breaks inside a chunk
# as in the whole text (GPT-2's BPE makes one token of a blank line's two newlines); only the
# chunk's edges are cut.
LINES_PER_CHUNK = 256
# Tokens in the training shuffle window: about 4 MB of ids whatever the corpus' size. A corpus
# of fewer tokens (Tiny Shakespeare's million characters) is shuffled whole every pass.
SHUFFLE_TOKENS = 1 << 20


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


def text_sample(lines: tf.data.Dataset, max_characters: int) -> str:
    """The first lines of a stream, each with its newline, until `max_characters` are reached
    (the line that reaches it included): what a tokenizer is learned from, read without
    reading the rest of the corpus."""
    pieces, size = [], 0
    for batch in lines.batch(1024).as_numpy_iterator():
        for line in batch:
            pieces.append(line.decode("utf-8") + "\n")
            size += len(pieces[-1])
            if size >= max_characters:
                return "".join(pieces)
    return "".join(pieces)


def streamed_corpus(
    corpus: str, text_column: str | int | None, data_dir, max_characters: int
) -> tuple[tf.data.Dataset, str]:
    """A corpus of running text, streamed: its lines as stored (`corpus_dataset(...,
    layout=True)`) and their first `max_characters` (`text_sample`), what a tokenizer is
    learned from.

    Raises:
        ValueError: the corpus holds no text.
    """
    lines = corpus_dataset(corpus, text_column, data_dir, layout=True)
    sample = text_sample(lines, max_characters)
    if not sample.strip():
        raise ValueError(f"The corpus {corpus!r} is empty; it needs text to train on.")
    return lines, sample


def token_windows(
    lines: tf.data.Dataset, encode: Callable[[tf.Tensor], tf.RaggedTensor], seq_len: int
) -> tf.data.Dataset:
    """The token stream of a corpus' lines, cut into consecutive int32 windows `[seq_len + 1]`.

    Each line is followed by a newline, so a character model still sees the line breaks. The
    lines are encoded `LINES_PER_CHUNK` at a time, joined into one text, as the stream is read;
    the last partial window is dropped.

    Args:
        lines: a dataset of scalar strings, the lines as stored
            (`corpus_dataset(..., layout=True)`).
        encode: in-graph `[B]` strings -> ragged ids (a tokenizer's `tf_encode`).
        seq_len: the model's context; windows hold one token more, for the targets.

    Example:
        >>> windows = token_windows(corpus_dataset("input.txt", layout=True), tok.tf_encode, 64)
    """
    if seq_len <= 0:
        raise ValueError(f"--seq-len must be > 0; got {seq_len}.")

    def encode_chunk(batch):
        text = tf.strings.reduce_join(batch + "\n", keepdims=True)
        return tf.cast(encode(text).flat_values, tf.int32)

    chunks = lines.batch(LINES_PER_CHUNK).map(encode_chunk, num_parallel_calls=tf.data.AUTOTUNE)
    return chunks.rebatch(seq_len + 1, drop_remainder=True)


def _inputs_and_targets(windows: tf.Tensor):
    return windows[:, :-1], windows[:, 1:]


def shuffled_windows(
    windows: tf.data.Dataset, window_length: int, batch_size: int, seed: int = 0
) -> tf.data.Dataset:
    """Streamed windows of `window_length` tokens, endless: shuffled in a window of
    `SHUFFLE_TOKENS` tokens (`batch_size` windows at least), the stream reread and reshuffled on
    every pass. The same seed gives the same order."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; got {batch_size}.")
    buffer = max(batch_size, SHUFFLE_TOKENS // window_length)
    return windows.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()


def held_out_windows(
    windows: tf.data.Dataset, window_length: int, max_tokens: int, label: str | None = None
) -> np.ndarray:
    """The first windows of a held-out stream, up to `max_tokens` tokens (at least one
    window), read once: int32 `[N, window_length]`.

    Raises:
        ValueError: the stream has no whole window (`label` names its length in the message).
    """
    rows = list(windows.take(max(1, max_tokens // window_length)).as_numpy_iterator())
    if not rows:
        raise ValueError(
            f"The corpus is too short: its held-out part has no window of "
            f"{label or window_length} tokens; use a longer corpus or a smaller --seq-len."
        )
    return np.stack(rows).astype(np.int32)


def lm_stream_train(
    windows: tf.data.Dataset, seq_len: int, batch_size: int, seed: int = 0
) -> tf.data.Dataset:
    """Endless `(inputs, targets)` batches `[batch_size, seq_len]` from streamed windows
    (`token_windows`), shuffled by `shuffled_windows`. The same seed gives the same
    batches."""
    ds = shuffled_windows(windows, seq_len + 1, batch_size, seed)
    ds = ds.batch(batch_size, drop_remainder=True).map(_inputs_and_targets)
    return shard_by_element(ds.prefetch(tf.data.AUTOTUNE))


def lm_stream_eval(
    windows: tf.data.Dataset, seq_len: int, batch_size: int, max_tokens: int
) -> tuple[tf.data.Dataset, int]:
    """A fixed validation set: the first windows of a held-out stream, up to `max_tokens`
    tokens (`held_out_windows`), read once and kept in memory.

    Returns:
        `(dataset of (inputs, targets) batches, tokens it holds)`.

    Raises:
        ValueError: the stream has no whole window.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; got {batch_size}.")
    data = held_out_windows(windows, seq_len + 1, max_tokens, f"seq_len + 1 = {seq_len + 1}")
    ds = tf.data.Dataset.from_tensor_slices(_inputs_and_targets(data))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), int(data.size)
