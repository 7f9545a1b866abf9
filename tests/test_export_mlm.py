import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import saved_model_cli
from tfpretrain.export.mlm import export_mlm
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

VOCAB = list(RESERVED_TOKENS) + ["a", "great", "film", "dull", "plot", "##s", "not", "!", "the"]
LENGTH = 10
TEXTS = ["a [MASK] film!", "[MASK] plots [MASK]", "not [MASK]"]

RELOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
signatures = tf.saved_model.load(sys.argv[1]).signatures
texts = tf.constant(json.loads(sys.argv[2]))

def run(name, **inputs):
    try:
        return {k: v.numpy().tolist() for k, v in signatures[name](**inputs).items()}
    except tf.errors.InvalidArgumentError as err:
        return [line.strip() for line in err.message.splitlines() if "assertion failed" in line]

reply = {"encode": run("encode", strings=texts), "default": run("serving_default", strings=texts),
         "fill_mask": run("fill_mask", strings=texts),
         "top_k": run("fill_mask_top_k", strings=texts, k=tf.constant(2)),
         "no_mask": run("fill_mask", strings=tf.constant(["a [MASK]", "a film"])),
         "late_mask": run("fill_mask", strings=tf.constant(["a a a a a a a a a [MASK]"])),
         "empty": run("encode", strings=tf.constant([], tf.string)),
         "k": run("fill_mask_top_k", strings=texts, k=tf.constant(0))}
reply["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "tfpretrain")
print(json.dumps(reply, default=lambda b: b.decode()))
"""


@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    tokenizer = WordPieceTokenizer(VOCAB)
    encoder = BertEncoder(
        BertConfig.preset("tiny", vocabulary_size=len(VOCAB), max_sequence_length=16)
    )
    model = BertMaskedLM(encoder)
    path = export_mlm(
        model, tokenizer, tmp_path_factory.mktemp("mlm") / "saved_model", LENGTH, top_k=3
    )
    return model, tokenizer, path


def _expected_fill(model, tokenizer, texts, k):
    """The Keras model's top-k at each [MASK], the inputs built in Python."""
    rows, positions = [], []
    for text in texts:
        ids = [tokenizer.cls_id]
        for i, piece in enumerate(text.split("[MASK]")):
            ids += ([tokenizer.mask_id] if i else []) + tokenizer.tokenize(piece).numpy().tolist()
        ids.append(tokenizer.sep_id)
        rows.append(ids + [0] * (LENGTH - len(ids)))
        positions.append([i for i, t in enumerate(ids) if t == tokenizer.mask_id])
    masks = max(len(p) for p in positions)
    ids = np.array(rows, "int32")
    inputs = {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": (ids != 0).astype("int32"),
        "mask_positions": np.array([p + [0] * (masks - len(p)) for p in positions], "int32"),
    }
    probabilities = tf.nn.softmax(model(inputs)["mlm"]).numpy()
    best = np.argsort(-probabilities, axis=-1)[..., :k]
    tokens = [
        [[VOCAB[i] if m < len(p) else "" for i in best[r, m]] for m in range(masks)]
        for r, p in enumerate(positions)
    ]
    top = np.take_along_axis(probabilities, best, -1)
    valid = np.array([[m < len(p) for m in range(masks)] for p in positions])[..., None]
    return tokens, np.where(valid, top, 0.0), [len(p) for p in positions]


def test_mlm_signatures_in_a_fresh_process(mlm):
    model, tokenizer, path = mlm
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(path), json.dumps(TEXTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["modules"] == []

    packed = tokenizer.pack(tf.constant(TEXTS), LENGTH)
    features = model.encoder(packed)
    for name in ("encode", "default"):
        np.testing.assert_allclose(reply[name]["pooled"], features["pooled_output"], atol=1e-5)
        np.testing.assert_allclose(reply[name]["sequence"], features["sequence_output"], atol=1e-5)
        assert reply[name]["padding_mask"] == packed["padding_mask"].numpy().tolist()
    for name, k in (("fill_mask", 3), ("top_k", 2)):
        tokens, probabilities, counts = _expected_fill(model, tokenizer, TEXTS, k)
        assert reply[name]["num_masks"] == counts == [1, 2, 1]
        assert reply[name]["tokens"] == tokens
        np.testing.assert_allclose(reply[name]["probabilities"], probabilities, atol=1e-5)

    assert reply["no_mask"] == ["assertion failed: [Every text needs at least one [MASK] to fill.]"]
    assert reply["late_mask"] == [
        "assertion failed: [Every [MASK] must be within the first 8 tokens; shorten the texts.]"
    ]
    assert reply["empty"] == [
        "assertion failed: [strings must be a non-empty 1-D batch of texts [N >= 1]; got shape] [0]"
    ]
    assert reply["k"] == ["assertion failed: [k must be >= 1; got] [0]"]


def test_saved_model_cli_runs_fill_mask(mlm, tmp_path):
    model, tokenizer, path = mlm
    show = saved_model_cli(
        "show", "--dir", str(path), "--tag_set", "serve", "--signature_def", "serving_default"
    )
    assert show.returncode == 0, show.stderr[-3000:]
    assert "outputs['pooled']" in show.stdout and "outputs['sequence']" in show.stdout
    run = saved_model_cli(
        "run",
        "--dir",
        str(path),
        "--tag_set",
        "serve",
        "--signature_def",
        "fill_mask",
        "--input_exprs",
        f"strings={TEXTS!r}",
        "--outdir",
        str(tmp_path),
        "--overwrite",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    _, probabilities, _ = _expected_fill(model, tokenizer, TEXTS, 3)
    np.testing.assert_allclose(np.load(tmp_path / "probabilities.npy"), probabilities, atol=1e-5)


def test_export_mlm_refuses_a_bad_top_k(mlm, tmp_path):
    model, tokenizer, _ = mlm
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 14\]; got 0"):
        export_mlm(model, tokenizer, tmp_path, top_k=0)
