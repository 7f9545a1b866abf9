"""Token vectors from co-occurrence counts: a start for a network's token embeddings.

A small encoder trained from random embeddings spends its first thousands of masked-LM steps
predicting token frequencies (the unigram plateau) before its embeddings say anything about
meaning. Counting gives that in seconds: tokens that occur near the same tokens get similar
vectors. The corpus is tokenized with the model's own vocabulary, pairs within `window` tokens
of each other on one line are counted (weighted 1/distance), turned into positive pointwise
mutual information with smoothed context frequencies (exponent 0.75, Levy, Goldberg and Dagan,
2015), and reduced to the embedding width by a randomized truncated SVD (Halko, Martinsson and
Tropp, 2011), each side weighted by the square root of its singular value.

Example:

>>> lines = tf.data.Dataset.from_tensor_slices(["a good film", "a bad film"] * 50)
>>> tokenizer = WordPieceTokenizer(learn_vocabulary(lines, 64))  # doctest: +SKIP
>>> count_vectors(lines, tokenizer, dim=8).shape  # doctest: +SKIP
(vocabulary_size, 8)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# The dense [V, V] table is 4 bytes a cell: 16,384 tokens take 1 GiB.
MAX_VOCABULARY = 16_384
MAX_TOKENS = 20_000_000  # counted at most; more text changes the vectors little
WINDOW = 5
CONTEXT_SMOOTHING = 0.75


def cooccurrence_counts(
    lines: tf.data.Dataset,
    tokenizer,
    window: int = WINDOW,
    max_tokens: int = MAX_TOKENS,
) -> tuple[np.ndarray, int]:
    """Symmetric `[V, V]` float32 counts of token pairs at most `window` apart on one line,
    each weighted 1 / distance, and the number of tokens read.

    Args:
        lines: a dataset of strings (lines of text), streamed in batches.
        tokenizer: the model's tokenizer (`tokenize(strings)` gives ragged ids and it has
            `vocabulary_size`).
        window: the largest distance counted.
        max_tokens: stop reading after this many tokens.
    """
    size = int(tokenizer.vocabulary_size)
    if size > MAX_VOCABULARY:
        raise ValueError(
            f"Count vectors keep a dense {size} x {size} table; use a vocabulary of at most "
            f"{MAX_VOCABULARY} tokens, or random embeddings."
        )
    if window < 1:
        raise ValueError(f"window must be >= 1; got {window}.")
    counts = np.zeros(size * size, np.float32)
    codes: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    pending = read = 0

    def flush():
        nonlocal pending
        if codes:
            # Sum over the distinct pairs only: a bincount of all V * V cells would allocate
            # float64 the size of the table (512 MB at 8,000 tokens) on every flush.
            cells, where = np.unique(np.concatenate(codes), return_inverse=True)
            counts[cells] += np.bincount(where, np.concatenate(weights)).astype(np.float32)
            codes.clear()
            weights.clear()
        pending = 0

    for batch in lines.batch(1024):
        ids = tokenizer.tokenize(batch)
        flat = ids.flat_values.numpy().astype(np.int64)
        rows = ids.value_rowids().numpy()
        for distance in range(1, window + 1):
            same_line = rows[:-distance] == rows[distance:]
            left, right = flat[:-distance][same_line], flat[distance:][same_line]
            weight = np.full(left.size, 1.0 / distance)
            codes += [left * size + right, right * size + left]
            weights += [weight, weight]
            pending += 2 * left.size
        read += flat.size
        if pending > 20_000_000:  # bound the pair lists' memory
            flush()
        if read >= max_tokens:
            break
    flush()
    return counts.reshape(size, size), read


def ppmi(counts: np.ndarray, smoothing: float = CONTEXT_SMOOTHING) -> np.ndarray:
    """Positive pointwise mutual information of a `[V, V]` count table, with the context
    frequencies raised to `smoothing` (which keeps rare contexts from dominating); zero where a
    pair never occurs."""
    counts = counts.astype(np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("No token pairs were counted: the corpus has no line of two tokens.")
    word = counts.sum(axis=1) / total
    context = counts.sum(axis=0) ** smoothing
    context /= context.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts / total) - np.log(word)[:, None] - np.log(context)[None, :]
    return np.where(counts > 0, np.maximum(pmi, 0.0), 0.0).astype(np.float32)


def truncated_svd(
    matrix: np.ndarray, rank: int, seed: int = 0, power_iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """`(U [V, rank], S [rank])` of the leading singular triplets, by a randomized range finder
    with power iterations (no dense decomposition of the whole matrix)."""
    rng = np.random.default_rng(seed)
    probe = min(matrix.shape[1], rank + 16)
    basis = np.linalg.qr(matrix @ rng.standard_normal((matrix.shape[1], probe)))[0]
    for _ in range(power_iterations):  # sharpens the spectrum so the basis finds the top
        basis = np.linalg.qr(matrix.T @ basis)[0]
        basis = np.linalg.qr(matrix @ basis)[0]
    small_u, singular, _ = np.linalg.svd(basis.T @ matrix, full_matrices=False)
    return (basis @ small_u)[:, :rank], singular[:rank]


def count_vectors(
    lines: tf.data.Dataset,
    tokenizer,
    dim: int,
    window: int = WINDOW,
    max_tokens: int = MAX_TOKENS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`[V, dim]` float32 token vectors from the counts of `lines`, a boolean `[V]` of the tokens
    that were seen (the others' rows are zero), and the number of tokens read."""
    counts, read = cooccurrence_counts(lines, tokenizer, window, max_tokens)
    seen = counts.sum(axis=1) > 0
    if int(seen.sum()) <= dim:
        raise ValueError(
            f"Only {int(seen.sum())} tokens occur next to another in the corpus, not enough "
            f"for {dim}-dimensional count vectors; use more text or random embeddings."
        )
    u, s = truncated_svd(ppmi(counts), dim, seed=seed)
    vectors = (u * np.sqrt(s)).astype(np.float32)
    vectors[~seen] = 0.0
    return vectors, seen, read
