"""T5's relative position bias: one learned scalar per (distance bucket, head), added to the
scores."""

from __future__ import annotations

import math

import keras
from keras import ops

from tfpretrain.layers._validate import check_positive_int


def relative_position_buckets(
    relative_position, bidirectional: bool, num_buckets: int, max_distance: int
):
    """Maps `key_position - query_position` to bucket ids as T5 does (Raffel et al., 2020).

    Half of the buckets (per direction) hold exact distances 0, 1, 2, ...; the rest cover
    distances up to `max_distance` on a logarithmic scale; farther distances share the last
    bucket. Bidirectional buckets give keys after the query their own half of the buckets;
    unidirectional ones treat every key after the query as distance 0 (it is masked anyway).

    Args:
        relative_position: int tensor of `key - query` positions.
        bidirectional: the encoder's buckets (True) or the causal decoder's (False).
        num_buckets: total number of buckets.
        max_distance: distances at or beyond it share the last bucket.

    Returns:
        int32 bucket ids of the same shape.
    """
    relative_position = ops.cast(relative_position, "int32")
    buckets = ops.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + ops.cast(relative_position > 0, "int32") * num_buckets
        distance = ops.abs(relative_position)
    else:
        distance = ops.maximum(-relative_position, 0)
    max_exact = num_buckets // 2
    # log-spaced buckets for the far distances; max(distance, 1) keeps log() finite where unused
    far = max_exact + ops.cast(
        ops.log(ops.cast(ops.maximum(distance, 1), "float32") / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact),
        "int32",
    )
    far = ops.minimum(far, num_buckets - 1)
    return buckets + ops.where(distance < max_exact, distance, far)


@keras.saving.register_keras_serializable(package="tfpretrain")
class RelativePositionBias(keras.layers.Layer):
    """T5 relative position bias as an additive attention bias `[1, H, T, S]` (float32).

    One layer is created per stack (encoder: bidirectional, decoder: unidirectional) and its
    output is passed as `attention_bias` to every block's self-attention, so the bias is
    shared across layers as in T5.

    Args:
        num_heads: number of attention heads, > 0.
        num_buckets: number of distance buckets, > 1 (T5: 32).
        max_distance: distance from which all positions share a bucket (T5: 128).
        bidirectional: encoder (True) or causal decoder (False) buckets.
        embeddings_initializer: initializer of the `[num_buckets, num_heads]` table.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: the queries' hidden states `[B, T, ...]`; only their length T is used.
        key_length: S, the number of keys (defaults to T); the cache size when decoding.
        query_offset: position of the first query (the cache index when decoding).

    Returns:
        float32 bias `[1, num_heads, T, S]`.

    Example:

    >>> bias = RelativePositionBias(num_heads=4)(keras.ops.zeros((2, 10, 64)))
    >>> bias.shape
    TensorShape([1, 4, 10, 10])
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.max_distance = check_positive_int("max_distance", max_distance)
        self.bidirectional = bool(bidirectional)
        per_direction = num_buckets // 2 if bidirectional else num_buckets
        if per_direction < 2 or max_distance <= per_direction // 2:
            raise ValueError(
                f"Need at least 2 buckets per direction and max_distance > their half; got "
                f"num_buckets={num_buckets}, max_distance={max_distance}, "
                f"bidirectional={bidirectional}."
            )
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, x_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_buckets, self.num_heads),
            initializer=self.embeddings_initializer,
        )
        self.built = True

    def call(self, x, key_length=None, query_offset=0):
        query_length = ops.shape(x)[1]
        key_length = query_length if key_length is None else key_length
        query_pos = ops.arange(query_length)[:, None] + query_offset
        key_pos = ops.arange(key_length)[None, :]
        buckets = relative_position_buckets(
            key_pos - query_pos, self.bidirectional, self.num_buckets, self.max_distance
        )
        values = ops.take(ops.cast(self.embeddings, "float32"), buckets, axis=0)  # [T, S, H]
        return ops.transpose(values, (2, 0, 1))[None]

    def compute_output_spec(self, x, key_length=None, query_offset=0):
        t = x.shape[1]
        s = t if key_length is None or not isinstance(key_length, int) else key_length
        return keras.KerasTensor((1, self.num_heads, t, s), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
