import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_config_roundtrip, check_xla
from tfpretrain.layers import MultiHeadSelfAttention, TransformerBlock
from tfpretrain.layers.decoder import DecoderBlock
from tfpretrain.layers.normalization import make_norm

B, T, S, D, H, F = 2, 5, 7, 16, 4, 32
rng = np.random.default_rng(0)


def rms(x, scale, eps=1e-6):
    return x / np.sqrt(np.mean(x**2, -1, keepdims=True) + eps) * scale


def attend(q_in, kv_in, layer, mask=None, bias=None):
    """Unscaled, bias-free multi-head attention in NumPy with the layer's kernels (T5)."""
    q = np.einsum("btd,dhk->bthk", q_in, np.asarray(layer.query_kernel))
    k = np.einsum("bsd,dhk->bshk", kv_in, np.asarray(layer.key_kernel))
    v = np.einsum("bsd,dhk->bshk", kv_in, np.asarray(layer.value_kernel))
    scores = np.einsum("bthk,bshk->bhts", q, k)
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhts,bshk,hkd->btd", p, v, np.asarray(layer.output_kernel))


def ffn(x, block):
    inner = np.maximum(x @ np.asarray(block.ffn_inner.kernel), 0)
    return inner @ np.asarray(block.ffn_outer.kernel)


def test_rms_norm_matches_formula():
    norm = make_norm("rms", 1e-6)
    x = rng.normal(size=(B, T, D)).astype("float32")
    norm.build(x.shape)
    norm.scale.assign(rng.normal(size=D).astype("float32"))
    assert_close(norm(x), rms(x, np.asarray(norm.scale)), atol=1e-5)
    with pytest.raises(ValueError, match="norm"):
        make_norm("batch", 1e-6)


def test_t5_encoder_block_matches_numpy():
    block = TransformerBlock(
        H,
        D,
        F,
        activation="relu",
        norm="rms",
        use_bias=False,
        scale_attention=False,
        layer_norm_epsilon=1e-6,
    )
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.array([[1] * T, [1] * 3 + [0] * (T - 3)], bool)
    bias = rng.normal(size=(1, H, T, T)).astype("float32")
    out = block(x, attention_mask=mask, attention_bias=bias)
    assert not any("bias" in w.path for w in block.weights)
    n = rms(x, np.asarray(block.attention_norm.scale))
    h = x + attend(n, n, block.attention, np.broadcast_to(mask[:, None, :], (B, T, T)), bias)
    want = h + ffn(rms(h, np.asarray(block.ffn_norm.scale)), block)
    assert_close(out, want, atol=1e-4)


@pytest.fixture
def block():
    return DecoderBlock(H, D, F)


@pytest.fixture
def inputs():
    x = rng.normal(size=(B, T, D)).astype("float32")
    enc = rng.normal(size=(B, S, D)).astype("float32")
    mask = np.array([[1] * S, [1] * 4 + [0] * (S - 4)], bool)
    bias = rng.normal(size=(1, H, T, T)).astype("float32")
    return x, enc, mask, bias


def test_decoder_block_matches_numpy(block, inputs):
    x, enc, mask, bias = inputs
    out = block(x, enc, encoder_mask=mask, self_attention_bias=bias)
    causal = np.tril(np.ones((T, T), bool))[None].repeat(B, 0)
    h = rms(x, np.asarray(block.self_attention_norm.scale))
    h = x + attend(h, h, block.self_attention, causal, bias)
    c = rms(h, np.asarray(block.cross_attention_norm.scale))
    h = h + attend(c, enc, block.cross_attention, np.broadcast_to(mask[:, None, :], (B, T, S)))
    want = h + ffn(rms(h, np.asarray(block.ffn_norm.scale)), block)
    assert_close(out, want, atol=1e-4)


def test_padding_and_causality(block, inputs):
    x, enc, mask, _ = inputs
    out = np.asarray(block(x, enc, encoder_mask=mask))
    enc2 = enc.copy()
    enc2[1, 4:] = 100.0  # padded encoder positions of row 1 must not matter
    x2 = x.copy()
    x2[:, 3:] = -5.0  # later decoder positions must not change earlier outputs
    out2 = np.asarray(block(x2, enc2, encoder_mask=mask))
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(block(x, enc2, encoder_mask=mask))[1], out[1], atol=1e-5)


def test_cached_decoding_with_precomputed_cross_key_value(block, inputs):
    x, enc, mask, _ = inputs
    full = np.asarray(block(x, enc, encoder_mask=mask))
    cross = block.cross_key_value(enc)
    cache = block.self_attention.empty_cache(B, T)
    steps = []
    for t in range(T):
        out, cache = block(
            x[:, t : t + 1], encoder_mask=mask, cross_key_value=cross, cache=cache, cache_index=t
        )
        steps.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


def test_attention_key_value_and_bad_combinations():
    layer = MultiHeadSelfAttention(2, 4)
    x = rng.normal(size=(1, 3, 8)).astype("float32")
    ctx = rng.normal(size=(1, 5, 8)).astype("float32")
    assert_close(layer(x, context=ctx), layer(x, key_value=layer.key_value(ctx)))
    with pytest.raises(ValueError, match="key_value"):
        layer(x, key_value=layer.key_value(ctx), cache=layer.empty_cache(1, 2), cache_index=0)
    with pytest.raises(ValueError, match="encoder_outputs"):
        DecoderBlock(2, 8, 16)(x)


def test_config_roundtrip_xla_mixed_precision(block, inputs):
    x, enc, mask, _ = inputs
    check_config_roundtrip(
        DecoderBlock(H, D, F, dropout=0.1, norm="layer", use_bias=True, scale_attention=True),
        x,
        enc,
    )
    check_xla(lambda a, b: block(a, b), tf.constant(x), tf.constant(enc))
    reference = np.asarray(block(x, enc, encoder_mask=mask))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        low = DecoderBlock(H, D, F)
        low(x, enc, encoder_mask=mask)
        low.set_weights(block.get_weights())
        out = low(x, enc, encoder_mask=mask)
        assert out.dtype == "bfloat16" and all(w.dtype == "float32" for w in low.weights)
        np.testing.assert_allclose(
            np.asarray(tf.cast(out, tf.float32)), reference, atol=0.15, rtol=0.05
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
