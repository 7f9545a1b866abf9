"""The count-based vector-space model: the baseline every pre-trained text model has to beat.

A corpus of D documents gives a sparse count matrix C[d, w] (optionally TF-IDF weighted). A
word's vector is the count-weighted sum of document vectors,

    v_w = sum_d C[d, w] * v(d),

with one-hot document vectors by default (so v_w is column w of C, a point in "document
space") or any `[D, k]` document vectors supplied, e.g. an encoder's sentence embeddings (then
v_w lives in that encoder's space). Words are compared by cosine similarity; documents are
classified from their rows of C (bag of words) by a linear classifier.

Counting runs in TensorFlow over a `tf.data` corpus; C stays a `tf.SparseTensor`.

Example:

>>> corpus = tf.data.Dataset.from_tensor_slices(["a good film", "a bad film", "good acting"])
>>> vsm = VectorSpaceModel.from_corpus(corpus, tfidf=True)
>>> vsm.counts.dense_shape.numpy().tolist()
[3, 5]
>>> [w for w, _ in vsm.nearest("good", k=1)]  # doctest: +SKIP
['acting']
"""

from __future__ import annotations

import collections

import keras
import numpy as np
import tensorflow as tf

TOKEN_PATTERN = r"[^\pL\pN']+"


def tokenize(texts) -> tf.RaggedTensor:
    """Lower-cased words of `[N]` strings as a `[N, None]` ragged tensor (letters, digits, ')."""
    texts = tf.strings.lower(tf.convert_to_tensor(texts, tf.string), encoding="utf-8")
    return tf.strings.split(tf.strings.strip(tf.strings.regex_replace(texts, TOKEN_PATTERN, " ")))


def _batched(corpus, batch_size: int) -> tf.data.Dataset:
    """The corpus as batches of strings; accepts a dataset of strings (batched or not) or a list."""
    if not isinstance(corpus, tf.data.Dataset):
        corpus = tf.data.Dataset.from_tensor_slices(tf.constant(list(corpus), tf.string))
    spec = corpus.element_spec
    if (
        not isinstance(spec, tf.TensorSpec)
        or spec.dtype != tf.string
        or spec.shape.rank not in (0, 1)
    ):
        raise TypeError(
            f"The corpus must yield strings (documents) or batches of them; got {spec}."
        )
    return corpus.batch(batch_size) if spec.shape.rank == 0 else corpus


def _lookup_table(vocabulary: list[str]) -> tf.lookup.StaticHashTable:
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(vocabulary, tf.string), tf.range(len(vocabulary), dtype=tf.int64)
        ),
        default_value=-1,
    )


def _word_ids(table: tf.lookup.StaticHashTable, texts) -> tf.RaggedTensor:
    ids = tf.ragged.map_flat_values(table.lookup, tokenize(texts))
    return tf.ragged.boolean_mask(ids, ids >= 0)  # out-of-vocabulary words are dropped


def _count(batches: tf.data.Dataset, table, size: int) -> tf.SparseTensor:
    """The sparse `[D, V]` float32 count matrix; counting runs in the `tf.data` map."""

    def count(texts):
        return tf.sparse.bincount(_word_ids(table, texts), minlength=size, maxlength=size, axis=-1)

    indices, values, offset = [np.zeros((0, 2), np.int64)], [np.zeros((0,), np.float32)], 0
    for sparse in batches.map(count):
        idx = sparse.indices.numpy()
        idx[:, 0] += offset  # batch rows -> corpus rows
        indices.append(idx)
        values.append(sparse.values.numpy().astype(np.float32))
        offset += int(sparse.dense_shape[0])
    return tf.sparse.reorder(
        tf.SparseTensor(np.concatenate(indices), np.concatenate(values), [offset, size])
    )


