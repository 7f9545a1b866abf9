"""T5's span-corruption objective as a `tf.data` transformation over token id sequences.

About `noise_density` of each sequence's tokens are dropped in spans of mean length
`mean_span_length`; the input keeps the rest with one sentinel per dropped span, and the target
lists the sentinels, each followed by the span it replaced (Raffel et al., 2020, section 3.1.4):

    tokens  a b c d e f g h
    inputs  a b <S0> e f <S1> h </s>
    targets <S0> c d <S1> g <S2> </s>

With `full_targets` the target is the whole original sequence instead (`a b c d e f g h </s>`,
the "text infilling" of BART, Lewis et al., 2020): the decoder learns to copy its input as well
as to fill the gaps, which is most of what text-to-text tasks such as punctuation restoration
ask of it, at the price of targets as long as the text.

Sentinel k is token id `sentinel_start + k` (with `descending_sentinels`, T5's order,
`sentinel_start + num_sentinels - 1 - k`); the spans are drawn anew every epoch.
"""

from __future__ import annotations

import tensorflow as tf

from tfpretrain.data.pipeline import seed_stream


def span_counts(length: int, noise_density: float, mean_span_length: float, num_sentinels: int):
    """(noise tokens, spans) for a sequence of `length` tokens; fixed for a given length."""
    num_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    num_spans = max(int(round(num_noise / mean_span_length)), 1)
    return num_noise, min(num_spans, num_noise, num_sentinels)


def corrupted_lengths(
    length: int,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    num_sentinels: int = 100,
    full_targets: bool = False,
) -> tuple[int, int]:
    """Lengths of the inputs and targets (end tokens included) made from `length` tokens."""
    num_noise, num_spans = span_counts(length, noise_density, mean_span_length, num_sentinels)
    targets = length + 1 if full_targets else num_noise + num_spans + 1
    return length - num_noise + num_spans + 1, targets


def _random_segmentation(num_items, num_segments, seed):
    """Lengths `[num_segments]` (each >= 1, summing to `num_items`) of a uniformly random split."""
    # Choose num_segments - 1 of the num_items - 1 gaps between items as segment boundaries.
    gaps = tf.range(num_items - 1) < num_segments - 1
    order = tf.argsort(tf.random.stateless_uniform([num_items - 1], seed))
    starts = tf.concat([[True], tf.gather(gaps, order)], axis=0)
    segment_ids = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    return tf.math.unsorted_segment_sum(tf.ones_like(segment_ids), segment_ids, num_segments)


