"""Count vectors as the start of token embeddings: counts, PPMI and SVD against direct
computations, neighbours that share contexts, and `mlm --embeddings counts` wiring them in."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.cli.main import main
from tfpretrain.settings.mlm import MlmRun
from tfpretrain.text.cooccurrence import (
    cooccurrence_counts,
    count_vectors,
    ppmi,
    truncated_svd,
)
from tfpretrain.text.wordpiece import WordPieceTokenizer


class WordIds:
    """A stand-in tokenizer: space-separated words, each its index in `words`."""

    def __init__(self, words):
        self.words = list(words)
        self.vocabulary_size = len(self.words)

    def tokenize(self, strings):
        return tf.ragged.constant(
            [[self.words.index(w) for w in s.decode().split()] for s in strings.numpy()],
            dtype=tf.int32,
        )


def brute_force_counts(lines, words, window):
    counts = np.zeros((len(words), len(words)))
    for line in lines:
        ids = [words.index(w) for w in line.split()]
        for i, a in enumerate(ids):
            for j, b in enumerate(ids):
                if 0 < abs(i - j) <= window:
                    counts[a, b] += 1.0 / abs(i - j)
    return counts


def test_counts_equal_a_loop_over_pairs_and_do_not_cross_lines():
    words = ["a", "b", "c", "d", "e"]
    lines = ["a b c d", "e a", "c c b a e d", "d"]
    tokenizer = WordIds(words)
    for window in (1, 2, 5):
        counts, read = cooccurrence_counts(
            tf.data.Dataset.from_tensor_slices(lines), tokenizer, window
        )
        np.testing.assert_allclose(counts, brute_force_counts(lines, words, window), rtol=1e-6)
        assert read == 13
    # "d" ends line 1 and "e" starts line 2: never neighbours across the line break.
    counts, _ = cooccurrence_counts(
        tf.data.Dataset.from_tensor_slices(["a b c d", "e a"]), tokenizer, 1
    )
    assert counts[3, 4] == counts[4, 3] == 0


def test_counting_stops_after_max_tokens():
    lines = tf.data.Dataset.from_tensor_slices(["a b"] * 5000)
    _, read = cooccurrence_counts(lines, WordIds(["a", "b"]), 1, max_tokens=2)
    assert 2 <= read <= 2 * 1024  # stops at the end of the first batch of lines


def test_ppmi_equals_the_formula():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, (6, 6)).astype(np.float32)
    counts = counts + counts.T
    total = counts.sum()
    expected = np.zeros_like(counts, dtype=np.float64)
    context = counts.sum(axis=0) ** 0.75
    for w in range(6):
        for c in range(6):
            if counts[w, c]:
                p_wc = counts[w, c] / total
                p_w = counts[w].sum() / total
                p_c = context[c] / context.sum()
                expected[w, c] = max(np.log(p_wc / (p_w * p_c)), 0.0)
    np.testing.assert_allclose(ppmi(counts), expected, rtol=1e-5, atol=1e-6)


def test_ppmi_refuses_a_table_without_pairs():
    with pytest.raises(ValueError, match="no line of two tokens"):
        ppmi(np.zeros((3, 3), np.float32))


def test_truncated_svd_finds_the_leading_singular_values():
    rng = np.random.default_rng(1)
    low_rank = rng.standard_normal((200, 8)) @ rng.standard_normal((8, 200))
    matrix = low_rank + 0.01 * rng.standard_normal((200, 200))
    u, s = truncated_svd(matrix, 8)
    exact_u, exact_s, _ = np.linalg.svd(matrix)
    np.testing.assert_allclose(s, exact_s[:8], rtol=1e-4)
    # Same subspace: the projections of the exact vectors onto ours keep their length.
    np.testing.assert_allclose(np.linalg.norm(u.T @ exact_u[:, :8], axis=0), 1.0, atol=1e-4)


def test_tokens_in_the_same_contexts_get_close_vectors():
    rng = np.random.default_rng(0)
    animals, vehicles = ["cat", "dog", "cow"], ["car", "bus", "van"]
    lines = [f"the {rng.choice(animals)} eats grass and sleeps" for _ in range(300)]
    lines += [f"a {rng.choice(vehicles)} drives on roads with wheels" for _ in range(300)]
    words = sorted({w for line in lines for w in line.split()})
    vectors, seen, _ = count_vectors(
        tf.data.Dataset.from_tensor_slices(lines), WordIds(words), dim=4
    )
    assert seen.all()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(words)}

    def cosine(a, b):
        return float(unit[index[a]] @ unit[index[b]])

    assert cosine("cat", "dog") > cosine("cat", "car") + 0.5
    assert cosine("bus", "van") > cosine("bus", "cow") + 0.5


def test_a_vocabulary_too_large_for_the_dense_table_is_refused():
    class Large:
        vocabulary_size = 20_000

    with pytest.raises(ValueError, match="at most 16384"):
        cooccurrence_counts(tf.data.Dataset.from_tensor_slices(["a"]), Large())


def test_counts_and_init_exclude_each_other():
    with pytest.raises(ValueError, match="--init folder brings its own embeddings"):
        MlmRun(corpus="c.txt", out_dir="o", init="folder", embeddings="counts").check()


def test_mlm_starts_its_token_embeddings_from_the_counts_by_default(tmp_path):
    rng = np.random.default_rng(0)
    # Enough distinct pieces for tiny's 128 dimensions.
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 4)) for _ in range(300)]
    lines = [" ".join(rng.choice(words, 8)) for _ in range(600)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    args = ["mlm", "--corpus", str(tmp_path / "corpus.txt"), "--preset", "tiny"]
    args += ["--vocab-size", "400", "--steps", "2", "--epochs", "1", "--batch-size", "8"]
    args += ["--seq-len", "32", "--validation-fraction", "0", "--no-export"]
    # A step too small to move the weights: the saved embeddings are the start.
    # No --embeddings: `auto` takes the counts when the corpus has enough distinct tokens.
    args += ["--learning-rate", "1e-12", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["embedding_start"] == "counts"
    assert metrics["count_tokens"] > 0
    encoder = keras.saving.load_model(run / "encoder.keras", compile=False)
    table = keras.ops.convert_to_numpy(encoder.token_embedding.token_embedding.embeddings)

    tokenizer = WordPieceTokenizer.from_pretrained(run)
    vectors, seen, _ = count_vectors(
        tf.data.Dataset.from_tensor_slices(lines), tokenizer, dim=table.shape[1]
    )
    vectors *= 0.02 / vectors[seen].std()
    np.testing.assert_allclose(table[seen], vectors[seen], atol=1e-6)
    assert table[seen].std() == pytest.approx(0.02, rel=1e-3)
    # Tokens the corpus never shows ([MASK], unused pieces) keep BERT's random start.
    unseen = table[~seen]
    assert unseen.shape[0] > 0 and 0.005 < unseen.std() < 0.03


def test_too_little_text_for_counts_is_refused_or_left_random(tmp_path, capsys):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat .\n" * 200)
    args = ["mlm", "--corpus", str(tmp_path / "corpus.txt"), "--preset", "tiny"]
    args += ["--vocab-size", "100", "--steps", "1", "--epochs", "1", "--batch-size", "4"]
    args += ["--seq-len", "16", "--validation-fraction", "0", "--no-export"]
    assert main([*args, "--embeddings", "counts", "--out", str(tmp_path / "counts")]) == 2
    assert "not enough for 128-dimensional count vectors" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "auto")]) == 0
    metrics = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert metrics["embedding_start"] == "random"
    assert "not enough" in metrics["embedding_start_reason"]
