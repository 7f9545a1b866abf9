"""Token plus learned position embeddings, with the token matrix usable as a tied output head."""

from __future__ import annotations

import math

import keras
from keras import ops

from tfpretrain.layers._initializers import clone_initializer
from tfpretrain.layers._validate import check_positive_int


@keras.saving.register_keras_serializable(package="tfpretrain")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Sums a token embedding and a learned absolute position embedding.

    Called with `reverse=True` on hidden states it returns logits over the vocabulary computed
    with the transposed token matrix, so a language model's output head can share (tie) its
    weights with the input embedding (Press & Wolf, 2017) in a functional graph.

    Args:
        vocabulary_size: number of token ids, > 0.
        sequence_length: maximum number of positions, > 0.
        embedding_dim: width of the embeddings, > 0.
        embeddings_initializer: initializer of both matrices.
        position_embedding: add learned absolute positions (False: token embedding only, for
            models with relative positions such as T5; `sequence_length` is then unused).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: int token ids `[B, T]`, or hidden states `[B, T, embedding_dim]` when
            `reverse=True`.
        start_index: position of the first token (non-zero when decoding with a cache).
        reverse: compute tied output logits instead of embeddings.

    Returns:
        `[B, T, embedding_dim]` embeddings, or float32 logits `[B, T, vocabulary_size]` when
        `reverse=True`.

    Example:

    >>> emb = TokenAndPositionEmbedding(vocabulary_size=100, sequence_length=16, embedding_dim=8)
    >>> hidden = emb(keras.ops.zeros((2, 16), "int32"))
    >>> emb(hidden, reverse=True).shape
    TensorShape([2, 16, 100])
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        embedding_dim: int,
        embeddings_initializer="glorot_uniform",
        position_embedding: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            embedding_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.use_position_embedding = bool(position_embedding)
        self.position_embedding = None
        if self.use_position_embedding:
            self.position_embedding = keras.layers.Embedding(
                sequence_length,
                embedding_dim,
                embeddings_initializer=clone_initializer(self.embeddings_initializer),
                dtype=self.dtype_policy,
                name="position_embedding",
            )

    def build(self, inputs_shape=None):
        self.token_embedding.build()
        if self.position_embedding is not None:
            self.position_embedding.build()
        self.built = True

    def call(self, inputs, start_index=0, reverse: bool = False):
        if reverse:
            matrix = ops.cast(self.token_embedding.embeddings, self.compute_dtype)
            rows = inputs.shape[:-1]
            if None not in rows and math.prod(rows) == 1:
                # One row (decoding): the matrix times the vector, read where it lies; with the
                # transpose, XLA's CPU code copies it into a loop that reads it strided, many
                # times slower (BENCHMARKS.md).
                logits = ops.einsum("vd,...d->...v", matrix, inputs)
            else:
                logits = ops.matmul(inputs, ops.transpose(matrix))
            return ops.cast(logits, "float32")
        if self.position_embedding is None:
            return self.token_embedding(inputs)
        length = ops.shape(inputs)[-1]
        positions = ops.arange(length) + start_index
        return self.token_embedding(inputs) + self.position_embedding(positions)[None]

    def compute_output_shape(self, inputs_shape, start_index=0, reverse=False):
        if reverse:
            return tuple(inputs_shape[:-1]) + (self.vocabulary_size,)
        return tuple(inputs_shape) + (self.embedding_dim,)

    def compute_output_spec(self, inputs, start_index=0, reverse=False):
        shape = self.compute_output_shape(inputs.shape, reverse=reverse)
        dtype = "float32" if reverse else self.compute_dtype
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "position_embedding": self.use_position_embedding,
            }
        )
        return config
