"""The encoder-decoder's decoder block: causal self-attention, cross-attention, feed-forward."""

from __future__ import annotations

import keras

from tfpretrain.layers._initializers import clone_initializer
from tfpretrain.layers._validate import check_fraction, check_positive_float, check_positive_int
from tfpretrain.layers.activations import get_activation, serialize_activation
from tfpretrain.layers.attention import MultiHeadSelfAttention
from tfpretrain.layers.dropout import Dropout
from tfpretrain.layers.normalization import check_norm, make_norm


@keras.saving.register_keras_serializable(package="tfpretrain")
class DecoderBlock(keras.layers.Layer):
    """A pre-norm transformer decoder block (Vaswani et al., 2017; T5 layout).

    Computes `x + self_attn(norm(x))`, then `x + cross_attn(norm(x), encoder_outputs)`, then
    `x + ffn(norm(x))`. Both attentions are the shared `MultiHeadSelfAttention`: the
    self-attention is causal and can decode with a key/value cache; the cross-attention
    applies the encoder's padding mask and can take keys and values computed once per
    sequence with `cross_key_value(encoder_outputs)`.

    Args:
        num_heads: number of attention heads; must divide `hidden_dim`.
        hidden_dim: width of the block's input and output.
        intermediate_dim: width of the feed-forward hidden layer.
        dropout: dropout rate after each sub-layer and on the attention probabilities.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: epsilon of the norms.
        norm: `"rms"` (T5) or `"layer"`.
        use_bias: whether projections and feed-forward layers have biases (T5: no).
        scale_attention: scale attention scores by `1/sqrt(head size)` (T5: no).
        kernel_initializer: initializer for all kernels.
        head_dim: size of each attention head; defaults to `hidden_dim // num_heads`.
        gated_ffn: gate the feed-forward hidden layer, `act(x W) * (x V)` (T5 v1.1, FLAN-T5).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        x: decoder hidden states `[B, T, hidden_dim]`.
        encoder_outputs: `[B, S, hidden_dim]`; may be omitted when `cross_key_value` is given.
        encoder_mask: optional `[B, S]` padding mask of the encoder inputs (1 = real token).
        attention_mask: optional `[B, T]` or `[B, T, T]` mask of the decoder inputs.
        self_attention_bias: optional additive bias of the self-attention (relative positions).
        cross_key_value: optional `(keys, values)`, each `[B, H, S, K]`, from
            `cross_key_value(encoder_outputs)`.
        cache: optional self-attention cache `(keys, values)`, each `[B, H, T_max, K]`.
        cache_index: where `x` starts in the cache.
        training: whether dropout is active.

    Returns:
        `[B, T, hidden_dim]`, or `(output, cache)` when a cache is given.

    Example:

    >>> block = DecoderBlock(num_heads=4, hidden_dim=64, intermediate_dim=256)
    >>> block(keras.ops.ones((2, 5, 64)), keras.ops.ones((2, 7, 64))).shape
    TensorShape([2, 5, 64])
    """

    def __init__(
        self,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        activation="relu",
        layer_norm_epsilon: float = 1e-6,
        norm: str = "rms",
        use_bias: bool = False,
        scale_attention: bool = False,
        kernel_initializer="glorot_uniform",
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
        self.activation = get_activation(activation)
        self.layer_norm_epsilon = check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        self.norm = check_norm(norm)
        self.use_bias = bool(use_bias)
        self.scale_attention = bool(scale_attention)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        policy = self.dtype_policy
        init = lambda: clone_initializer(self.kernel_initializer)  # noqa: E731
        head = self.head_dim or hidden_dim // num_heads

        def attention(causal: bool, name: str):
            return MultiHeadSelfAttention(
                num_heads,
                head,
                dropout=self.dropout,
                causal=causal,
                use_bias=self.use_bias,
                scale_scores=self.scale_attention,
                kernel_initializer=init(),
                dtype=policy,
                name=name,
            )

        self.self_attention = attention(True, "self_attention")
        self.self_attention_norm = make_norm(
            norm, self.layer_norm_epsilon, policy, "self_attention_norm"
        )
        self.cross_attention = attention(False, "cross_attention")
        self.cross_attention_norm = make_norm(
            norm, self.layer_norm_epsilon, policy, "cross_attention_norm"
        )
        self.ffn_inner = keras.layers.Dense(
            intermediate_dim,
            activation=self.activation,
            use_bias=self.use_bias,
            kernel_initializer=init(),
            dtype=policy,
            name="ffn_inner",
        )
        self.ffn_gate = None
        if self.gated_ffn:
            self.ffn_gate = keras.layers.Dense(
                intermediate_dim,
                use_bias=self.use_bias,
                kernel_initializer=init(),
                dtype=policy,
                name="ffn_gate",
            )
        self.ffn_outer = keras.layers.Dense(
            hidden_dim,
            use_bias=self.use_bias,
            kernel_initializer=init(),
            dtype=policy,
            name="ffn_outer",
        )
        self.ffn_norm = make_norm(norm, self.layer_norm_epsilon, policy, "ffn_norm")
        self.dropout_layer = Dropout(self.dropout, dtype=policy)

    def build(self, x_shape, encoder_outputs_shape=None):
        if len(x_shape) != 3 or x_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"DecoderBlock(hidden_dim={self.hidden_dim}) expects inputs of shape "
                f"[batch, length, {self.hidden_dim}]; got {tuple(x_shape)}."
            )
        self.self_attention.build(x_shape)
        self.cross_attention.build(x_shape, x_shape)
        for norm in (self.self_attention_norm, self.cross_attention_norm, self.ffn_norm):
            norm.build(x_shape)
        self.ffn_inner.build(x_shape)
        if self.ffn_gate is not None:
            self.ffn_gate.build(x_shape)
        self.ffn_outer.build(tuple(x_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def cross_key_value(self, encoder_outputs):
        """Cross-attention keys and values of `encoder_outputs`, each `[B, H, S, K]`, to reuse."""
        return self.cross_attention.key_value(encoder_outputs)

    def call(
        self,
        x,
        encoder_outputs=None,
        encoder_mask=None,
        attention_mask=None,
        self_attention_bias=None,
        cross_key_value=None,
        cache=None,
        cache_index=None,
        training=None,
    ):
        if encoder_outputs is None and cross_key_value is None:
            raise ValueError(
                "DecoderBlock needs `encoder_outputs` or precomputed `cross_key_value`."
            )
        h = self.self_attention(
            self.self_attention_norm(x),
            attention_mask=attention_mask,
            cache=cache,
            cache_index=cache_index,
            attention_bias=self_attention_bias,
            training=training,
        )
        if cache is not None:
            h, cache = h
        x = x + self.dropout_layer(h, training=training)

        h = self.cross_attention(
            self.cross_attention_norm(x),
            context=encoder_outputs,
            attention_mask=encoder_mask,
            key_value=cross_key_value,
            training=training,
        )
        x = x + self.dropout_layer(h, training=training)

        h = self.ffn_norm(x)
        inner = self.ffn_inner(h)
        if self.ffn_gate is not None:
            inner = inner * self.ffn_gate(h)
        h = self.ffn_outer(self.dropout_layer(inner, training=training))
        x = x + self.dropout_layer(h, training=training)
        return x if cache is None else (x, cache)

    def compute_output_spec(self, x, *args, cache=None, **kwargs):
        out = keras.KerasTensor(x.shape, dtype=self.compute_dtype)
        return out if cache is None else (out, keras.KerasTensor(cache.shape, dtype=cache.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": serialize_activation(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm": self.norm,
                "use_bias": self.use_bias,
                "scale_attention": self.scale_attention,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "head_dim": self.head_dim,
                "gated_ffn": self.gated_ffn,
            }
        )
        return config
