"""Dropout whose random mask is cheap to draw inside XLA."""

from __future__ import annotations

import keras


def _in_tensorflow_xla() -> bool:
    """Whether the current trace is a TensorFlow function compiled with XLA (`jit_compile=True`)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # the module is internal; without it, take Keras' path
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@keras.saving.register_keras_serializable(package="tfpretrain")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with a mask that XLA draws quickly on the TensorFlow backend.

    Keras draws the mask with `tf.random.stateless_uniform` and its default algorithm; inside
    a TensorFlow function compiled with XLA that is Philox with a key chosen at run time, which
    XLA's CPU backend turns into code about 180 times slower than its ThreeFry (a
    `[32, 4, 128, 128]` mask: 456 ms against 2.5 ms on 2 cores; see
    `tools/bench/dropout.py`), enough to make dropout a fifth of a BERT training step.
    Inside XLA this layer draws the same Bernoulli(1 - rate) keep mask with ThreeFry, which only
    XLA implements; everywhere else (eager, graph mode without XLA, the JAX and PyTorch
    backends, a `noise_shape`) it is Keras' `Dropout`. Config and behaviour are Keras'.

    Args:
        rate: fraction of the inputs to drop, in [0, 1).
        noise_shape: optional shape of the mask, broadcast over the inputs.
        seed: optional int seed.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: any tensor.
        training: drop only when True.

    Example:

    >>> layer = Dropout(0.5)
    >>> layer(keras.ops.ones((2, 3)), training=False).shape
    TensorShape([2, 3])
    """

    def call(self, inputs, training=False):
        if not (training and self.rate > 0 and self.noise_shape is None and _in_tensorflow_xla()):
            return super().call(inputs, training=training)
        import tensorflow as tf

        seed = self.seed_generator.next()
        if seed.dtype != tf.int32:  # stateless ops under XLA take an int32 seed, as in Keras
            seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        uniform = tf.random.stateless_uniform(tf.shape(inputs), seed=seed, alg="threefry")
        kept = inputs * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(uniform >= self.rate, kept, tf.zeros_like(inputs))
