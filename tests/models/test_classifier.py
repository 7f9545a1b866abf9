import numpy as np
import pytest

from tests.checks import assert_close, check_keras_roundtrip
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import MaskedMeanPooling, TextClassifier, freeze_encoder


def encoder():
    return BertEncoder(
        BertConfig.preset("tiny", vocabulary_size=40, max_sequence_length=16, dropout=0.0)
    )


def batch():
    ids = np.array([[2, 7, 8, 9, 3, 0], [2, 10, 3, 0, 0, 0]], "int32")
    return {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": (ids > 0).astype("int32"),
    }


def test_mean_pooling_ignores_padding():
    seq = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], "int32")
    expected = np.stack([seq[0, :2].mean(0), seq[1].mean(0)])
    assert_close(MaskedMeanPooling()(seq, mask), expected, atol=1e-6)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_logits_and_keras_roundtrip(pooling, tmp_path):
    enc = encoder()
    model = TextClassifier(enc, num_classes=3, pooling=pooling, dropout=0.1)
    x = batch()
    logits = model(x, training=False)
    assert logits.shape == (2, 3)
    out = enc(x, training=False)
    pooled = (
        out["pooled_output"].numpy()
        if pooling == "cls"
        else MaskedMeanPooling()(out["sequence_output"], x["padding_mask"]).numpy()
    )
    dense = model.get_layer("logits")
    assert_close(logits, pooled @ dense.kernel.numpy() + dense.bias.numpy(), atol=1e-5)
    check_keras_roundtrip(model, x, tmp_path)


def test_freezing_lower_layers_and_whole_encoder():
    enc = encoder()
    freeze_encoder(enc, 1)
    assert (
        not enc.get_layer("embeddings").trainable
        and not enc.get_layer("transformer_layer_0").trainable
    )
    assert enc.get_layer("transformer_layer_1").trainable and enc.get_layer("pooler").trainable
    model = TextClassifier(enc, 2)
    frozen = {id(v) for v in enc.get_layer("transformer_layer_0").weights}
    assert frozen.isdisjoint({id(v) for v in model.trainable_variables})
    enc2 = encoder()
    freeze_encoder(enc2, "all")
    assert [v.path for v in TextClassifier(enc2, 2).trainable_variables] == [
        "logits/kernel",
        "logits/bias",
    ]
    with pytest.raises(ValueError, match="has 2"):
        freeze_encoder(encoder(), 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        TextClassifier(encoder(), 1)
    with pytest.raises(ValueError, match="pooling"):
        TextClassifier(encoder(), 2, pooling="max")