class VectorSpaceModel:
    """Sparse document-term counts of a corpus, word vectors built from them, and neighbours.

    Build it with `from_corpus`. Attributes:
        vocabulary: the words, most frequent first (ties alphabetical).
        counts: `tf.SparseTensor` `[D, V]` float32 raw counts of the corpus.
        idf: `[V]` inverse document frequencies log((1 + D) / (1 + df)) + 1 (used when `tfidf`).
        tfidf: whether `weights` (and so word vectors and document features) use TF-IDF.
    """

    def __init__(self, vocabulary: list[str], counts: tf.SparseTensor, tfidf: bool = False):
        self.vocabulary = list(vocabulary)
        if counts.dense_shape.shape != (2,) or int(counts.dense_shape[1]) != len(self.vocabulary):
            raise ValueError(
                f"counts must be [documents, {len(self.vocabulary)}]; got {counts.dense_shape}."
            )
        self.counts = counts
        self.tfidf = tfidf
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self._table = _lookup_table(self.vocabulary)
        num_docs = int(counts.dense_shape[0])
        df = tf.math.bincount(
            tf.cast(counts.indices[:, 1], tf.int32),
            minlength=len(self.vocabulary),
            maxlength=len(self.vocabulary),
            dtype=tf.float32,
        )
        self.idf = tf.math.log((1.0 + num_docs) / (1.0 + df)) + 1.0

    @property
    def num_documents(self) -> int:
        return int(self.counts.dense_shape[0])

    @classmethod
    def from_corpus(
        cls,
        corpus,
        *,
        max_vocabulary: int | None = 20_000,
        min_count: int = 1,
        tfidf: bool = False,
        batch_size: int = 1024,
    ) -> VectorSpaceModel:
        """Counts the corpus: vocabulary first, then the sparse `[D, V]` count matrix.

        Args:
            corpus: a `tf.data.Dataset` of document strings (or of batches of them), or a list.
            max_vocabulary: keep this many most frequent words (None: all).
            min_count: drop words seen fewer times.
            tfidf: weight counts by inverse document frequency.
            batch_size: documents counted per step.

        Raises:
            ValueError: the corpus has no documents, or no word survives `min_count`.
        """
        batches = _batched(corpus, batch_size)
        totals: collections.Counter = collections.Counter()
        num_docs = 0
        for batch in batches.map(
            lambda t: (tf.unique_with_counts(tokenize(t).flat_values), tf.shape(t)[0])
        ):
            (words, _, counts), n = batch
            totals.update(dict(zip(words.numpy().tolist(), counts.numpy().tolist(), strict=True)))
            num_docs += int(n)
        if num_docs == 0:
            raise ValueError(
                "The corpus is empty: it yielded no documents. Pass a non-empty tf.data.Dataset "
                "of strings (one per document)."
            )
        kept = sorted(
            (w for w, c in totals.items() if c >= min_count), key=lambda w: (-totals[w], w)
        )
        if max_vocabulary is not None:
            kept = kept[:max_vocabulary]
        if not kept:
            raise ValueError(
                f"The corpus of {num_docs} documents has no words (or none seen at least "
                f"{min_count} times): check that the documents are non-empty text, or lower "
                "min_count."
            )
        vocabulary = [w.decode("utf-8") for w in kept]
        return cls(
            vocabulary, _count(batches, _lookup_table(vocabulary), len(vocabulary)), tfidf=tfidf
        )

    def _ids(self, texts) -> tf.RaggedTensor:
        return _word_ids(self._table, texts)

    def weights(self, counts: tf.SparseTensor | None = None) -> tf.SparseTensor:
        """Counts (the corpus's by default) times IDF when `tfidf`, else the counts themselves."""
        counts = self.counts if counts is None else counts
        if not self.tfidf:
            return counts
        return tf.SparseTensor(
            counts.indices,
            counts.values * tf.gather(self.idf, counts.indices[:, 1]),
            counts.dense_shape,
        )

    def word_vectors(self, document_vectors=None):
        """v_w = sum_d weight(d, w) v(d) for every word, `[V, ...]`.

        Args:
            document_vectors: `[D, k]` vectors of the corpus's documents (in corpus order); None
                means one-hot vectors, giving the sparse `[V, D]` transpose of the weights.

        Returns:
            A `tf.SparseTensor` `[V, D]` (one-hot) or a dense `[V, k]` float32 tensor.
        """
        weights = self.weights()
        if document_vectors is None:
            return tf.sparse.reorder(tf.sparse.transpose(weights))
        vectors = tf.convert_to_tensor(document_vectors, tf.float32)
        if vectors.shape.rank != 2 or vectors.shape[0] != self.num_documents:
            raise ValueError(
                f"document_vectors must be [{self.num_documents}, k], one row per corpus "
                f"document; got {tuple(vectors.shape)}."
            )
        return tf.sparse.sparse_dense_matmul(weights, vectors, adjoint_a=True)

    def nearest(self, word: str, k: int = 10, document_vectors=None) -> list[tuple[str, float]]:
        """The `k` words with the highest cosine similarity to `word` (itself excluded)."""
        if word not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self.vocabulary)} words.")
        vectors = self.word_vectors(document_vectors)
        row = self.index[word]
        if isinstance(vectors, tf.SparseTensor):
            query = tf.sparse.to_dense(
                tf.sparse.slice(vectors, [row, 0], [1, vectors.dense_shape[1]])
            )[0]
            dots = tf.sparse.sparse_dense_matmul(vectors, query[:, None])[:, 0]
            norms = tf.sqrt(
                tf.math.unsorted_segment_sum(
                    vectors.values**2, vectors.indices[:, 0], len(self.vocabulary)
                )
            )
        else:
            query = vectors[row]
            dots = tf.linalg.matvec(vectors, query)
            norms = tf.norm(vectors, axis=1)
        cosine = dots / tf.maximum(norms * tf.norm(query), 1e-12)
        cosine = tf.tensor_scatter_nd_update(cosine, [[row]], [-np.inf])
        top = tf.math.top_k(cosine, k=min(k, len(self.vocabulary) - 1))
        return [
            (self.vocabulary[i], float(s))
            for i, s in zip(top.indices.numpy(), top.values.numpy(), strict=True)
        ]

    def transform(self, texts) -> tf.SparseTensor:
        """Documents as rows of (TF-IDF) weights over the vocabulary, L2-normalised: `[N, V]`."""
        texts = list(texts) if not isinstance(texts, tf.Tensor) else texts
        size = len(self.vocabulary)
        counts = tf.cast(
            tf.sparse.bincount(self._ids(texts), minlength=size, maxlength=size, axis=-1),
            tf.float32,
        )
        weights = self.weights(counts)
        norms = tf.sqrt(
            tf.math.unsorted_segment_sum(
                weights.values**2, weights.indices[:, 0], tf.cast(weights.dense_shape[0], tf.int32)
            )
        )
        values = weights.values / tf.maximum(tf.gather(norms, weights.indices[:, 0]), 1e-12)
        return tf.SparseTensor(weights.indices, values, weights.dense_shape)


