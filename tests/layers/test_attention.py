import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_config_roundtrip, check_mixed_precision, check_xla
from tfpretrain.layers import MultiHeadSelfAttention

B, T, D, H, K = 2, 7, 24, 3, 8


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(B, T, D)).astype("float32")


def _keras_twin(layer, x, **kwargs):
    layer(x)
    reference = keras.layers.MultiHeadAttention(num_heads=H, key_dim=K, **kwargs)
    reference(x, x)
    reference.set_weights(layer.get_weights())
    return reference


def test_matches_keras_multi_head_attention(x):
    layer = MultiHeadSelfAttention(H, K)
    out, scores = layer(x, return_attention_scores=True)
    ref_out, ref_scores = _keras_twin(layer, x)(x, x, return_attention_scores=True)
    assert_close(out, ref_out)
    assert_close(scores, ref_scores)


@pytest.mark.parametrize("use_bias", [True, False])
def test_unequal_value_size_and_cross_attention_match_keras(x, use_bias):
    # value_dim != key_dim takes the separate (unfused) projections; a context takes the
    # cross-attention path (one matmul for keys and values when the sizes agree).
    context = np.random.default_rng(1).normal(size=(B, T + 2, D + 4)).astype("float32")
    for value_dim in (K + 2, K):
        layer = MultiHeadSelfAttention(H, K, value_dim=value_dim, use_bias=use_bias)
        layer(x, context=context)
        reference = keras.layers.MultiHeadAttention(
            num_heads=H, key_dim=K, value_dim=value_dim, use_bias=use_bias
        )
        reference(x, context)
        reference.set_weights(layer.get_weights())
        assert_close(layer(x, context=context), reference(x, context))
        self_layer = MultiHeadSelfAttention(H, K, value_dim=value_dim, use_bias=use_bias)
        assert_close(
            self_layer(x), _keras_twin(self_layer, x, value_dim=value_dim, use_bias=use_bias)(x, x)
        )


def test_padding_and_full_masks_match_keras(x):
    layer = MultiHeadSelfAttention(H, K)
    padding = np.array([[1] * T, [1] * 4 + [0] * (T - 4)], dtype=bool)
    full = padding[:, None, :] & np.ones((B, T, T), bool)
    reference = _keras_twin(layer, x)
    assert_close(layer(x, attention_mask=padding), reference(x, x, attention_mask=full))
    assert_close(layer(x, attention_mask=full), reference(x, x, attention_mask=full))


def test_causal_matches_keras_causal_mask(x):
    layer = MultiHeadSelfAttention(H, K, causal=True)
    assert_close(layer(x), _keras_twin(layer, x)(x, x, use_causal_mask=True))


def test_cross_attention_matches_keras(x):
    context = np.random.default_rng(1).normal(size=(B, 5, 12)).astype("float32")
    layer = MultiHeadSelfAttention(H, K)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    out = layer(x, context=context, attention_mask=mask)
    reference = keras.layers.MultiHeadAttention(num_heads=H, key_dim=K)
    reference(x, context)
    reference.set_weights(layer.get_weights())
    full = np.broadcast_to(mask[:, None, :], (B, T, 5))
    assert_close(out, reference(x, context, attention_mask=full))


def test_permutation_equivariant_without_masks(x):
    layer = MultiHeadSelfAttention(H, K)
    perm = np.random.default_rng(2).permutation(T)
    assert_close(layer(x[:, perm]), np.asarray(layer(x))[:, perm], atol=1e-5)


def test_causal_position_never_sees_the_future(x):
    layer = MultiHeadSelfAttention(H, K, causal=True)
    base = np.asarray(layer(x))
    changed = x.copy()
    changed[:, 4:] += 10.0
    out = np.asarray(layer(changed))
    np.testing.assert_allclose(out[:, :4], base[:, :4], atol=1e-6)
    assert not np.allclose(out[:, 4:], base[:, 4:])


@pytest.mark.parametrize("value_dim", [None, K + 1])
def test_cache_decoding_equals_full_pass(x, value_dim):
    layer = MultiHeadSelfAttention(H, K, value_dim=value_dim, causal=True)
    full = np.asarray(layer(x))
    cache = layer.empty_cache(B, T)
    assert [tuple(c.shape) for c in cache] == [(B, H, T, K), (B, H, T, value_dim or K)]
    steps = []
    for t in range(T):
        out, cache = layer(x[:, t : t + 1], cache=cache, cache_index=t)
        steps.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_config_roundtrip(x):
    check_config_roundtrip(MultiHeadSelfAttention(H, K, dropout=0.1, causal=True), x)


def test_xla(x):
    layer = MultiHeadSelfAttention(H, K, causal=True)
    check_xla(lambda v: layer(v), tf.constant(x))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(x, policy):
    check_mixed_precision(lambda: MultiHeadSelfAttention(H, K, causal=True), x, policy)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "key_dim": 4}, "num_heads"),
        ({"num_heads": -2, "key_dim": 4}, "num_heads"),
        ({"num_heads": 2, "key_dim": 0}, "key_dim"),
        ({"num_heads": 2, "key_dim": 4, "dropout": 1.5}, "dropout"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadSelfAttention(**kwargs)


def test_wrong_input_rank():
    with pytest.raises(ValueError, match=r"\[batch, length, features\]"):
        MultiHeadSelfAttention(2, 4)(np.zeros((3, 8), "float32"))


def test_stacked_cache_tensor_is_refused(x):
    layer = MultiHeadSelfAttention(H, K, causal=True)
    stacked = np.zeros((2, 2, H, T, K), "float32")  # batch 2 would unpack without complaint
    with pytest.raises(ValueError, match=r"\(keys, values\) pair"):
        layer(x[:2, :1], cache=stacked, cache_index=0)
    with pytest.raises(ValueError, match=r"\(keys, values\) pair"):
        layer(x[:2, :1], key_value=stacked)


def test_wrong_mask_rank(x):
    with pytest.raises(ValueError, match="attention_mask"):
        MultiHeadSelfAttention(H, K)(x, attention_mask=np.ones((B, T, T, 1), bool))
