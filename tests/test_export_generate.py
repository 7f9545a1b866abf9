import json
import subprocess
import sys

import keras
import numpy as np

from tfpretrain.export.generate import export_generate
from tfpretrain.models.gpt import GPTConfig, TextGenerator, build_gpt
from tfpretrain.text import CharTokenizer, SentencePieceTokenizer

# Runs in a fresh interpreter that imports only tensorflow and tensorflow_text.
RELOAD = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the sentencepiece ops)

def check(path, prompts, unknown):
    signatures = tf.saved_model.load(path).signatures

    def call(prompts, max_length=20, temperature=1.0, top_k=0, top_p=1.0, n=1, name="generate"):
        out = signatures[name](
            prompts=tf.constant(prompts, tf.string), max_length=tf.constant(max_length, tf.int32),
            temperature=tf.constant(temperature, tf.float32), top_k=tf.constant(top_k, tf.int32),
            top_p=tf.constant(top_p, tf.float32), num_return_sequences=tf.constant(n, tf.int32))
        return [[s.decode("utf-8") for s in row] for row in out["completions"].numpy().tolist()]

    result = {name: call(prompts, temperature=0.0, n=3, name=name)
              for name in ("generate", "generate_no_xla", "serving_default")}
    result["sampled"] = call(prompts, top_k=5, top_p=0.9, n=3)
    bad = {"top_p": dict(top_p=1.5), "max_length": dict(max_length=2),
           "context": dict(max_length=99), "empty": dict(prompts=["ab", ""]),
           "batch": dict(prompts=[]),
           "unknown": dict(prompts=[unknown])}
    errors = {}
    for name in ("generate", "generate_no_xla"):
        for case, kwargs in bad.items():
            try:
                call(**{"prompts": prompts, "name": name, **kwargs})
                errors[f"{name} {case}"] = None
            except tf.errors.InvalidArgumentError as err:
                # What a client reads: TF Serving answers the op's message, which starts with
                # the assertion; Python puts "Graph execution error" and the node before it.
                errors[f"{name} {case}"] = [line.strip() for line in err.message.splitlines()
                                            if "assertion failed" in line]
    result["errors"] = errors
    result["modules"] = sorted(
        {m.split(".")[0] for m in sys.modules} & {"tfpretrain", "sentencepiece"}
    )
    return result


print(json.dumps({kind: check(*args) for kind, args in json.loads(sys.argv[1]).items()}))
"""

MESSAGES = {
    "top_p": "top_p must be in (0, 1] (1 or None: off).",
    "max_length": "max_length counts the prompt too and is shorter than the longest prompt; "
    "raise it.",
    "context": "max_length (prompt plus new tokens) must be at most the context of the model, "
    "32 tokens.",
    "empty": "Every prompt needs at least one token; one is empty (it tokenizes to nothing): "
    "give some text.",
    "batch": "prompts must be a non-empty 1-D batch of texts [N >= 1]; got shape] [0",
}


def _tiny_model(vocabulary_size: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_gpt(
        GPTConfig(
            vocabulary_size=vocabulary_size,
            sequence_length=32,
            num_layers=2,
            num_heads=2,
            hidden_dim=16,
        )
    )
    table = model.get_layer("embedding").token_embedding.embeddings
    table.assign(np.random.default_rng(0).normal(size=table.shape).astype("float32"))
    return model


def _full_pass_greedy(model, ids, length):
    ids = list(ids)
    while len(ids) < length:
        ids.append(int(np.argmax(model(np.array([ids], "int32"))[0, -1])))
    return ids


def _reload(cases: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(cases)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_generate_signatures_reload_in_a_fresh_process(tmp_path, data_dir):
    text = (data_dir / "tinyshakespeare" / "input.txt").read_text()[:30000]
    cases = {
        "char": (CharTokenizer.from_text(text), ["ROMEO:", "To be"], "caf\u00e9 \u20ac"),
        # No unknown characters for sentencepiece: byte fallback encodes anything.
        "sentencepiece": (
            SentencePieceTokenizer.train(text, vocabulary_size=320),
            ["ROMEO: what", "To be"],
            "",
        ),
    }
    models, paths = {}, {}
    for kind, (tokenizer, _, _) in cases.items():
        models[kind] = _tiny_model(tokenizer.vocabulary_size)
        paths[kind] = str(export_generate(models[kind], tokenizer, tmp_path / kind, version=3))
        assert paths[kind] == str(tmp_path / kind / "3")
    # One fresh interpreter for both exports (TensorFlow's start-up is the slow part).
    results = _reload(
        {kind: [paths[kind], prompts, unknown] for kind, (_, prompts, unknown) in cases.items()}
    )

    for kind, (tokenizer, prompts, _) in cases.items():
        result, model = results[kind], models[kind]
        assert (
            result["modules"] == []
        )  # neither tfpretrain nor the sentencepiece package was imported
        # Greedy output equals the Python generator's and the argmax of full forward passes of
        # the Keras model, step by step, with and without XLA and as serving_default.
        expected = [
            [tokenizer.decode(_full_pass_greedy(model, tokenizer.encode(p), 20))] * 3
            for p in prompts
        ]
        if kind == "char":  # one compilation of the Python generator is enough
            assert (
                TextGenerator(model, tokenizer).generate(prompts, 20, 3, temperature=0.0)
                == expected
            )
        for name in ("generate", "generate_no_xla", "serving_default"):
            assert result[name] == expected, name
        assert [len(row) for row in result["sampled"]] == [3, 3]
        for prompt, row in zip(prompts, result["sampled"], strict=True):
            assert all(s.startswith(prompt) and len(tokenizer.encode(s)) == 20 for s in row)
        for name in ("generate", "generate_no_xla"):
            errors = {case: result["errors"][f"{name} {case}"] for case in MESSAGES}
            # Exactly one assertion, the request's own, worded for the client.
            assert errors == {case: [f"assertion failed: [{m}]"] for case, m in MESSAGES.items()}
            if kind == "char":
                assert "outside" in result["errors"][f"{name} unknown"][0]
