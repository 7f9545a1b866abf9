import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import saved_model_cli
from tfpretrain.export.text import export_text_classifier
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

VOCAB = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!", "cafe"]
SENTENCES = ["A great film!", "dull plots", "not a café", "", "unknown words only"]
LABELS = ["negative", "neutral", "positive"]
LENGTH = 12

RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops; it imports Keras itself)
signatures = tf.saved_model.load(sys.argv[1]).signatures
strings = tf.constant(json.loads(sys.argv[2]))
reply = {name: {k: v.numpy().tolist() for k, v in signatures[name](strings=strings).items()}
         for name in ("serving_default", "serve", "serve_xla")}
reply["label_names"] = signatures["label_names"]()["label_names"].numpy().tolist()
reply["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "tfpretrain")
print(json.dumps(reply, default=lambda b: b.decode()))
"""


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
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(path), json.dumps(SENTENCES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
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
