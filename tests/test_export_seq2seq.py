import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tfpretrain.export.seq2seq import export_seq2seq
from tfpretrain.models.t5 import Seq2SeqConfig, Seq2SeqGenerator, build_seq2seq
from tfpretrain.text.sentencepiece import SentencePieceTokenizer
from tfpretrain.text.seq2seq import Seq2SeqTokenizer

INPUTS = ["good night sweet prince", "to be"]
MAX_LENGTH = 8

# A fresh interpreter that imports only tensorflow and tensorflow_text.
RELOAD = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
signatures = tf.saved_model.load(sys.argv[1]).signatures
inputs, max_length = json.loads(sys.argv[2]), int(sys.argv[3])

def call(name, inputs=inputs, max_length=max_length, **scalars):
    if name.startswith("beam_search"):
        scalars = {"length_penalty": 1.0}
    elif not scalars:
        scalars = {"temperature": 0.0, "top_k": 0, "top_p": 1.0}
    out = signatures[name](inputs=tf.constant(inputs, tf.string),
                           max_length=tf.constant(max_length, tf.int32),
                           **{k: tf.constant(v) for k, v in scalars.items()})
    return [s.decode() for s in out["outputs"].numpy()]

reply = {name: call(name) for name in ("generate", "generate_no_xla", "serving_default",
                                       "beam_search", "beam_search_no_xla")}
bad = {"decoder": dict(max_length=99), "empty": dict(inputs=["to be", ""]),
       "batch": dict(inputs=[]),
       "top_p": dict(temperature=1.0, top_k=0, top_p=0.0)}
for name in ("generate", "generate_no_xla"):
    for case, kwargs in bad.items():
        try:
            call(name, **kwargs)
            reply[f"{name} {case}"] = None
        except tf.errors.InvalidArgumentError as err:
            reply[f"{name} {case}"] = [line.strip() for line in err.message.splitlines()
                                       if "assertion failed" in line]
reply["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "tfpretrain")
print(json.dumps(reply))
"""

MESSAGES = {
    "decoder": "max_length plus the start token must fit the decoder context of 16; ask for at "
    "most 15 tokens.",
    "empty": "Every input needs at least one token; one is empty (it tokenizes to nothing): "
    "give some text.",
    "batch": "inputs must be a non-empty 1-D batch of texts [N >= 1]; got shape] [0",
    "top_p": "top_p must be in (0, 1] (1 or None: off).",
}


def tiny_t5():
    """A tiny untrained T5 whose greedy outputs differ by input, its config and tokenizer."""
    text = (Path(os.environ["TFPRETRAIN_DATA_DIR"]) / "tinyshakespeare" / "input.txt").read_text()
    tokenizer = Seq2SeqTokenizer(SentencePieceTokenizer.train(text[:20000], 320), num_sentinels=4)
    config = Seq2SeqConfig(
        vocabulary_size=tokenizer.vocabulary_size,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dropout=0.0,
        encoder_length=32,
        decoder_length=16,
        num_sentinels=4,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
    )
    keras.utils.set_random_seed(0)
    model = build_seq2seq(config)
    # Random embeddings, the tied output's rows for the start and end tokens zero: untrained,
    # greedy decoding would end at once.
    table = model.get_layer("token_embedding").weights[0]
    values = np.random.default_rng(1).normal(size=table.shape).astype("float32")
    values[[config.pad_id, config.eos_id]] = 0.0
    table.assign(values)
    return model, config, tokenizer


@pytest.fixture(scope="module")
def t5():
    return tiny_t5()


def test_seq2seq_signatures_reload_in_a_fresh_process(t5, tmp_path):
    model, config, tokenizer = t5
    path = export_seq2seq(
        model, config, tokenizer, tmp_path / "saved_model", num_beams=2, version=2
    )
    assert path == tmp_path / "saved_model" / "2"
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(path), json.dumps(INPUTS), str(MAX_LENGTH)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reply = json.loads(result.stdout.strip().splitlines()[-1])
    assert reply["modules"] == []

    generator = Seq2SeqGenerator(model, config, tokenizer)
    greedy = [row[0] for row in generator.generate(INPUTS, MAX_LENGTH, greedy=True)]
    beams = [row[0] for row in generator.generate(INPUTS, MAX_LENGTH, num_beams=2)]
    assert any(greedy)  # something to compare
    for name in ("generate", "generate_no_xla", "serving_default"):
        assert reply[name] == greedy, name
    for name in ("beam_search", "beam_search_no_xla"):
        assert reply[name] == beams, name
    for name in ("generate", "generate_no_xla"):
        for case, message in MESSAGES.items():
            assert reply[f"{name} {case}"] == [f"assertion failed: [{message}]"], (name, case)
