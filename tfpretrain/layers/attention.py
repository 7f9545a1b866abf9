"""The one attention layer of tfpretrain: self- and cross-attention, masks and a key/value cache."""

from __future__ import annotations

import math

import keras
from keras import ops

from tfpretrain.layers._initializers import clone_initializer
from tfpretrain.layers._validate import check_fraction, check_positive_int
from tfpretrain.layers.dropout import Dropout

# Added to masked scores before the softmax; finite so that fully masked rows stay NaN-free.
_MASK_VALUE = -1e9


def _key_value_pair(name: str, value) -> tuple:
    """`value` as a `(keys, values)` pair; a single stacked tensor is refused, since unpacking
    it would split its batch axis without a word."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(
            f"`{name}` must be a (keys, values) pair of [B, H, S, dim] tensors, as "
            f"`empty_cache` and `key_value` return; got {type(value).__name__}."
        )
    return tuple(value)


def combine_masks(
    attention_mask,
    causal: bool,
    query_length,
    key_length,
    query_offset=0,
):
    """Builds one boolean `[B or 1, T, S]` mask (True = may attend) from a user mask and causality.

    Args:
        attention_mask: None, a `[B, S]` padding mask over the keys, or a `[B, T, S]` mask.
        causal: whether query position `i` (shifted by `query_offset`) may only see keys `<= i`.
        query_length: T, the number of queries.
        key_length: S, the number of keys.
        query_offset: position of the first query among the keys (the cache index when decoding).

    Returns:
        A boolean tensor broadcastable to `[B, T, S]`, or None when nothing is masked.
    """
    mask = None
    if attention_mask is not None:
        mask = ops.cast(attention_mask, "bool")
        rank = len(mask.shape)
        if rank == 2:
            mask = mask[:, None, :]
        elif rank != 3:
            raise ValueError(
                "attention_mask must be a [batch, keys] padding mask or a [batch, queries, keys] "
                f"mask; got rank {rank} with shape {tuple(mask.shape)}."
            )
    if causal:
        query_pos = ops.arange(query_length)[:, None] + query_offset
        key_pos = ops.arange(key_length)[None, :]
        causal_mask = ops.expand_dims(key_pos <= query_pos, 0)
        mask = causal_mask if mask is None else ops.logical_and(mask, causal_mask)
    return mask


@keras.saving.register_keras_serializable(package="tfpretrain")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017).

    Self-attention by default; cross-attention when a `context` is passed (queries from `x`,
    keys and values from `context`). Supports a padding or full boolean mask, a causal mask and
    a key/value cache for step-by-step decoding. Weights have the shapes of
    `keras.layers.MultiHeadAttention`, so weights move between the two with `set_weights`.
    The softmax runs in float32 under mixed precision.

    Args:
        num_heads: number of attention heads, > 0.
        key_dim: size of each head for queries and keys, > 0.
        value_dim: size of each head for values; defaults to `key_dim`.
        dropout: dropout rate on the attention probabilities, in [0, 1).
        use_bias: whether the projections have biases.
        causal: if True, position t attends only to positions <= t.
        output_dim: size of the output features; defaults to the query feature size.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        scale_scores: divide the scores by `sqrt(key_dim)` (True, as in Vaswani et al.); T5
            folds that factor into its initialization and uses False.
        **kwargs: standard `keras.layers.Layer` arguments (name, dtype, ...).

    Call arguments:
        x: queries, `[B, T, D]`.
        context: optional keys/values source, `[B, S, D_c]`; defaults to `x` (self-attention).
        attention_mask: optional boolean mask, `[B, S]` (padding over keys, 1 = real token) or
            `[B, T, S]` (1 = may attend).
        cache: optional `(keys [B, H, S_max, key_dim], values [B, H, S_max, value_dim])` cache
            for self-attention decoding, from `empty_cache` (heads before positions, the layout
            the score and value products read directly).
            The keys and values of `x` are written at `cache_index` and attention runs over the
            whole cache (the causal mask hides the positions not yet written).
        cache_index: int or scalar tensor, where `x` starts in the cache.
        attention_bias: optional additive float bias on the scores before the softmax,
            broadcastable to `[B, H, T, S]` (e.g. T5's relative position bias).
        key_value: optional precomputed `(keys, values)`, each `[B, H, S, dim]`, from
            `key_value(context)`, used instead of projecting `context` again (cross-attention
            keys and values computed once per generated sequence).
        return_attention_scores: also return the attention probabilities `[B, H, T, S]`.
        training: whether dropout is active.

    Returns:
        `[B, T, output_dim]`; with `return_attention_scores` a tuple `(output, scores)`; with a
        `cache` the updated cache is appended: `(output, cache)` or `(output, scores, cache)`.

    Example:

    >>> layer = MultiHeadSelfAttention(num_heads=4, key_dim=16, causal=True)
    >>> layer(keras.ops.ones((2, 10, 64))).shape
    TensorShape([2, 10, 64])
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        causal: bool = False,
        output_dim: int | None = None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        scale_scores: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.value_dim = check_positive_int("value_dim", value_dim if value_dim else key_dim)
        self.dropout = check_fraction("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.causal = bool(causal)
        self.output_dim = (
            None if output_dim is None else check_positive_int("output_dim", output_dim)
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.scale_scores = bool(scale_scores)
        self.dropout_layer = Dropout(self.dropout, dtype=self.dtype_policy)

    def _projection(self, name: str, shape: tuple, bias_shape: tuple):
        kernel = self.add_weight(
            name=f"{name}_kernel",
            shape=shape,
            initializer=clone_initializer(self.kernel_initializer),
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                name=f"{name}_bias",
                shape=bias_shape,
                initializer=clone_initializer(self.bias_initializer),
            )
        return kernel, bias

    def build(self, x_shape, context_shape=None):
        if len(x_shape) != 3 or x_shape[-1] is None:
            raise ValueError(
                f"{self.__class__.__name__} expects queries of shape [batch, length, features] "
                f"with a known feature size; got {tuple(x_shape)}."
            )
        query_features = x_shape[-1]
        kv_features = context_shape[-1] if context_shape is not None else query_features
        out_features = self.output_dim or query_features
        h, k, v = self.num_heads, self.key_dim, self.value_dim
        # Same weight order and shapes as keras.layers.MultiHeadAttention.
        self.query_kernel, self.query_bias = self._projection(
            "query", (query_features, h, k), (h, k)
        )
        self.key_kernel, self.key_bias = self._projection("key", (kv_features, h, k), (h, k))
        self.value_kernel, self.value_bias = self._projection("value", (kv_features, h, v), (h, v))
        self.output_kernel, self.output_bias = self._projection(
            "output", (h, v, out_features), (out_features,)
        )
        self.built = True

    def _project(self, x, kernel, bias, contract: int = 1):
        """`x [B, T, *in]` times `kernel [*in, *out]` plus `bias [*out]`, as `[B, T, *out]`.

        `contract` is the number of leading kernel axes summed over (`in`). Runs as `Dense`
        does: one 2-D matmul, then the flat bias.
        """
        fan_in = math.prod(kernel.shape[:contract])
        out_shape = tuple(kernel.shape[contract:])
        fan_out = math.prod(out_shape)
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        y = ops.matmul(
            ops.reshape(x, (batch, length, fan_in)), ops.reshape(kernel, (fan_in, fan_out))
        )
        if bias is not None:
            y = ops.add(y, ops.reshape(bias, (fan_out,)))
        return ops.reshape(y, (batch, length) + out_shape)

    def _project_heads(self, x, weights):
        """Projects `x [B, T, D]` by each `(kernel [D, H, K], bias [H, K] or None)` of `weights`.

        One matmul over the kernels side by side (nanoGPT's fused projection: the forward pass
        runs one product as wide as all of them, the backward pass one input-gradient product
        instead of one each); the weights stay separate variables, laid out as
        `keras.layers.MultiHeadAttention`'s. The kernels are joined as `[D, H * K]` matrices:
        XLA hoists the join out of a decoding loop, and a product with a matrix it must still
        reshape in the loop becomes a loop fusion that reads the weights far slower than its
        matrix-vector code (3x at gpt2-small, BENCHMARKS.md). Returns one `[B, T, H, K]` per
        pair.
        """
        kernels = [ops.reshape(kernel, (kernel.shape[0], -1)) for kernel, _ in weights]
        kernel = kernels[0] if len(kernels) == 1 else ops.concatenate(kernels, axis=1)
        bias = None
        if self.use_bias:
            biases = [ops.reshape(bias, (-1,)) for _, bias in weights]
            bias = biases[0] if len(biases) == 1 else ops.concatenate(biases, axis=0)
        projected = self._project(x, kernel, bias)
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads, size = weights[0][0].shape[1:]
        # A split, not slices: its gradient is one concatenation, where each slice's gradient
        # writes a zero tensor as wide as all the projections (the graph executor runs them
        # unfused: 14% of a bfloat16 `shakespeare` step on a CPU).
        parts = ops.split(projected, len(weights), axis=-1) if len(weights) > 1 else [projected]
        return [ops.reshape(part, (batch, length, heads, size)) for part in parts]

    def _keys_values(self, source):
        """Keys and values of `source` `[B, S, D]`, each `[B, H, S, K]`.

        Heads before positions everywhere (training, caches, `key_value`), the layout the
        score and value products read, so decoding never transposes a whole cache per token.
        """
        keys, values = (self.key_kernel, self.key_bias), (self.value_kernel, self.value_bias)
        if self.key_dim == self.value_dim:
            key, value = self._project_heads(source, [keys, values])
        else:
            (key,), (value,) = (
                self._project_heads(source, [keys]),
                self._project_heads(source, [values]),
            )
        return ops.transpose(key, (0, 2, 1, 3)), ops.transpose(value, (0, 2, 1, 3))

    def _query_weights(self):
        """The query kernel and bias with the score scale folded in: (xW + b)s = x(Ws) + bs.

        Scaling the weights costs O(D·H·K) once per call (once per generation: XLA hoists it
        out of the decoding loop) instead of an elementwise pass over every projected query.
        """
        if not self.scale_scores:
            return self.query_kernel, self.query_bias
        scale = 1.0 / math.sqrt(self.key_dim)
        bias = None if self.query_bias is None else self.query_bias * scale
        return self.query_kernel * scale, bias

    def empty_cache(self, batch_size, max_length: int, dtype=None):
        """A zero self-attention cache for `call(..., cache=)`: keys `[B, H, max_length, key_dim]`
        and values `[B, H, max_length, value_dim]`, as a pair.

        Keys and values are separate tensors so that each step updates both in place and the
        score and value products read them where they lie; halves of one stacked tensor would
        be copied out before every product.

        Args:
            batch_size: int or scalar tensor, the number of sequences decoded together.
            max_length: positions the cache holds (prompt and generated tokens together).
            dtype: the cache dtype; defaults to the layer's compute dtype.
        """
        dtype = dtype or self.compute_dtype
        return (
            ops.zeros((batch_size, self.num_heads, max_length, self.key_dim), dtype),
            ops.zeros((batch_size, self.num_heads, max_length, self.value_dim), dtype),
        )

    def key_value(self, context):
        """Projects `context` `[B, S, D_c]` to keys `[B, H, S, key_dim]` and values
        `[B, H, S, value_dim]`."""
        return self._keys_values(context)

    def call(
        self,
        x,
        context=None,
        attention_mask=None,
        cache=None,
        cache_index=None,
        return_attention_scores: bool = False,
        training=None,
        attention_bias=None,
        key_value=None,
    ):
        if key_value is not None and cache is not None:
            raise ValueError("Pass either precomputed `key_value` or a self-attention `cache`.")
        if context is None and key_value is None and self.key_dim == self.value_dim:
            query, key, value = self._project_heads(
                x,
                [
                    self._query_weights(),
                    (self.key_kernel, self.key_bias),
                    (self.value_kernel, self.value_bias),
                ],
            )
            key, value = ops.transpose(key, (0, 2, 1, 3)), ops.transpose(value, (0, 2, 1, 3))
        else:
            (query,) = self._project_heads(x, [self._query_weights()])
            if key_value is not None:
                key, value = _key_value_pair("key_value", key_value)
            else:
                key, value = self._keys_values(x if context is None else context)

        query_offset = 0
        if cache is not None:
            if context is not None:
                raise ValueError(
                    "A key/value cache is for self-attention; do not pass `context` with `cache`."
                )
            if cache_index is None:
                raise ValueError("`cache_index` is required together with `cache`.")
            key_cache, value_cache = _key_value_pair("cache", cache)
            key = ops.slice_update(
                key_cache, [0, 0, cache_index, 0], ops.cast(key, key_cache.dtype)
            )
            value = ops.slice_update(
                value_cache, [0, 0, cache_index, 0], ops.cast(value, value_cache.dtype)
            )
            cache = (key, value)
            query_offset = cache_index

        scores = ops.einsum("bthk,bhsk->bhts", query, ops.cast(key, query.dtype))
        scores = ops.cast(scores, "float32")
        if attention_bias is not None:
            scores = scores + ops.cast(attention_bias, "float32")
        mask = combine_masks(
            attention_mask, self.causal, ops.shape(query)[1], ops.shape(key)[2], query_offset
        )
        if mask is not None:
            scores = ops.where(mask[:, None, :, :], scores, _MASK_VALUE)
        probs = ops.softmax(scores, axis=-1)
        probs = self.dropout_layer(ops.cast(probs, self.compute_dtype), training=training)
        attended = ops.einsum("bhts,bhsv->bthv", probs, ops.cast(value, self.compute_dtype))
        output = self._project(attended, self.output_kernel, self.output_bias, contract=2)

        results = (output,)
        if return_attention_scores:
            results += (probs,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def compute_output_shape(self, x_shape, context_shape=None):
        return tuple(x_shape[:-1]) + (self.output_dim or x_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "causal": self.causal,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "scale_scores": self.scale_scores,
            }
        )
        return config
