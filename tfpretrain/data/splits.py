"""Seeded, stratified index draws shared by image and text data: hold-outs and samples."""

from __future__ import annotations

import warnings

import numpy as np


def _by_class(labels: np.ndarray | None, n: int) -> list[np.ndarray]:
    if labels is None:
        return [np.arange(n)]
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == value) for value in np.unique(labels)]


def warn_rare_classes(labels: np.ndarray, class_names: list[str], source: str) -> None:
    """Warns, with the counts, about classes seen only once: they cannot be in both splits.

    Args:
        labels: integer class ids.
        class_names: names by id, for the message.
        source: where the labels came from (a file or a data set), for the message.
    """
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(class_names))
    once = [class_names[i] for i in np.flatnonzero(counts == 1)]
    if once:
        warnings.warn(
            f"{source}: {len(once)} class(es) seen only once ({', '.join(map(repr, once[:10]))}); "
            "such rows stay in training and the class is never evaluated. Add examples or "
            "merge the class.",
            stacklevel=3,
        )
    # Integer labels make every id below the largest a class: a stray `7` among 0/1 labels
    # trains an 8-way model whose empty classes drag precision, recall and F1 down.
    never = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if never:
        warnings.warn(
            f"{source}: {len(never)} of {len(class_names)} class(es) have no examples "
            f"({', '.join(map(repr, never[:10]))}), yet the model gets an output for each. "
            "Check for a stray label, or declare the classes (--label-names).",
            stacklevel=3,
        )


def stratified_holdout(
    labels: np.ndarray | None, n: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Splits `range(n)` into shuffled train and held-out indices, class by class.

    Each class gives `round(fraction * count)` rows to the hold-out, at least one when it has
    two or more rows, so every class with a second example is evaluated. The draw depends only
    on the labels and the seed, never on the file's order (a file sorted by label would
    otherwise lose whole classes to "the last 10%").

    Args:
        labels: class ids per row, or None for a plain shuffled split.
        n: the number of rows.
        fraction: share held out, in (0, 1).
        seed: the random seed.

    Returns:
        `(train_indices, holdout_indices)`, each in shuffled order.

    Example:
        >>> train, dev = stratified_holdout(np.array([0, 0, 1, 1]), 4, 0.5, seed=0)
        >>> sorted(np.array([0, 0, 1, 1])[dev].tolist())
        [0, 1]
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The hold-out fraction must be in (0, 1); got {fraction}.")
    rng = np.random.default_rng(seed)
    train, held = [], []
    for rows in _by_class(labels, n):
        rows = rng.permutation(rows)
        take = int(round(fraction * len(rows))) if len(rows) > 1 else 0
        take = min(max(take, 1 if len(rows) > 1 else 0), len(rows) - 1)
        held.append(rows[:take])
        train.append(rows[take:])
    train_idx, held_idx = np.concatenate(train), np.concatenate(held)
    if len(held_idx) == 0 or len(train_idx) == 0:
        raise ValueError(
            f"{n} rows are too few to hold out a {fraction:.0%} evaluation split; add rows or "
            "give an evaluation split of your own."
        )
    return rng.permutation(train_idx), rng.permutation(held_idx)


def stratified_sample(labels: np.ndarray | None, n: int, limit: int, seed: int) -> np.ndarray:
    """`limit` of `range(n)`, drawn class by class in proportion (seeded), in shuffled order.

    Used for `limit`: taking the first rows of a sorted file would keep only its first
    classes. Each class keeps at least one row while `limit` allows it.

    Args:
        labels: class ids per row, or None for a plain random sample.
        n: the number of rows.
        limit: how many rows to keep; `limit >= n` keeps all of them (shuffled).
        seed: the random seed.

    Example:
        >>> sorted(stratified_sample(np.array([0, 0, 0, 1]), 4, 2, seed=0).tolist())[:1]
        [0]
    """
    if limit <= 0:
        raise ValueError(f"limit must be a positive number of rows; got {limit}.")
    rng = np.random.default_rng(seed)
    if limit >= n:
        return rng.permutation(n)
    groups = [rng.permutation(rows) for rows in _by_class(labels, n)]
    # Largest-remainder quotas that sum to `limit`, with one row per class first.
    exact = np.array([limit * len(g) / n for g in groups])
    quota = np.minimum(np.maximum(np.floor(exact).astype(int), 1), [len(g) for g in groups])
    while quota.sum() > limit:  # more classes than rows allowed: drop the largest quotas
        quota[np.argmax(quota)] -= 1
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= limit:
            break
        if quota[i] < len(groups[i]):
            quota[i] += 1
    while quota.sum() < limit:  # rounding left rows over: give them to classes with room
        room = np.flatnonzero(quota < [len(g) for g in groups])
        quota[room[0]] += 1
    chosen = np.concatenate([g[:q] for g, q in zip(groups, quota, strict=True)])
    return rng.permutation(chosen)


