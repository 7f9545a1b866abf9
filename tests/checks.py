"""The checks every layer and model gets: config round trip, `.keras` round trip, XLA, mixed
precision."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def assert_close(a, b, atol=1e-5, rtol=1e-5):
    for x, y in zip(_as_list(a), _as_list(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=rtol)


def check_config_roundtrip(layer: keras.layers.Layer, *args, **kwargs):
    """A layer rebuilt from its config, given the same weights, computes the same outputs."""
    expected = layer(*args, **kwargs)
    clone = layer.__class__.from_config(layer.get_config())
    clone(*args, **kwargs)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    assert_close(clone(*args, **kwargs), expected)
    return clone


def check_keras_roundtrip(model: keras.Model, inputs, tmp_path, atol=1e-5):
    """A model saved to `.keras` and loaded back computes the same outputs."""
    expected = model(inputs, training=False)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_close(loaded(inputs, training=False), expected, atol=atol)
    return loaded


def check_xla(fn, *args, atol=1e-5):
    """`fn` compiles with XLA (jit_compile=True) and agrees with eager execution."""
    eager = fn(*args)
    compiled = tf.function(fn, jit_compile=True)
    # The graph must really be an XLA cluster: lowering the concrete function to HLO fails
    # otherwise.
    hlo = compiled.experimental_get_compiler_ir(*args)(stage="hlo")
    assert "HloModule" in hlo
    assert_close(compiled(*args), eager, atol=atol, rtol=1e-4)


def check_mixed_precision(make_layer, inputs, policy: str, rtol=5e-2, atol=5e-2):
    """Under `policy` the layer computes in the low precision, keeps float32 weights, and stays
    close to the float32 result given the same weights.

    A layer that ignores the policy fails: one that computes in float32 returns float32, and one
    that computes in float32 and casts only its result returns exactly the float32 result
    rounded, where a real low-precision computation rounds its inputs and weights first.
    """
    keras.mixed_precision.set_global_policy("float32")
    reference_layer = make_layer()
    reference = reference_layer(inputs)
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = make_layer()
        out = layer(inputs)
        layer.set_weights(reference_layer.get_weights())
        out = layer(inputs)
        assert all(w.dtype == "float32" for w in layer.weights)
        compute = keras.mixed_precision.DTypePolicy(policy).compute_dtype
        for o, r in zip(_as_list(out), _as_list(reference), strict=True):
            assert o.dtype == compute, f"output in {o.dtype.name}, not the policy's {compute}"
            rounded = np.asarray(tf.cast(tf.cast(r, compute), tf.float32))
            low = np.asarray(tf.cast(o, tf.float32))
            assert np.all(np.isfinite(low))
            assert not np.array_equal(low, rounded), (
                f"the output is the float32 result cast to {compute}: the layer computes in float32"
            )
        assert_close(
            [tf.cast(o, tf.float32) for o in _as_list(out)], reference, atol=atol, rtol=rtol
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


# `saved_model_cli` with the tensorflow-text ops registered first (it does not import them).
_SAVED_MODEL_CLI = """
import sys
import tensorflow_text  # noqa: F401
from tensorflow.python.tools.saved_model_cli import main
sys.argv[0] = "saved_model_cli"
sys.exit(main())
"""


def saved_model_cli(*args: str) -> subprocess.CompletedProcess:
    """Runs `saved_model_cli ARGS` in a fresh process that can load string-in text models."""
    return subprocess.run(
        [sys.executable, "-c", _SAVED_MODEL_CLI, *args], capture_output=True, text=True
    )


# Calls a text export's signatures in a process that imports tensorflow and tensorflow-text
# only (tensorflow-text imports Keras itself), and reports which tfpretrain modules it loaded.
_RELOAD_TEXT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
signatures = tf.saved_model.load(sys.argv[1]).signatures
inputs = {k: tf.constant(v) for k, v in json.loads(sys.argv[2]).items()}
reply = {name: {k: v.numpy().tolist() for k, v in signatures[name](**inputs).items()}
         for name in json.loads(sys.argv[3])}
if "label_names" in signatures:
    reply["label_names"] = signatures["label_names"]()["label_names"].numpy().tolist()
reply["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "tfpretrain")
print(json.dumps(reply, default=lambda b: b.decode()))
"""


def reload_text_export(path, inputs: dict[str, list[str]], signatures=("serving_default",)) -> dict:
    """Runs `signatures` of the text export at `path` on `inputs` in a fresh process.

    Returns:
        `{signature: {output: list}}`, with `label_names` (when exported) and `modules` (the
        tfpretrain modules the process imported: none, for an export to be servable).
    """
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_TEXT, str(path), json.dumps(inputs), json.dumps(signatures)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
