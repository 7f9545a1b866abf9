import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import check_config_roundtrip, check_keras_roundtrip, check_xla
from tfpretrain.layers import TokenAndPositionEmbedding


def test_sum_of_token_and_position_rows():
    layer = TokenAndPositionEmbedding(50, 10, 8)
    ids = np.array([[3, 7, 7, 0]], "int32")
    out = np.asarray(layer(ids))
    tokens = np.asarray(layer.token_embedding.embeddings)
    positions = np.asarray(layer.position_embedding.embeddings)
    np.testing.assert_allclose(out[0], tokens[ids[0]] + positions[:4], atol=1e-6)
    shifted = np.asarray(layer(ids, start_index=3))
    np.testing.assert_allclose(shifted[0], tokens[ids[0]] + positions[3:7], atol=1e-6)


def test_reverse_is_tied_output_head():
    layer = TokenAndPositionEmbedding(50, 10, 8)
    layer(np.zeros((1, 2), "int32"))
    hidden = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
    logits = layer(hidden, reverse=True)
    assert logits.dtype == "float32"
    np.testing.assert_allclose(
        logits, hidden @ np.asarray(layer.token_embedding.embeddings).T, atol=1e-5
    )
    # One row (a decoding step) takes the matrix-times-vector form: the same logits.
    one = tf.function(lambda h: layer(h, reverse=True), jit_compile=True)(hidden[:1, :1])
    np.testing.assert_allclose(one, logits[:1, :1], atol=1e-5)


def test_tied_language_model_saves_and_loads(tmp_path):
    ids = keras.Input((6,), dtype="int32")
    emb = TokenAndPositionEmbedding(30, 6, 8)
    model = keras.Model(ids, emb(emb(ids), reverse=True))
    assert len(model.weights) == 2  # the head adds no matrix of its own
    check_keras_roundtrip(model, np.arange(12).reshape(2, 6).astype("int32"), tmp_path)


def test_config_and_xla():
    layer = TokenAndPositionEmbedding(40, 12, 8)
    ids = np.random.default_rng(0).integers(0, 40, (2, 12)).astype("int32")
    check_config_roundtrip(layer, ids)
    check_xla(lambda v: layer(v), tf.constant(ids))


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocabulary_size"):
        TokenAndPositionEmbedding(0, 10, 8)
    with pytest.raises(ValueError, match="embedding_dim"):
        TokenAndPositionEmbedding(10, 10, -1)