def _feature_dataset(
    vsm: VectorSpaceModel, texts, labels, batch_size: int, shuffle: bool, seed: int
):
    features = vsm.transform(texts)
    ds = tf.data.Dataset.from_tensor_slices((features, np.asarray(labels, np.int32)))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return (
        ds.batch(batch_size).map(lambda x, y: (tf.sparse.to_dense(x), y)).prefetch(tf.data.AUTOTUNE)
    )


def train_document_classifier(
    vsm: VectorSpaceModel,
    texts,
    labels,
    *,
    num_classes: int | None = None,
    epochs: int = 5,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    l2: float = 1e-6,
    seed: int = 0,
    verbose=0,
) -> keras.Model:
    """Logistic regression (softmax) on the documents' vector-space rows; returns the model.

    The model maps dense `[B, V]` rows from `vsm.transform` to logits.
    """
    labels = np.asarray(labels).astype(np.int64)
    if len(labels) == 0 or len(labels) != len(texts):
        raise ValueError(
            f"Need as many labels as texts (and at least one); got {len(labels)} and {len(texts)}."
        )
    num_classes = num_classes or int(labels.max()) + 1
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((len(vsm.vocabulary),)),
            keras.layers.Dense(
                num_classes, kernel_regularizer=keras.regularizers.L2(l2), name="logits"
            ),
        ],
        name="vsm_classifier",
    )
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        _feature_dataset(vsm, texts, labels, batch_size, True, seed), epochs=epochs, verbose=verbose
    )
    return model


def predict_classes(
    model: keras.Model, vsm: VectorSpaceModel, texts, batch_size: int = 1024
) -> np.ndarray:
    """Predicted class of each text."""
    ds = _feature_dataset(vsm, texts, np.zeros(len(texts), np.int32), batch_size, False, 0)
    return np.argmax(model.predict(ds.map(lambda x, y: x), verbose=0), axis=-1)
