"""Masked-LM training data: packing into `[CLS] ... [SEP]` sequences and dynamic 80/10/10 masking.

The corpus is streamed: lines are tokenized, packed and masked inside the `tf.data` pipeline
as it is read, so memory does not grow with the corpus. The masking runs after shuffling and
batching, with stateless
draws seeded per batch from a stream that changes every pass, so each epoch draws new positions
and new replacement tokens, as RoBERTa's "dynamic masking" does, instead of BERT's fixed
pre-computed masks; the same seed still gives the same masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from tfpretrain.data.pipeline import seed_stream, shard_by_element
from tfpretrain.text.wordpiece import WordPieceTokenizer

# Rows (or NSP pairs, or lines drawn as random second sentences) shuffled at a time: a
# streamed corpus is shuffled within this window; a smaller one is shuffled whole.
SHUFFLE_BUFFER = 10_000
# Lines tokenized per call of the tokenizer.
TOKENIZE_BATCH = 256


def default_max_predictions(sequence_length: int, mask_rate: float = 0.15) -> int:
    """Room for `mask_rate` of a sequence's tokens (BERT: 20 for 128 tokens)."""
    return max(1, math.ceil(sequence_length * mask_rate))


def mask_tokens(
    token_ids: tf.RaggedTensor,
    tokenizer: WordPieceTokenizer,
    max_predictions: int,
    mask_rate: float = 0.15,
    mask_token_rate: float = 0.8,
    random_token_rate: float = 0.1,
    seed: tf.Tensor | Sequence[int] | None = None,
) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """Selects `mask_rate` of each row's real tokens and masks them with BERT's 80/10/10 rule.

    Of the selected tokens, `mask_token_rate` become [MASK], `random_token_rate` a random token
    of the vocabulary and the rest stay unchanged. Special tokens ([CLS], [SEP], [PAD], ...)
    are never selected. Each row selects `ceil(mask_rate * selectable tokens)` positions, at
    most `max_predictions`.

    The draws are stateless: the same `seed` gives the same masks, whatever the order in which
    a parallel `tf.data` map runs the batches, and a new seed per batch and epoch gives new masks.

    Args:
        token_ids: ragged int `[B, None]` packed sequences.
        tokenizer: gives the special ids and the vocabulary size.
        max_predictions: the most tokens selected per row.
        mask_rate, mask_token_rate, random_token_rate: the rates above.
        seed: int `[2]` seed of the draws; `None` draws one.

    Returns:
        `(masked_ids, positions, labels)`, ragged `[B, None]` int64 each: the corrupted
        sequences, the selected positions in increasing order and the original ids there.

    Example:

    >>> ids = tf.ragged.constant([[2, 7, 8, 9, 3]], tf.int64)
    >>> masked, positions, labels = mask_tokens(ids, tokenizer, max_predictions=2, seed=[0, 1])
    """
    if not 0 < mask_rate < 1:
        raise ValueError(f"mask_rate must be in (0, 1); got {mask_rate}.")
    if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
        raise ValueError("mask_token_rate and random_token_rate must be >= 0 and sum to at most 1.")
    if max_predictions < 1:
        raise ValueError(f"max_predictions must be >= 1; got {max_predictions}.")
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    select_seed, choose_seed, token_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    )
    ids = tf.cast(token_ids, tf.int64)
    dense = ids.to_tensor(default_value=-1)  # -1 marks the padding of short rows
    special = tf.constant(tokenizer.special_ids, tf.int64)
    selectable = (dense >= 0) & ~tf.reduce_any(tf.equal(dense[..., None], special), axis=-1)
    count = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
    k = tf.minimum(tf.cast(tf.math.ceil(count * mask_rate), tf.int64), max_predictions)

    # A random score per token, unselectable ones last: the k lowest scores are a uniform draw
    # of k selectable positions without replacement.
    length = tf.shape(dense, out_type=tf.int64)[1]
    scores = tf.where(selectable, tf.random.stateless_uniform(tf.shape(dense), select_seed), 2.0)
    width = tf.minimum(tf.cast(max_predictions, tf.int64), length)
    _, order = tf.math.top_k(-scores, k=tf.cast(width, tf.int32))
    keep = tf.range(width)[None, :] < k[:, None]
    positions = tf.sort(tf.where(keep, tf.cast(order, tf.int64), length), axis=1)  # text order
    positions = tf.RaggedTensor.from_tensor(positions, lengths=k)

    flat = positions.values + tf.repeat(ids.row_starts(), k)  # into ids.flat_values
    labels = tf.gather(ids.flat_values, flat)
    draw = tf.random.stateless_uniform(tf.shape(flat), choose_seed)
    random_ids = tf.random.stateless_uniform(
        tf.shape(flat), token_seed, minval=0, maxval=tokenizer.vocabulary_size, dtype=tf.int64
    )
    values = tf.where(
        draw < mask_token_rate,
        tf.constant(tokenizer.mask_id, tf.int64),
        tf.where(draw < mask_token_rate + random_token_rate, random_ids, labels),
    )
    masked = ids.with_flat_values(
        tf.tensor_scatter_nd_update(ids.flat_values, flat[:, None], values)
    )
    return masked, positions, positions.with_values(labels)


