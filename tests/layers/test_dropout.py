import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.layers import Dropout

RATE = 0.1
N = 1 << 20  # 5 standard deviations of the dropped fraction: 5 * sqrt(0.09 / N) = 0.0015


def xla(fn):
    return tf.function(fn, jit_compile=True)


def test_xla_mask_drops_the_rate_and_rescales_the_rest():
    layer = Dropout(RATE, seed=1)
    x = tf.random.uniform((N,), 1.0, 2.0, seed=0)
    y = xla(lambda v: layer(v, training=True))(x).numpy()
    dropped = y == 0
    assert abs(dropped.mean() - RATE) < 0.0015
    np.testing.assert_allclose(y[~dropped], x.numpy()[~dropped] / (1 - RATE), rtol=1e-6)
    # Inverted dropout keeps the expected value.
    assert abs(y.mean() / x.numpy().mean() - 1) < 0.005


def test_xla_masks_differ_between_steps_and_repeat_with_the_seed():
    x = tf.ones((4096,))
    first = Dropout(RATE, seed=7)
    step = xla(lambda v: first(v, training=True))
    a, b = step(x).numpy(), step(x).numpy()
    assert (a != b).any()
    again = Dropout(RATE, seed=7)
    np.testing.assert_array_equal(xla(lambda v: again(v, training=True))(x).numpy(), a)


def test_xla_draws_with_threefry():
    # Keras' default algorithm (Philox with a run-time key) is the slow one under XLA.
    layer = Dropout(RATE)
    graph = (
        xla(lambda v: layer(v, training=True)).get_concrete_function(tf.TensorSpec((8, 16))).graph
    )
    draws = [
        op
        for op in graph.get_operations()
        if op.type.startswith("StatelessRandom") and op.type != "StatelessRandomGetKeyCounter"
    ]
    assert draws
    for op in draws:
        assert op.type == "StatelessRandomUniformV2"
        assert tf.get_static_value(op.inputs[3]) == 2  # Algorithm.THREEFRY


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_without_xla_it_is_keras_dropout(mode):
    x = tf.random.normal((64, 32), seed=0)
    ours, theirs = Dropout(0.3, seed=11), keras.layers.Dropout(0.3, seed=11)
    call = (
        (lambda layer: layer(x, training=True))
        if mode == "eager"
        else (lambda layer: tf.function(lambda v: layer(v, training=True))(x))
    )
    np.testing.assert_array_equal(call(ours).numpy(), call(theirs).numpy())


def test_inference_and_zero_rate_pass_through():
    x = tf.random.normal((3, 5))
    inference, zero = Dropout(RATE), Dropout(0.0)
    np.testing.assert_array_equal(xla(lambda v: inference(v, training=False))(x).numpy(), x.numpy())
    np.testing.assert_array_equal(xla(lambda v: zero(v, training=True))(x).numpy(), x.numpy())


def test_bfloat16_under_xla():
    layer = Dropout(RATE, dtype="mixed_bfloat16")
    y = xla(lambda v: layer(v, training=True))(tf.ones((256, 256), tf.bfloat16))
    assert y.dtype == tf.bfloat16
    values = np.unique(y.numpy().astype(np.float32))
    np.testing.assert_allclose(values, [0.0, float(tf.cast(1 / (1 - RATE), tf.bfloat16))])


def test_config_and_keras_file_round_trip(tmp_path):
    layer = Dropout(0.25, seed=3, name="drop")
    assert Dropout.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = keras.Input((6,))
    model = keras.Model(inputs, Dropout(0.25, seed=3)(keras.layers.Dense(4)(inputs)))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.layers[-1], Dropout)
    x = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
