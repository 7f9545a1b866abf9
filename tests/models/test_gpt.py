import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_keras_roundtrip
from tfpretrain.models.gpt import GPTConfig, GPTDecoder, build_gpt

TINY = GPTConfig(vocabulary_size=23, sequence_length=16, num_layers=2, num_heads=2, hidden_dim=16)


def test_presets():
    nano = GPTConfig.preset("nano", vocabulary_size=65)
    assert (nano.num_layers, nano.num_heads, nano.hidden_dim, nano.sequence_length) == (
        4,
        4,
        128,
        64,
    )
    assert nano.intermediate_dim == 512
    shakespeare = GPTConfig.preset("shakespeare", vocabulary_size=65)
    assert (
        shakespeare.num_layers,
        shakespeare.num_heads,
        shakespeare.hidden_dim,
        shakespeare.sequence_length,
    ) == (6, 6, 384, 256)
    small = GPTConfig.preset("gpt2-small")
    assert (
        small.num_layers,
        small.num_heads,
        small.hidden_dim,
        small.sequence_length,
        small.vocabulary_size,
    ) == (12, 12, 768, 1024, 50257)
    assert GPTConfig.preset("nano", sequence_length=32).sequence_length == 32
    with pytest.raises(ValueError, match="preset"):
        GPTConfig.preset("huge")
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(hidden_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.0)
    assert GPTConfig.from_dict({"num_layers": 2}).num_layers == 2
    with pytest.raises(ValueError, match="Unknown"):
        GPTConfig.from_dict({"layers": 2})


def test_parameter_count_matches_gpt_formula():
    model = build_gpt(GPTConfig.preset("nano", vocabulary_size=65))
    d, v, t, n = 128, 65, 64, 4
    block = 4 * d * d + 4 * d + 2 * (d * 4 * d) + 4 * d + d + 4 * d  # attention, FFN, 2 layer norms
    # Tied head: the token matrix is counted once, no separate output matrix.
    assert model.count_params() == v * d + t * d + n * block + 2 * d


def test_residual_projection_initialisation():
    # GPT-2's depth scaling by default; the nano preset keeps N(0, 0.02) everywhere (measured
    # better).
    for config, residual_std in (
        (
            GPTConfig(
                vocabulary_size=65, sequence_length=64, num_layers=4, num_heads=4, hidden_dim=128
            ),
            0.02 / 8**0.5,
        ),
        (GPTConfig.preset("nano", vocabulary_size=65), 0.02),
    ):
        model = build_gpt(config)
        for i in range(config.num_layers):
            block = model.get_layer(f"block_{i}")
            for kernel in (block.attention.output_kernel, block.ffn_outer.kernel):
                assert np.std(kernel.numpy()) == pytest.approx(residual_std, rel=0.05)
            assert np.std(block.ffn_inner.kernel.numpy()) == pytest.approx(0.02, rel=0.05)


def test_build_without_initialisation_has_zero_weights_of_the_same_shapes():
    # For loaders that overwrite every weight: no random draws, the same variables.
    config = GPTConfig.preset("nano", vocabulary_size=65)
    drawn, blank = build_gpt(config), build_gpt(config, initialize=False)
    assert [(w.path, w.shape) for w in drawn.weights] == [(w.path, w.shape) for w in blank.weights]
    for weight in blank.weights:
        expected = 1.0 if weight.path.endswith("gamma") else 0.0
        assert np.all(weight.numpy() == expected), weight.path
    kernel = drawn.get_layer("block_0").attention.output_kernel
    assert np.std(kernel.numpy()) == pytest.approx(0.02, rel=0.1)


def test_bias_free_variant_drops_every_bias():
    config = GPTConfig.preset("nano", vocabulary_size=65, use_bias=False)
    model = build_gpt(config)
    d, v, t, n = 128, 65, 64, 4
    # nanoGPT's bias=False: 12·d² per block plus one LayerNorm scale per norm, no bias vectors.
    assert model.count_params() == v * d + t * d + n * (12 * d * d + 2 * d) + d
    names = [w.path for w in model.weights]
    assert not [name for name in names if name.endswith(("bias", "beta"))], names
    decoder = GPTDecoder(model)
    ids = np.random.default_rng(3).integers(0, 65, size=(2, 6)).astype("int32")
    cache = decoder.prefill(ids[:, :5], decoder.initial_cache(2, 8))
    logits, _ = decoder.step(ids[:, 5:6], cache, tf.constant(5))
    assert_close(logits, model(ids)[:, 5], atol=1e-4)


def test_causal_and_tied_head():
    model = build_gpt(TINY)
    ids = np.random.default_rng(0).integers(0, 23, size=(2, 12)).astype("int32")
    logits = model(ids)
    assert logits.shape == (2, 12, 23) and logits.dtype == "float32"
    changed = ids.copy()
    changed[:, 8:] = (changed[:, 8:] + 1) % 23
    assert_close(model(changed)[:, :8], logits[:, :8], atol=1e-5)
    assert not np.allclose(model(changed)[:, 8:], logits[:, 8:])
    # The head is the transposed token embedding applied to the final-normed hidden states.
    hidden = keras.Model(model.input, model.get_layer("final_norm").output)(ids)
    table = model.get_layer("embedding").token_embedding.embeddings
    assert_close(logits, np.einsum("btd,vd->btv", hidden, table), atol=1e-5)


def test_keras_round_trip(tmp_path):
    model = build_gpt(TINY)
    ids = np.random.default_rng(1).integers(0, 23, size=(2, 9)).astype("int32")
    loaded = check_keras_roundtrip(model, ids, tmp_path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_cached_steps_equal_the_full_forward_pass():
    model = build_gpt(TINY)
    decoder = GPTDecoder(model)
    ids = np.random.default_rng(2).integers(0, 23, size=(3, 10)).astype("int32")
    full = model(ids)
    # Prefill the first 4 positions, then one token at a time.
    cache = decoder.prefill(ids[:, :4], decoder.initial_cache(3, 16))
    for i in range(3, 10):
        logits, cache = decoder.step(ids[:, i : i + 1], cache, tf.constant(i))
        assert_close(logits, full[:, i], atol=1e-4)


def test_decoder_rejects_other_models():
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="not a GPT"):
        GPTDecoder(keras.Model(inputs, keras.layers.Dense(2)(inputs)))