def _to_model_batch(
    ids, segments, seed, tokenizer, sequence_length, max_predictions, mask_rate, nsp_labels=None
):
    masked, positions, labels = mask_tokens(ids, tokenizer, max_predictions, mask_rate, seed=seed)
    token_ids, padding_mask = tf_text.pad_model_inputs(
        masked, sequence_length, pad_value=tokenizer.pad_id
    )
    segment_ids, _ = tf_text.pad_model_inputs(segments, sequence_length, pad_value=0)
    mask_positions, mask_weights = tf_text.pad_model_inputs(positions, max_predictions, pad_value=0)
    mask_labels, _ = tf_text.pad_model_inputs(labels, max_predictions, pad_value=0)
    x = {
        "token_ids": tf.cast(token_ids, tf.int32),
        "segment_ids": tf.cast(segment_ids, tf.int32),
        "padding_mask": tf.cast(padding_mask, tf.int32),
        "mask_positions": tf.cast(mask_positions, tf.int32),
    }
    y = {"mlm": tf.cast(mask_labels, tf.int32)}
    weights = {"mlm": tf.cast(mask_weights, tf.float32)}
    if nsp_labels is not None:
        y["nsp"] = nsp_labels
        weights["nsp"] = tf.ones_like(nsp_labels, tf.float32)
    return x, y, weights


def _line_stream(lines) -> tf.data.Dataset:
    """The non-blank lines of a list or a dataset of strings, as a dataset; empty is an error."""
    if isinstance(lines, tf.data.Dataset):
        if lines.element_spec != tf.TensorSpec([], tf.string):
            raise ValueError(f"lines must be scalar strings; got {lines.element_spec}.")
        stream = lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)
        if _count(stream, 1) == 0:
            raise ValueError("The corpus is empty (no non-blank lines).")
        return stream
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError("The corpus is empty (no non-blank lines).")
    return tf.data.Dataset.from_tensor_slices(tf.constant(lines, tf.string))


