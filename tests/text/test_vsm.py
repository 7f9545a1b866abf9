import collections
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.text.vsm import (
    VectorSpaceModel,
    predict_classes,
    tokenize,
    train_document_classifier,
)

DOCS = [
    "The film is good, really good!",
    "A bad film. Bad acting.",
    "good acting and a good story",
    "the story is bad",
    "Éclair: the café's film",
]


def _reference_counts(docs, vocabulary):
    """Plain-Python tokenisation and counting, for comparison."""
    index = {w: i for i, w in enumerate(vocabulary)}
    counts = np.zeros((len(docs), len(vocabulary)))
    for d, doc in enumerate(docs):
        for word in re.split(r"[^\w']+", doc.lower()):
            if word in index:
                counts[d, index[word]] += 1
    return counts


def _cosine_neighbours(vectors, vocabulary, word, k):
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = v @ v[vocabulary.index(word)]
    sims[vocabulary.index(word)] = -np.inf
    order = np.argsort(-sims, kind="stable")[:k]
    return [vocabulary[i] for i in order], sims[order]


def test_tokenize_is_lowercase_unicode_words():
    assert tokenize(["Hello, World!  it's Café"]).to_list() == [
        [b"hello", b"world", b"it's", "café".encode()]
    ]


def test_counts_vocabulary_and_idf_match_numpy():
    vsm = VectorSpaceModel.from_corpus(tf.data.Dataset.from_tensor_slices(DOCS), batch_size=2)
    expected_totals = collections.Counter(
        w for d in DOCS for w in re.split(r"[^\w']+", d.lower()) if w
    )
    assert set(vsm.vocabulary) == set(expected_totals)
    # Most frequent first, ties alphabetical.
    assert vsm.vocabulary == sorted(expected_totals, key=lambda w: (-expected_totals[w], w))
    counts = _reference_counts(DOCS, vsm.vocabulary)
    np.testing.assert_array_equal(tf.sparse.to_dense(vsm.counts).numpy(), counts)
    df = (counts > 0).sum(0)
    np.testing.assert_allclose(vsm.idf.numpy(), np.log((1 + len(DOCS)) / (1 + df)) + 1, rtol=1e-6)


@pytest.mark.parametrize("tfidf", [False, True])
def test_word_vectors_and_neighbours_match_numpy(tfidf):
    vsm = VectorSpaceModel.from_corpus(DOCS, tfidf=tfidf, max_vocabulary=10)
    assert len(vsm.vocabulary) == 10
    weights = _reference_counts(DOCS, vsm.vocabulary)
    if tfidf:
        weights = weights * vsm.idf.numpy()
    # One-hot document vectors: v_w is the word's column of the weights.
    one_hot = tf.sparse.to_dense(vsm.word_vectors()).numpy()
    np.testing.assert_allclose(one_hot, weights.T, rtol=1e-6)
    # Supplied document vectors: v_w = sum_d weight(d, w) v(d).
    doc_vectors = np.random.default_rng(0).normal(size=(len(DOCS), 3)).astype("float32")
    np.testing.assert_allclose(
        vsm.word_vectors(doc_vectors).numpy(), weights.T @ doc_vectors, rtol=1e-5, atol=1e-5
    )
    for vectors, supplied in ((weights.T, None), (weights.T @ doc_vectors, doc_vectors)):
        words, sims = _cosine_neighbours(vectors, vsm.vocabulary, "good", 3)
        got = vsm.nearest("good", k=3, document_vectors=supplied)
        np.testing.assert_allclose([s for _, s in got], sims, rtol=1e-5)
        assert "good" not in [w for w, _ in got]


def test_transform_rows_are_normalised_weights():
    vsm = VectorSpaceModel.from_corpus(DOCS, tfidf=True)
    rows = tf.sparse.to_dense(vsm.transform(["good good story", "unknown words only"])).numpy()
    expected = _reference_counts(["good good story"], vsm.vocabulary)[0] * vsm.idf.numpy()
    np.testing.assert_allclose(rows[0], expected / np.linalg.norm(expected), rtol=1e-6)
    assert not rows[1].any()  # out-of-vocabulary words are dropped


def test_errors():
    with pytest.raises(ValueError, match="corpus is empty"):
        VectorSpaceModel.from_corpus(tf.data.Dataset.from_tensor_slices(tf.constant([], tf.string)))
    with pytest.raises(ValueError, match="no words"):
        VectorSpaceModel.from_corpus(["", " ?! "])
    with pytest.raises(TypeError, match="strings"):
        VectorSpaceModel.from_corpus(tf.data.Dataset.range(3))
    vsm = VectorSpaceModel.from_corpus(DOCS)
    with pytest.raises(KeyError, match="vocabulary"):
        vsm.nearest("zebra")
    with pytest.raises(ValueError, match="one row per corpus document"):
        vsm.word_vectors(np.zeros((2, 3)))


def test_classifier_learns_sentiment_words():
    rng = np.random.default_rng(0)
    pos, neg, filler = (
        ["great", "wonderful", "fun"],
        ["awful", "dull", "boring"],
        ["movie", "plot", "actors", "it"],
    )
    texts, labels = [], []
    for _ in range(400):
        label = int(rng.integers(2))
        words = list(rng.choice(pos if label else neg, 2)) + list(rng.choice(filler, 3))
        texts.append(" ".join(rng.permutation(words)))
        labels.append(label)
    vsm = VectorSpaceModel.from_corpus(texts[:300], tfidf=True)
    model = train_document_classifier(
        vsm, texts[:300], labels[:300], epochs=8, batch_size=32, learning_rate=0.05
    )
    accuracy = np.mean(predict_classes(model, vsm, texts[300:]) == np.asarray(labels[300:]))
    assert accuracy > 0.95


def test_finetune_cli_runs_the_baseline(tmp_path, data_dir):
    out = tmp_path / "vsm"
    env = dict(os.environ, TFPRETRAIN_DATA_DIR=str(data_dir))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfpretrain.cli.main",
            "finetune",
            "--task",
            "sst2",
            "--init",
            "vsm",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--limit-train",
            "4000",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"] == "vsm" and metrics["dev_examples"] == 872
    # Above the 0.51 of always answering the commoner class (measured 0.73).
    assert metrics["accuracy"] > 0.6
    # Accuracy, precision, recall (of "positive") and F1 are those of one confusion matrix of the
    # 872 dev sentences: its counts come out whole, and F1 is 2PR / (P + R).
    labels = [
        line.rsplit("\t", 1)[1].strip()
        for line in (data_dir / "sst2" / "dev.tsv").read_text().splitlines()[1:]
        if line.strip()
    ]
    positives, negatives = labels.count("1"), labels.count("0")
    assert positives + negatives == 872
    true_positives = metrics["recall"] * positives
    false_positives = true_positives / metrics["precision"] - true_positives
    assert true_positives == pytest.approx(round(true_positives), abs=1e-6)
    assert false_positives == pytest.approx(round(false_positives), abs=1e-6)
    correct = true_positives + negatives - false_positives
    assert metrics["accuracy"] == pytest.approx(correct / 872)
    p, r = metrics["precision"], metrics["recall"]
    assert metrics["f1"] == pytest.approx(2 * p * r / (p + r))
    assert (out / "vocab.txt").read_text().split("\n")[0] in ("the", ",", "a", "and")
