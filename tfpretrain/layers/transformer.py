"""The transformer block: attention and a feed-forward network, each with a residual connection."""

from __future__ import annotations

import keras

from tfpretrain.layers._initializers import clone_initializer
from tfpretrain.layers._validate import check_fraction, check_positive_float, check_positive_int
from tfpretrain.layers.activations import get_activation, serialize_activation
from tfpretrain.layers.attention import MultiHeadSelfAttention
from tfpretrain.layers.dropout import Dropout
from tfpretrain.layers.normalization import check_norm, make_norm


@keras.saving.register_keras_serializable(package="tfpretrain")
class TransformerBlock(keras.layers.Layer):
    """A transformer encoder (or decoder-only) block.

    Pre-norm (`norm_first=True`, GPT-2 and most modern models) computes
    `x + attn(norm(x))` then `x + ffn(norm(x))`; post-norm (`norm_first=False`, the original
    transformer and BERT) computes `norm(x + attn(x))` then `norm(x + ffn(x))`.

    Args:
        num_heads: number of attention heads; must divide `hidden_dim`.
        hidden_dim: width of the block's input and output.
        intermediate_dim: width of the feed-forward hidden layer.
        dropout: dropout rate after attention, inside attention and after the feed-forward.
        norm_first: pre-norm (True) or post-norm (False).
        causal: whether the attention is causal.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: epsilon of the layer norms.
        kernel_initializer: initializer for all kernels.
        remat: rematerialise in training: the feed-forward sub-block (and the attention sub-block
            when `dropout` is 0) keeps only its input for the backward pass and recomputes its
            activations there (`keras.remat`, i.e. `tf.recompute_grad`), trading compute for
            the memory of long sequences. Attention with dropout is not recomputed, because a
            recomputed dropout mask would differ from the forward one.
        norm: `"layer"` (LayerNorm) or `"rms"` (RMSNorm, as in T5).
        use_bias: whether the attention projections, feed-forward layers and layer norms
            have biases (T5 and nanoGPT: no).
        scale_attention: scale attention scores by `1/sqrt(head size)` (T5: no).
        head_dim: size of each attention head; defaults to `hidden_dim // num_heads` (T5 v1.1
            small has 6 heads of 64 on a 512-wide stream).
        gated_ffn: gate the feed-forward hidden layer, `act(x W) * (x V)` with `V` the
            `ffn_gate` layer (GLU variants, Shazeer 2020; T5 v1.1 and FLAN-T5).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: `[B, T, hidden_dim]`.
        attention_mask: optional `[B, T]` padding mask or `[B, T, T]` boolean mask.
        cache: optional key/value cache of the attention layer (see `MultiHeadSelfAttention`).
        cache_index: where `x` starts in the cache.
        training: whether dropout is active.
        attention_bias: optional additive attention bias broadcastable to `[B, H, T, S]`, such
            as a `RelativePositionBias` output shared by all blocks.
        query_positions: optional int `[B, P]`: compute the block's output only at these
            positions (the keys and values still come from every position), the same values
            as the full output gathered there at about P/T of the cost of the queries, the
            output projection and the feed-forward network. For a last block whose output is
            read at a few positions (BERT's masked tokens). Not with a cache, causal attention,
            a `[B, T, S]` mask or an attention bias.

    Returns:
        `[B, T, hidden_dim]` (`[B, P, hidden_dim]` with `query_positions`), or
        `(output, cache)` when a cache is given.

    Example:

    >>> block = TransformerBlock(num_heads=4, hidden_dim=64, intermediate_dim=256, causal=True)
    >>> block(keras.ops.ones((2, 10, 64))).shape
    TensorShape([2, 10, 64])
    """

    def __init__(
        self,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        causal: bool = False,
        activation="gelu",
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer="glorot_uniform",
        remat: bool = False,
        norm: str = "layer",
        use_bias: bool = True,
        scale_attention: bool = True,
        head_dim: int | None = None,
        gated_ffn: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.head_dim = None if head_dim is None else check_positive_int("head_dim", head_dim)
        self.gated_ffn = bool(gated_ffn)
        if head_dim is None and hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` ({num_heads})."
            )
        self.dropout = check_fraction("dropout", dropout)
        self.norm_first = bool(norm_first)
        self.causal = bool(causal)
        self.activation = get_activation(activation)
        self.layer_norm_epsilon = check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.remat = bool(remat)
        self.norm = check_norm(norm)
        self.use_bias = bool(use_bias)
        self.scale_attention = bool(scale_attention)

        policy = self.dtype_policy
        init = lambda: clone_initializer(self.kernel_initializer)  # noqa: E731
        self.attention = MultiHeadSelfAttention(
            num_heads,
            self.head_dim or hidden_dim // num_heads,
            dropout=self.dropout,
            causal=self.causal,
            kernel_initializer=init(),
            dtype=policy,
            name="attention",
            use_bias=self.use_bias,
            scale_scores=self.scale_attention,
        )
        self.attention_norm = make_norm(
            self.norm, self.layer_norm_epsilon, policy, "attention_norm", center=self.use_bias
        )
        self.ffn_inner = keras.layers.Dense(
            intermediate_dim,
            activation=self.activation,
            kernel_initializer=init(),
            dtype=policy,
            name="ffn_inner",
            use_bias=self.use_bias,
        )
        self.ffn_gate = None
        if self.gated_ffn:
            self.ffn_gate = keras.layers.Dense(
                intermediate_dim,
                kernel_initializer=init(),
                dtype=policy,
                name="ffn_gate",
                use_bias=self.use_bias,
            )
        self.ffn_outer = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=init(),
            dtype=policy,
            name="ffn_outer",
            use_bias=self.use_bias,
        )
        self.ffn_norm = make_norm(
            self.norm, self.layer_norm_epsilon, policy, "ffn_norm", center=self.use_bias
        )
        self.dropout_layer = Dropout(self.dropout, dtype=policy)

    def build(self, x_shape):
        if len(x_shape) != 3 or x_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"TransformerBlock(hidden_dim={self.hidden_dim}) expects inputs of shape "
                f"[batch, length, {self.hidden_dim}]; got {tuple(x_shape)}."
            )
        self.attention.build(x_shape)
        self.attention_norm.build(x_shape)
        self.ffn_inner.build(x_shape)
        if self.ffn_gate is not None:
            self.ffn_gate.build(x_shape)
        self.ffn_outer.build(tuple(x_shape[:-1]) + (self.intermediate_dim,))
        self.ffn_norm.build(x_shape)
        self.built = True

    def _attend(
        self,
        x,
        attention_mask=None,
        cache=None,
        cache_index=None,
        training=None,
        attention_bias=None,
        queries=None,
    ):
        h = self.attention_norm(x) if self.norm_first else x
        if queries is not None:  # queries at some positions, keys and values from all of `x`
            q = self.attention_norm(queries) if self.norm_first else queries
            return self.attention(q, context=h, attention_mask=attention_mask, training=training)
        return self.attention(
            h,
            attention_mask=attention_mask,
            cache=cache,
            cache_index=cache_index,
            training=training,
            attention_bias=attention_bias,
        )

    def _feed_forward(self, x):
        h = self.ffn_norm(x) if self.norm_first else x
        inner = self.ffn_inner(h)
        if self.ffn_gate is not None:
            inner = inner * self.ffn_gate(h)
        return self.ffn_outer(inner)

    def _gather_queries(self, x, query_positions, attention_mask, cache, attention_bias):
        if (
            cache is not None
            or self.causal
            or attention_bias is not None
            or (attention_mask is not None and len(attention_mask.shape) != 2)
        ):
            raise ValueError(
                "`query_positions` works with a [batch, keys] padding mask only: not with a cache, "
                "causal attention, a [batch, queries, keys] mask or an attention bias, whose rows "
                "would have to be gathered too."
            )
        positions = keras.ops.cast(query_positions, "int32")[:, :, None]
        return keras.ops.take_along_axis(x, positions, axis=1)

    def call(
        self,
        x,
        attention_mask=None,
        cache=None,
        cache_index=None,
        training=None,
        attention_bias=None,
        query_positions=None,
    ):
        queries = None
        if query_positions is not None:
            queries = self._gather_queries(
                x, query_positions, attention_mask, cache, attention_bias
            )
        recompute = self.remat and training and cache is None
        residual = x if queries is None else queries
        # A trainable attention bias (T5's) would need gradients through the recomputation, so
        # attention with a bias, like attention with dropout, is not recomputed.
        if queries is not None:
            attended = self._attend(
                x, attention_mask=attention_mask, training=training, queries=queries
            )
        elif recompute and not self.dropout and attention_bias is None:
            # The mask is closed over, not passed: a boolean input has no gradient to recompute.
            attended = keras.remat(
                lambda v: self._attend(v, attention_mask=attention_mask, training=training)
            )(x)
        else:
            attended = self._attend(
                x,
                attention_mask=attention_mask,
                cache=cache,
                cache_index=cache_index,
                training=training,
                attention_bias=attention_bias,
            )
        if cache is not None:
            attended, cache = attended
        x = residual + self.dropout_layer(attended, training=training)
        if not self.norm_first:
            x = self.attention_norm(x)

        residual = x
        h = keras.remat(self._feed_forward)(x) if recompute else self._feed_forward(x)
        x = residual + self.dropout_layer(h, training=training)
        if not self.norm_first:
            x = self.ffn_norm(x)
        return x if cache is None else (x, cache)

    def compute_output_shape(self, x_shape, query_positions_shape=None):
        if query_positions_shape is not None:
            return tuple(query_positions_shape) + (x_shape[-1],)
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "norm_first": self.norm_first,
                "causal": self.causal,
                "activation": serialize_activation(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "remat": self.remat,
                "norm": self.norm,
                "use_bias": self.use_bias,
                "scale_attention": self.scale_attention,
                "head_dim": self.head_dim,
                "gated_ffn": self.gated_ffn,
            }
        )
        return config