def _count(dataset: tf.data.Dataset, at_most: int = -1) -> int:
    """How many elements `dataset` has, counting no further than `at_most` (a short read;
    -1: all of them)."""
    return int(dataset.take(at_most).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _known_length(ds: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    """`ds` with its length declared: Keras' `evaluate` warns of data that "ran out" when a
    data set of unknown length (a streamed one) ends."""
    return ds.apply(tf.data.experimental.assert_cardinality(batches))


def _token_rows(lines: tf.data.Dataset, tokenizer, chunk: int) -> tf.data.Dataset:
    """The corpus' token stream cut into consecutive rows of `chunk` ids (the last partial row
    dropped), tokenized a batch of lines at a time as the stream is read."""
    ids = lines.batch(TOKENIZE_BATCH).map(
        lambda batch: tf.cast(tokenizer.tokenize(batch).flat_values, tf.int64),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ids.rebatch(chunk, drop_remainder=True)


def mlm_dataset(
    lines: Sequence[str] | tf.data.Dataset,
    tokenizer: WordPieceTokenizer,
    sequence_length: int = 128,
    batch_size: int = 32,
    mask_rate: float = 0.15,
    max_predictions: int | None = None,
    nsp: bool = False,
    shuffle: bool = True,
    repeat: bool = False,
    seed: int | None = None,
    rerandomize_each_iteration: bool = True,
) -> tf.data.Dataset:
    """A masked-LM training set of `(inputs, targets, sample_weights)` batches for `BertMaskedLM`.

    The lines are streamed: tokenized, packed and masked as the pipeline reads them, so a
    dataset of lines read from files (`corpus_dataset`) is never held in memory; only the
    shuffle window (`SHUFFLE_BUFFER` rows, pairs or lines) is. A corpus smaller than the window
    is shuffled whole; a larger one within the window, in the corpus' order otherwise.

    Without NSP, the text is packed contiguously into `[CLS] tokens [SEP]` rows (segment ids 0;
    RoBERTa's FULL-SENTENCES packing: text runs on across lines, the last partial row is
    dropped). With `nsp=True`, each example is `[CLS] A [SEP] B [SEP]` where A is a line and B
    is the line after it half of the time and a random line from the shuffle window otherwise
    (label 1 = B follows A, 0 = not); pairs are drawn anew every epoch, and long pairs are
    trimmed round-robin to fit.

    Args:
        lines: the corpus, one sentence/paragraph per item (consecutive lines are neighbours):
            a list of strings or a `tf.data.Dataset` of scalar strings.
        tokenizer: the `WordPieceTokenizer`.
        sequence_length: tokens per row including [CLS] and [SEP].
        batch_size: rows per batch (partial batches are dropped so shapes stay static).
        mask_rate: fraction of tokens to predict.
        max_predictions: predictions per row (padded); default `ceil(sequence_length * mask_rate)`.
        nsp: build next-sentence-prediction pairs.
        shuffle: shuffle rows (or pairs) every epoch.
        repeat: repeat forever (use with `steps_per_epoch`).
        seed: seed of the shuffle, the masks and the NSP pairs.
        rerandomize_each_iteration: new masks (and NSP pairs) on every pass over the data; `False`
            gives every pass the same ones, as a validation set should.

    Returns:
        A dataset of `(x, y, w)`: `x` has `token_ids`, `segment_ids`, `padding_mask`,
        `mask_positions` (`[B, L]`/`[B, P]` int32); `y` has `mlm` labels `[B, P]` (and `nsp` `[B]`);
        `w` weighs real predictions 1 and padding 0.

    Raises:
        ValueError: the corpus is empty or too short for one batch (found by reading only as
            far as one batch needs).

    Example:
        >>> ds = mlm_dataset(corpus_dataset("notes.txt"), tokenizer, 128, 32, repeat=True)
    """
    if sequence_length < 4 or sequence_length > 100_000:
        raise ValueError(f"sequence_length must be >= 4; got {sequence_length}.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
    max_predictions = max_predictions or default_max_predictions(sequence_length, mask_rate)
    # Lines in memory give a data set of known length when it does not repeat.
    known = not repeat and not isinstance(lines, tf.data.Dataset)
    lines = _line_stream(lines)
    auto = tf.data.AUTOTUNE

    if not nsp:
        chunk = sequence_length - 2
        rows = _token_rows(lines, tokenizer, chunk)
        filled = _count(rows, batch_size)
        if filled == 0:
            tokens = _count(_token_rows(lines, tokenizer, 1), chunk)
            raise ValueError(
                f"The corpus has {tokens} tokens, fewer than one sequence of {chunk}; give more "
                "text or a smaller --seq-len."
            )
        if filled < batch_size:
            raise ValueError(
                f"The corpus fills only {filled} sequences of {sequence_length} tokens, fewer "
                f"than one batch of {batch_size}; give more text or a smaller "
                "--batch-size/--seq-len."
            )
        ds = rows
        if shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=True)
        if known:
            ds = _known_length(ds, _count(rows) // batch_size)

        def to_batch(chunks, mask_seed):
            ragged = tf.RaggedTensor.from_tensor(chunks)
            packed, segments = tf_text.combine_segments(
                [ragged], start_of_sequence_id=tokenizer.cls_id, end_of_segment_id=tokenizer.sep_id
            )
            return _to_model_batch(
                packed, segments, mask_seed, tokenizer, sequence_length, max_predictions, mask_rate
            )

        ds = tf.data.Dataset.zip(ds, seed_stream(seed, rerandomize_each_iteration))
        return shard_by_element(ds.map(to_batch, num_parallel_calls=auto).prefetch(auto))

    needed = max(2, batch_size)
    count = _count(lines, needed)
    if count < needed:
        raise ValueError(f"NSP needs at least {needed} lines; the corpus has {count}.")
    ids = lines.batch(TOKENIZE_BATCH).map(
        lambda batch: tf.cast(tokenizer.tokenize(batch), tf.int64), num_parallel_calls=auto
    )
    numbered = ids.unbatch().enumerate()
    # (index of A, A, the line after A); the last line starts no pair.
    pairs = tf.data.Dataset.zip(numbered, ids.unbatch().skip(1)).map(
        lambda first, following: (first[0], first[1], following)
    )
    if shuffle:
        pairs = pairs.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        pairs = pairs.repeat()
    elif known:
        pairs = _known_length(pairs, _count(lines) - 1)
    # Random second sentences: lines drawn from a shuffled window of the stream, with their index.
    others = numbered.shuffle(
        SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=rerandomize_each_iteration
    ).repeat()
    trimmer = tf_text.RoundRobinTrimmer(max_seq_length=sequence_length - 3)

    def make_pair(pair, other, pair_seed):
        i, a, following = pair
        j, random_line = other
        next_seed, mask_seed = tf.unstack(tf.random.experimental.stateless_split(pair_seed, 2))
        is_next = tf.random.stateless_uniform([], next_seed) < 0.5
        b = tf.cond(is_next, lambda: following, lambda: random_line)
        label = tf.logical_or(is_next, tf.equal(j, i + 1))  # a random line may be the next one
        return a, b, tf.cast(label, tf.int32), mask_seed

    ds = tf.data.Dataset.zip(pairs, others, seed_stream(seed, rerandomize_each_iteration))
    ds = ds.map(make_pair, num_parallel_calls=auto).ragged_batch(batch_size, drop_remainder=True)

    def to_pair_batch(a, b, label, mask_seeds):
        a, b = trimmer.trim([a, b])
        packed, segments = tf_text.combine_segments(
            [a, b], start_of_sequence_id=tokenizer.cls_id, end_of_segment_id=tokenizer.sep_id
        )
        return _to_model_batch(
            packed,
            segments,
            mask_seeds[0],
            tokenizer,
            sequence_length,
            max_predictions,
            mask_rate,
            label,
        )

    return shard_by_element(ds.map(to_pair_batch, num_parallel_calls=auto).prefetch(auto))
