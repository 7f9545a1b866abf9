import keras
import numpy as np
import pytest

from tests.checks import check_keras_roundtrip
from tfpretrain.models.t5 import DECODER_IDS, ENCODER_IDS, Seq2SeqConfig, build_seq2seq

SMALL = dict(
    vocabulary_size=40,
    hidden_dim=32,
    num_heads=4,
    intermediate_dim=64,
    num_encoder_layers=2,
    num_decoder_layers=2,
    dropout=0.0,
    num_sentinels=4,
    encoder_length=16,
    decoder_length=16,
)


def test_t5_small_has_the_published_parameter_count():
    # T5-small with its 32,128-token vocabulary and tied embeddings: 60,506,624 parameters.
    model = build_seq2seq(Seq2SeqConfig.preset("t5-small"))
    assert model.count_params() == 60_506_624
    tiny = Seq2SeqConfig.preset("t5-tiny", vocabulary_size=1000)
    assert (tiny.num_encoder_layers, tiny.num_decoder_layers, tiny.hidden_dim) == (4, 4, 256)


def test_head_is_tied_and_padding_is_masked(tmp_path):
    config = Seq2SeqConfig(**SMALL)
    model = build_seq2seq(config)
    embedding = model.get_layer("token_embedding")
    assert len(embedding.weights) == 1  # one matrix feeds the encoder, the decoder and the head
    enc = np.array([[5, 6, 7, 8, 1, 0, 0], [9, 10, 1, 0, 0, 0, 0]], "int32")
    dec = np.array([[0, 11, 12], [0, 13, 14]], "int32")
    logits = np.asarray(model({ENCODER_IDS: enc, DECODER_IDS: dec}))
    assert logits.shape == (2, 3, 40) and logits.dtype == np.float32
    # Tokens behind padding in the encoder input change nothing; the shorter row can be cut.
    padded = enc.copy()
    padded[1, 5:] = 0
    np.testing.assert_allclose(model({ENCODER_IDS: padded, DECODER_IDS: dec}), logits, atol=1e-5)
    short = np.asarray(model({ENCODER_IDS: enc[1:, :3], DECODER_IDS: dec[1:]}))
    np.testing.assert_allclose(short, logits[1:], atol=1e-4)
    # The head is the embedding matrix transposed, scaled by hidden_dim ** -0.5.
    final = keras.Model(model.inputs, model.get_layer("decoder_output_dropout").output)
    hidden = np.asarray(final({ENCODER_IDS: enc, DECODER_IDS: dec}))
    want = hidden * 32**-0.5 @ np.asarray(embedding.token_embedding.embeddings).T
    np.testing.assert_allclose(logits, want, atol=1e-4)
    check_keras_roundtrip(model, {ENCODER_IDS: enc, DECODER_IDS: dec}, tmp_path)


def test_learns_to_copy():
    config = Seq2SeqConfig(**SMALL)
    model = build_seq2seq(config)
    rng = np.random.default_rng(0)
    src = rng.integers(3, 30, size=(256, 6)).astype("int32")
    enc = np.concatenate([src, np.ones((256, 1), "int32")], 1)
    target = enc
    dec = np.concatenate([np.zeros((256, 1), "int32"), target[:, :-1]], 1)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    x = {ENCODER_IDS: enc, DECODER_IDS: dec}
    first = model.evaluate(x, target, verbose=0)[0]
    model.fit(x, target, epochs=10, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x, target, verbose=0)
    assert loss < 0.5 * first and accuracy > 0.3


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        Seq2SeqConfig(hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="preset"):
        Seq2SeqConfig.preset("t5-huge")
    with pytest.raises(ValueError, match="pad_id"):
        Seq2SeqConfig(**{**SMALL, "pad_id": 38})  # a sentinel id
    with pytest.raises(ValueError, match="Unknown"):
        Seq2SeqConfig.from_dict({"layers": 3})
