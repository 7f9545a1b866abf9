import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tfpretrain.export.text import export_text_classifier
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

VOCAB = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!", "cafe"]
SENTENCES = ["A great film!", "dull plots", "not a café", "", "unknown words only"]

RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
serve = tf.saved_model.load(sys.argv[1]).signatures["serve"]
out = serve(strings=tf.constant(json.loads(sys.argv[2])))["probabilities"].numpy()
print(json.dumps({"p": out.tolist(), "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("tfpretrain", "keras"))}))
"""


def test_serve_signature_takes_raw_strings_in_a_fresh_process(tmp_path):
    tokenizer = WordPieceTokenizer(VOCAB)
    encoder = BertEncoder(BertConfig.preset("tiny", vocabulary_size=len(VOCAB), max_sequence_length=16))
    model = TextClassifier(encoder, num_classes=3, pooling="mean")
    path = export_text_classifier(model, tokenizer, tmp_path / "saved", sequence_length=12)
    expected = tf.nn.softmax(model(tokenizer.pack(tf.constant(SENTENCES), 12), training=False)).numpy()
    result = subprocess.run([sys.executable, "-c", RELOAD, str(path), json.dumps(SENTENCES)],
                            capture_output=True, text=True, check=True)
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert [m for m in reply["modules"] if m.startswith("tfpretrain")] == []
    probabilities = np.array(reply["p"])
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