def stratified_split(
    labels: np.ndarray | None, n: int, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Holds out exactly `size` of `range(n)`, drawn as `stratified_sample` draws.

    For a hold-out of a given size (a validation set) rather than a fraction: the held rows
    keep every class's share of the data, where "the last `size` rows" of a class-sorted set
    would be its last classes only.

    Args:
        labels: class ids per row, or None for a plain seeded shuffle.
        n: the number of rows.
        size: how many rows to hold out, in [1, n).
        seed: the random seed.

    Returns:
        `(rest, held)`: the remaining indices in their original order (a training pipeline
        shuffles them anyway) and the held-out ones in shuffled order.

    Example:
        >>> rest, held = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 8, 2, seed=0)
        >>> sorted(np.array([0, 0, 0, 0, 1, 1, 1, 1])[held].tolist())
        [0, 1]
    """
    if not 0 < size < n:
        raise ValueError(f"A hold-out must leave rows on both sides: {size} of {n} rows asked.")
    held = stratified_sample(labels, n, size, seed)
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep), held


def stratified_subset(
    x: np.ndarray, y: np.ndarray | None, limit: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """At most `limit` rows of `(x, y)`, drawn class by class (`stratified_sample`).

    The one way a subset of examples is taken (limits, k-NN banks and queries, plotted
    images), so that no caller slices the first rows of a class-sorted set.

    Args:
        x: the examples, rows first.
        y: their class ids, or None (then a plain seeded draw).
        limit: how many rows to keep; None, or a limit not below `len(x)`, returns `x` and `y`
            themselves.
        seed: the random seed (a fixed one gives every run the same rows).

    Returns:
        `(x, y)` of the drawn rows, in shuffled order.

    Example:
        >>> x, y = stratified_subset(np.arange(6), np.array([0, 0, 0, 1, 1, 1]), 2, seed=0)
        >>> sorted(y.tolist())
        [0, 1]
    """
    if limit is None or limit >= len(x):
        return x, y
    rows = stratified_sample(y, len(x), limit, seed)
    return x[rows], None if y is None else y[rows]


def balanced_sample(labels: np.ndarray, n: int, limit: int, seed: int) -> np.ndarray:
    """`limit` of `range(n)` with the classes as equal as their sizes allow (seeded), shuffled.

    A few-label benchmark draws this way: at 100 labels a proportional draw of SST-2 is 44/56,
    which already tilts a small classifier to the majority class. Classes smaller than their
    share give it all; the rows they leave go, one at a time, to the classes with room.

    Example:
        >>> rows = balanced_sample(np.array([0] * 8 + [1] * 2), 10, 4, seed=0)
        >>> sorted(np.array([0] * 8 + [1] * 2)[rows].tolist())
        [0, 0, 1, 1]
    """
    if limit <= 0:
        raise ValueError(f"limit must be a positive number of rows; got {limit}.")
    rng = np.random.default_rng(seed)
    if limit >= n:
        return rng.permutation(n)
    groups = [rng.permutation(rows) for rows in _by_class(labels, n)]
    sizes = np.array([len(g) for g in groups])
    quota = np.zeros(len(groups), int)
    for _ in range(limit):  # round robin over the classes with rows left: equal where possible
        room = np.flatnonzero(quota < sizes)
        quota[room[np.argmin(quota[room])]] += 1
    chosen = np.concatenate([g[:q] for g, q in zip(groups, quota, strict=True)])
    return rng.permutation(chosen)


# The held-out share is applied in millionths, in integers: exact for any fraction given to
# six places, and the same on every machine.
_SHARE_DENOMINATOR = 1_000_000


def is_held_out(index, fraction: float):
    """Whether element `index` (0-based) of a stream falls in the held-out `fraction`.

    Element `n` is held out when `floor((n + 1) * fraction)` exceeds `floor(n * fraction)`:
    every k-th element for `fraction = 1 / k` (the 10th, 20th, ... for 0.1), and for any
    fraction exactly `floor(count * fraction)` of the first `count` elements, spread evenly.
    Works on Python ints and on int64 tensors alike.

    Example:
        >>> [n for n in range(30) if is_held_out(n, 0.1)]
        [9, 19, 29]
    """
    share = round(fraction * _SHARE_DENOMINATOR)
    return (index + 1) * share // _SHARE_DENOMINATOR > index * share // _SHARE_DENOMINATOR


def holdout_stream(dataset, fraction: float):
    """Splits a `tf.data.Dataset` into `(kept, held_out)` streams by position (`is_held_out`).

    Nothing is materialised: each stream reads the source as it is iterated and skips the
    other's elements, so the split of a corpus too large for memory costs no memory, and the
    same corpus always splits the same way, however often it is read.

    Args:
        dataset: any dataset (lines of a corpus, token windows).
        fraction: the held-out share, in (0, 1).

    Example:
        >>> train, held = holdout_stream(tf.data.Dataset.range(20), 0.1)
        >>> list(held.as_numpy_iterator())
        [9, 19]
    """
    import tensorflow as tf

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The hold-out fraction must be in (0, 1); got {fraction}.")
    numbered = dataset.enumerate()

    def part(held: bool):
        chosen = numbered.filter(lambda n, _: tf.equal(is_held_out(n, fraction), held))
        return chosen.map(lambda _, element: element)

    return part(False), part(True)