def noise_mask(length, num_noise, num_spans, seed):
    """Boolean `[length]`: True for dropped tokens, in `num_spans` spans after kept runs."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    noise_lengths = _random_segmentation(num_noise, num_spans, seeds[0])
    kept_lengths = _random_segmentation(length - num_noise, num_spans, seeds[1])
    interleaved = tf.reshape(tf.stack([kept_lengths, noise_lengths], axis=1), [-1])
    span_starts = tf.math.cumsum(interleaved)[:-1]
    starts = tf.scatter_nd(span_starts[:, None], tf.ones_like(span_starts), [length])
    span_number = tf.cumsum(starts)
    return tf.equal(span_number % 2, 1)


def _replace_spans(token_ids, mask, sentinel_start, num_sentinels: int, descending: bool):
    """Replaces each run of True in `mask` by one sentinel, numbered in order of the runs."""
    previous = tf.concat([[False], mask[:-1]], axis=0)
    first = tf.logical_and(mask, tf.logical_not(previous))
    k = tf.cumsum(tf.cast(first, tf.int32)) - 1
    sentinels = sentinel_start + (num_sentinels - 1 - k if descending else k)
    ids = tf.where(first, sentinels, token_ids)
    return tf.boolean_mask(ids, tf.logical_or(first, tf.logical_not(mask)))


def corrupt_spans(
    token_ids,
    seed,
    *,
    sentinel_start: int,
    eos_id: int,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    num_sentinels: int = 100,
    descending_sentinels: bool = False,
    full_targets: bool = False,
):
    """Span corruption of one int32 sequence `[L]` (L >= 2, static) with a stateless `[2]` seed.

    Returns:
        `{"inputs": [L - noise + spans + 1], "targets": [noise + spans + 1]}` (`[L + 1]`, the
        sequence itself, with `full_targets`), both ending with `eos_id`.

    Raises:
        tf.errors.InvalidArgumentError: a token id is already a sentinel id (>= `sentinel_start`).
    """
    token_ids = tf.cast(token_ids, tf.int32)
    length = token_ids.shape[0]
    if length is None or length < 2:
        raise ValueError(f"Span corruption needs sequences of a known length >= 2; got {length}.")
    num_noise, num_spans = span_counts(length, noise_density, mean_span_length, num_sentinels)
    check = tf.debugging.assert_less(
        token_ids,
        tf.constant(sentinel_start, tf.int32),
        message=(
            f"Token ids must be below the first sentinel id {sentinel_start}: the tokenizer's "
            "vocabulary overlaps the sentinel tokens; use more sentinel-free ids (a larger "
            "model vocabulary) or a smaller tokenizer vocabulary."
        ),
    )
    with tf.control_dependencies([check]):
        mask = noise_mask(length, num_noise, num_spans, seed)
    eos = tf.constant([eos_id], tf.int32)
    order = (num_sentinels, descending_sentinels)
    inputs = _replace_spans(token_ids, mask, sentinel_start, *order)
    if full_targets:
        targets = token_ids
    else:
        targets = _replace_spans(token_ids, tf.logical_not(mask), sentinel_start, *order)
    in_len, out_len = corrupted_lengths(
        length, noise_density, mean_span_length, num_sentinels, full_targets
    )
    inputs = tf.ensure_shape(tf.concat([inputs, eos], 0), [in_len])
    targets = tf.ensure_shape(tf.concat([targets, eos], 0), [out_len])
    return {"inputs": inputs, "targets": targets}


def span_corruption(
    dataset: tf.data.Dataset,
    *,
    sentinel_start: int,
    eos_id: int,
    noise_density: float = 0.15,
    mean_span_length: float = 3.0,
    num_sentinels: int = 100,
    seed: int = 0,
    rerandomize_each_iteration: bool = True,
    descending_sentinels: bool = False,
    full_targets: bool = False,
) -> tf.data.Dataset:
    """Maps a data set of fixed-length int token sequences to `{"inputs", "targets"}` pairs.

    Each pass over the result (each epoch) draws new spans unless
    `rerandomize_each_iteration` is False (fixed spans, e.g. for held-out evaluation).

    Args:
        dataset: elements are int32 `[L]` token ids, L static (e.g. from `Dataset.batch(L,
            drop_remainder=True)` over a token stream).
        sentinel_start: id of sentinel 0; sentinel k is `sentinel_start + k`.
        eos_id: appended to inputs and targets.
        noise_density: fraction of tokens dropped, in (0, 1).
        mean_span_length: mean length of a dropped span, >= 1.
        num_sentinels: sentinel ids available; caps the number of spans per sequence.
        seed: seed of the span draws.
        rerandomize_each_iteration: new spans every epoch.
        descending_sentinels: sentinel 0 is the highest id (T5's `<extra_id_0>`).
        full_targets: the target is the whole sequence, not only its dropped spans.

    Returns:
        A data set of `{"inputs": int32 [I], "targets": int32 [J]}`.

    Example:

    >>> ids = tf.data.Dataset.range(64).batch(32, drop_remainder=True)
    >>> pairs = span_corruption(ids, sentinel_start=100, eos_id=1)
    """
    if not 0.0 < noise_density < 1.0:
        raise ValueError(f"noise_density must be in (0, 1); got {noise_density}.")
    if not mean_span_length >= 1.0:
        raise ValueError(f"mean_span_length must be >= 1; got {mean_span_length}.")
    if num_sentinels < 1:
        raise ValueError(f"num_sentinels must be >= 1; got {num_sentinels}.")
    if not 0 <= eos_id < sentinel_start:
        raise ValueError(f"eos_id ({eos_id}) must be below sentinel_start ({sentinel_start}).")

    def corrupt(ids, s):
        return corrupt_spans(
            ids,
            s,
            sentinel_start=sentinel_start,
            eos_id=eos_id,
            noise_density=noise_density,
            mean_span_length=mean_span_length,
            num_sentinels=num_sentinels,
            descending_sentinels=descending_sentinels,
            full_targets=full_targets,
        )

    return tf.data.Dataset.zip(dataset, seed_stream(seed, rerandomize_each_iteration)).map(
        corrupt, num_parallel_calls=tf.data.AUTOTUNE
    )
