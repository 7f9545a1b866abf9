import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_xla
from tfpretrain.layers import TransformerBlock
from tfpretrain.layers.activations import (
    gelu,
    gelu_approximate,
    get_activation,
    serialize_activation,
)

X = np.linspace(-12.0, 12.0, 2401, dtype="float32")


def test_gelu_is_the_published_formula():
    expected = np.array(
        [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in X.astype("float64")]
    )
    assert_close(gelu(tf.constant(X)), expected, atol=2e-6, rtol=1e-5)
    assert_close(
        gelu(tf.constant(X)), keras.activations.gelu(tf.constant(X), approximate=False), atol=2e-6
    )


def test_gelu_approximate_is_the_tanh_form():
    x = X.astype("float64")
    expected = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    assert_close(gelu_approximate(tf.constant(X)), expected, atol=2e-6, rtol=1e-5)


def test_gelu_gradient_matches_keras():
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = gelu(x), keras.activations.gelu(x, approximate=False)
    assert_close(tape.gradient(ours, x), tape.gradient(theirs, x), atol=1e-5)


def test_gelu_xla_and_half_precision():
    check_xla(gelu, tf.constant(X))
    for dtype in ("float16", "bfloat16"):
        out = gelu(tf.constant(X, dtype))
        assert out.dtype == dtype
        assert_close(tf.cast(out, tf.float32), gelu(tf.constant(X)), atol=0.1, rtol=2e-2)


@pytest.mark.parametrize("name", ["gelu", "gelu_approximate", "relu"])
def test_names_round_trip(name):
    fn = get_activation(name)
    assert serialize_activation(fn) == name
    assert get_activation(serialize_activation(fn)) is fn


def test_block_config_keeps_the_name():
    block = TransformerBlock(2, 8, 16, activation="gelu")
    assert block.activation is gelu
    assert block.get_config()["activation"] == "gelu"
    assert TransformerBlock.from_config(block.get_config()).activation is gelu
