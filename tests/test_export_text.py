import numpy as np
import pytest
import tensorflow as tf

from tests.checks import reload_text_export, saved_model_cli
from tfpretrain.export.text import export_text_classifier
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer
from tfpretrain.text.bpe import BytePairTokenizer, bytes_to_token

VOCAB = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!", "cafe"]
SENTENCES = ["A great film!", "dull plots", "not a café", "", "unknown words only"]
LABELS = ["negative", "neutral", "positive"]
LENGTH = 12


@pytest.fixture(scope="module")
def classifier():
    tokenizer = WordPieceTokenizer(VOCAB)
    encoder = BertEncoder(
        BertConfig.preset("tiny", vocabulary_size=len(VOCAB), max_sequence_length=16)
    )
    model = TextClassifier(encoder, num_classes=3, pooling="mean")
    logits = model(tokenizer.pack(tf.constant(SENTENCES), LENGTH), training=False)
    return model, tokenizer, tf.nn.softmax(logits).numpy()


def test_serve_signatures_take_raw_strings_in_a_fresh_process(classifier, tmp_path):
    model, tokenizer, expected = classifier
    path = export_text_classifier(
        model, tokenizer, tmp_path / "saved", sequence_length=LENGTH, label_names=LABELS
    )
    assert path == tmp_path / "saved" / "1"
    names = ("serving_default", "serve", "serve_xla")
    reply = reload_text_export(path, {"strings": SENTENCES}, names)
    assert reply["modules"] == []
    assert reply["label_names"] == LABELS
    for name in ("serving_default", "serve", "serve_xla"):
        probabilities = np.array(reply[name]["probabilities"])
        assert probabilities.shape == (5, 3)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        assert reply[name]["labels"] == [LABELS[i] for i in expected.argmax(-1)]


def test_saved_model_cli_runs_the_classifier(classifier, tmp_path):
    model, tokenizer, expected = classifier
    path = export_text_classifier(model, tokenizer, tmp_path / "saved", sequence_length=LENGTH)
    show = saved_model_cli(
        "show", "--dir", str(path), "--tag_set", "serve", "--signature_def", "serving_default"
    )
    assert show.returncode == 0, show.stderr[-3000:]
    assert "inputs['strings'] tensor_info:" in show.stdout and "DT_STRING" in show.stdout
    assert "outputs['probabilities']" in show.stdout and "labels" not in show.stdout
    run = saved_model_cli(
        "run",
        "--dir",
        str(path),
        "--tag_set",
        "serve",
        "--signature_def",
        "serve",
        "--input_exprs",
        f"strings={SENTENCES!r}",
        "--outdir",
        str(tmp_path),
        "--overwrite",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "probabilities.npy"), expected, atol=1e-5)


def test_bad_text_requests_fail_with_readable_messages(classifier, tmp_path):
    model, tokenizer, _ = classifier
    path = export_text_classifier(model, tokenizer, tmp_path / "saved", sequence_length=LENGTH)
    serve = tf.saved_model.load(str(path)).signatures["serve"]
    bad = {
        "must be a non-empty 1-D batch of texts .*got shape\\] \\[0\\]": tf.constant([], tf.string),
        "1-D batch of texts .*got shape\\] \\[\\]": tf.constant("one text"),
        "1-D batch of texts .*got shape\\] \\[2 1\\]": tf.constant([["a"], ["b"]]),
    }
    for message, strings in bad.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            serve(strings=strings)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a string tensor"):
        serve(strings=tf.constant([1, 2]))
    with pytest.raises(ValueError, match="label_names has 2 names for 3 classes"):
        export_text_classifier(model, tokenizer, tmp_path / "x", label_names=["a", "b"])


PAIRS = [("A great film!", "not a dull plot"), ("dull plots", "a great film"), ("", "cafe")]


def _roberta_like_bpe() -> BytePairTokenizer:
    """A byte-level BPE with RoBERTa's special tokens, the 256 bytes and a few merges."""
    vocabulary = {bytes_to_token(bytes([b])): b + 3 for b in range(256)}
    for word in (b"at", b" a", b"ea", b"lm"):
        vocabulary[bytes_to_token(word)] = len(vocabulary) + 3
    return BytePairTokenizer(vocabulary, special_tokens={"<s>": 0, "<pad>": 1, "</s>": 2})


@pytest.mark.parametrize("kind", ["wordpiece", "roberta-bpe"])
def test_pair_classifier_serves_two_texts_packed_as_in_training(kind, tmp_path):
    tokenizer = WordPieceTokenizer(VOCAB) if kind == "wordpiece" else _roberta_like_bpe()
    config = BertConfig.preset(
        "tiny", vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=16
    )
    model = TextClassifier(BertEncoder(config), num_classes=3)
    logits = model.get_layer("logits")  # a larger head: probabilities far from uniform
    kernel, bias = logits.get_weights()
    logits.set_weights([30 * kernel, bias])
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    # Training packs pairs so: [CLS] a [SEP] b [SEP] (BERT) or <s> a </s></s> b </s> (RoBERTa).
    packed = tokenizer.pack(tf.constant(first), LENGTH, pairs=tf.constant(second))
    expected = tf.nn.softmax(model(packed, training=False)).numpy()
    path = export_text_classifier(
        model, tokenizer, tmp_path / "saved", LENGTH, label_names=LABELS, pairs=True
    )

    names = ("serving_default", "serve", "serve_xla")
    reply = reload_text_export(path, {"strings": first, "pairs": second}, names)
    assert reply["modules"] == [] and reply["label_names"] == LABELS
    for name in names:
        np.testing.assert_allclose(reply[name]["probabilities"], expected, atol=1e-5)
        assert reply[name]["labels"] == [LABELS[i] for i in expected.argmax(-1)]

    serve = tf.saved_model.load(str(path)).signatures["serve"]
    swapped = serve(strings=tf.constant(second), pairs=tf.constant(first))["probabilities"]
    repacked = tokenizer.pack(tf.constant(second), LENGTH, pairs=tf.constant(first))
    np.testing.assert_allclose(swapped, tf.nn.softmax(model(repacked)), atol=1e-5)
    # An untrained encoder barely tells inputs apart, yet the order of a pair shows well
    # beyond the tolerance the export is held to.
    assert np.abs(swapped.numpy() - expected).max() > 5e-5
    with pytest.raises(tf.errors.InvalidArgumentError, match="one text each per pair; got.*3.*2"):
        serve(strings=tf.constant(first), pairs=tf.constant(second[:2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="pairs must be a non-empty 1-D"):
        serve(strings=tf.constant(first), pairs=tf.constant("one text"))
