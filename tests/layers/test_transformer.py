import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_config_roundtrip, check_mixed_precision, check_xla
from tfpretrain.layers import TransformerBlock

B, T, D, H, F = 2, 6, 16, 4, 32


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(B, T, D)).astype("float32")


def _reference(block, x, mask=None):
    """The block recomputed from keras.layers equivalents holding the block's weights."""
    mha = keras.layers.MultiHeadAttention(H, D // H)
    mha(x, x)
    mha.set_weights(block.attention.get_weights())
    norm1, norm2 = (
        keras.layers.LayerNormalization(epsilon=1e-5),
        keras.layers.LayerNormalization(epsilon=1e-5),
    )
    norm1.build(x.shape)
    norm2.build(x.shape)
    norm1.set_weights(block.attention_norm.get_weights())
    norm2.set_weights(block.ffn_norm.get_weights())
    inner, outer = keras.layers.Dense(F, activation="gelu"), keras.layers.Dense(D)
    inner.build(x.shape)
    outer.build((B, T, F))
    inner.set_weights(block.ffn_inner.get_weights())
    outer.set_weights(block.ffn_outer.get_weights())

    def attend(h):
        return mha(h, h, attention_mask=mask, use_causal_mask=block.causal)

    if block.norm_first:
        h = x + attend(norm1(x))
        return h + outer(inner(norm2(h)))
    h = norm1(x + attend(x))
    return norm2(h + outer(inner(h)))


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("causal", [True, False])
def test_matches_keras_layers(x, norm_first, causal):
    block = TransformerBlock(H, D, F, norm_first=norm_first, causal=causal)
    mask = np.array([[1] * T, [1] * 3 + [0] * (T - 3)], bool)
    out = block(x, attention_mask=mask)
    full_mask = np.broadcast_to(mask[:, None, :], (B, T, T))
    assert_close(out, _reference(block, x, full_mask), atol=1e-5)


def test_cache_decoding_equals_full_pass(x):
    block = TransformerBlock(H, D, F, causal=True)
    full = np.asarray(block(x))
    cache = block.attention.empty_cache(B, T)
    outs = []
    for t in range(T):
        out, cache = block(x[:, t : t + 1], cache=cache, cache_index=t)
        outs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)


def test_trains_to_lower_loss(x):
    inputs = keras.Input((T, D))
    model = keras.Model(inputs, keras.layers.Dense(1)(TransformerBlock(H, D, F)(inputs)))
    model.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=True)
    y = x.sum(-1, keepdims=True)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.5 * first


def test_config_roundtrip(x):
    check_config_roundtrip(TransformerBlock(H, D, F, dropout=0.1, norm_first=False, causal=True), x)


def test_xla(x):
    block = TransformerBlock(H, D, F, causal=True)
    check_xla(lambda v: block(v), tf.constant(x))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(x, policy):
    check_mixed_precision(lambda: TransformerBlock(H, D, F), x, policy, atol=0.1, rtol=0.1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(3, 16, 32)
    with pytest.raises(ValueError, match="num_heads"):
        TransformerBlock(0, 16, 32)


def test_wrong_width(x):
    with pytest.raises(ValueError, match=r"\[batch, length, 32\]"):
        TransformerBlock(4, 32, 64)(x)


@pytest.mark.parametrize("norm_first", [True, False])
def test_remat_gives_the_same_outputs_and_gradients(x, norm_first):
    """Rematerialisation changes what is kept for the backward pass, never the numbers."""
    plain = TransformerBlock(H, D, F, norm_first=norm_first, causal=True)
    remat = TransformerBlock(H, D, F, norm_first=norm_first, causal=True, remat=True)
    plain(x)
    remat(x)
    remat.set_weights(plain.get_weights())
    mask = np.array([[1] * T, [1] * 4 + [0] * (T - 4)], bool)

    def grads(block):
        with tf.GradientTape() as tape:
            out = block(tf.constant(x), attention_mask=mask, training=True)
            loss = tf.reduce_sum(out**2)
        return out, tape.gradient(loss, block.trainable_variables)

    out_plain, g_plain = grads(plain)
    out_remat, g_remat = grads(remat)
    assert_close(out_remat, out_plain, atol=1e-5)
    assert all(g is not None for g in g_remat)
    assert_close(g_remat, g_plain, atol=1e-4)
    compiled = tf.function(lambda v: grads(remat)[1], jit_compile=True)
    assert_close(compiled(tf.constant(x)), g_plain, atol=1e-4)
    assert remat.get_config()["remat"] is True


@pytest.mark.parametrize("norm_first", [True, False])
def test_query_positions_equal_the_full_output_gathered(x, norm_first):
    block = TransformerBlock(H, D, F, norm_first=norm_first)
    mask = np.array([[1] * T, [1] * 4 + [0] * (T - 4)], bool)
    positions = np.array([[0, 5, 2], [3, 1, 1]], "int32")

    def outputs_and_grads(select):
        with tf.GradientTape() as tape:
            if select:
                out = block(tf.constant(x), attention_mask=mask, query_positions=positions)
            else:
                full = block(tf.constant(x), attention_mask=mask)
                out = tf.gather(full, positions, batch_dims=1)
            loss = tf.reduce_sum(out**2)
        return out, tape.gradient(loss, block.trainable_variables)

    out, grads = outputs_and_grads(True)
    expected, expected_grads = outputs_and_grads(False)
    assert out.shape == (B, 3, D)
    assert_close(out, expected, atol=1e-5)
    assert_close(grads, expected_grads, atol=1e-4)
    compiled = tf.function(lambda: outputs_and_grads(True), jit_compile=True)
    assert_close(compiled()[1], expected_grads, atol=1e-4)


def test_query_positions_refuse_what_they_cannot_gather(x):
    positions = np.zeros((B, 2), "int32")
    with pytest.raises(ValueError, match="query_positions"):
        TransformerBlock(H, D, F, causal=True)(x, query_positions=positions)
    with pytest.raises(ValueError, match="query_positions"):
        TransformerBlock(H, D, F)(
            x, attention_mask=np.ones((B, T, T), bool), query_positions=positions
        )
