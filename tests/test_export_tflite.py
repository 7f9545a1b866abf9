import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.export import export_autoencoder, export_encoder
from tfpretrain.export.text import export_text_classifier
from tfpretrain.export.tflite import (
    autoencoder_to_tflite,
    encoder_to_tflite,
    run_tflite,
    text_classifier_to_tflite,
)
from tfpretrain.models import AutoencoderConfig, build_autoencoder
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.models.simclr import SimCLRConfig, build_simclr
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

IMAGES = np.random.default_rng(0).uniform(size=(5, 28, 28, 1)).astype("float32")


def _assert_equal_outputs(tflite: dict, saved: dict) -> None:
    assert sorted(tflite) == sorted(saved)
    for key, value in saved.items():
        assert tflite[key].dtype == np.float32 and tflite[key].shape == tuple(value.shape)
        np.testing.assert_allclose(tflite[key], value.numpy(), atol=1e-5)


@pytest.mark.parametrize("conv", [False, True])
def test_autoencoder_tflite_matches_the_saved_model(tmp_path, conv):
    model = build_autoencoder(AutoencoderConfig(conv=conv))
    saved = tf.saved_model.load(str(export_autoencoder(model, tmp_path / "saved_model")))
    path = autoencoder_to_tflite(model, tmp_path / "autoencoder.tflite")
    for name in ("encode", "reconstruct"):
        for batch in (IMAGES[:1], IMAGES):
            expected = saved.signatures[name](images=tf.constant(batch))
            _assert_equal_outputs(run_tflite(path, name, images=batch), expected)


def test_simclr_encoder_tflite_matches_the_saved_model(tmp_path):
    encoder = build_simclr(SimCLRConfig.preset("tiny")).encoder
    saved = tf.saved_model.load(str(export_encoder(encoder, tmp_path / "saved_model")))
    path = encoder_to_tflite(encoder, tmp_path / "encoder.tflite")
    expected = saved.signatures["encode"](images=tf.constant(IMAGES))
    _assert_equal_outputs(run_tflite(path, "encode", images=IMAGES), expected)


def test_ids_in_classifier_tflite_matches_the_strings_in_saved_model(tmp_path):
    vocab = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!"]
    tokenizer = WordPieceTokenizer(vocab)
    encoder = BertEncoder(
        BertConfig.preset("tiny", vocabulary_size=len(vocab), max_sequence_length=16)
    )
    model = TextClassifier(encoder, num_classes=2)
    texts = tf.constant(["A great film!", "dull plots", "", "not a plot plot plot plot plot"])
    saved = tf.saved_model.load(str(export_text_classifier(model, tokenizer, tmp_path / "sm", 10)))
    path = text_classifier_to_tflite(model, tmp_path / "classifier.tflite", 10)
    packed = tokenizer.pack(texts, 10)
    got = run_tflite(
        path,
        "classify",
        token_ids=packed["token_ids"].numpy(),
        padding_mask=packed["padding_mask"].numpy(),
    )
    expected = saved.signatures["serve"](strings=texts)
    _assert_equal_outputs(got, expected)
    with pytest.raises(ValueError, match="must take token_ids and padding_mask"):
        text_classifier_to_tflite(build_autoencoder(), tmp_path / "x.tflite", 10)
