"""The shared checks of tests/checks.py fail the layers they are meant to catch."""

import keras
import numpy as np
import pytest

from tests.checks import check_mixed_precision

X = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")


class FollowsPolicy(keras.layers.Layer):
    """A dense layer the Keras way: inputs and weights autocast to the compute dtype."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 8), initializer="glorot_uniform")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


class Float32Inside(keras.layers.Layer):
    """Ignores the policy through a sublayer fixed to float32: it computes and returns float32."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8, use_bias=False, dtype="float32")

    def call(self, x):
        return self.dense(x)


class CastsAtTheEnd(keras.layers.Layer):
    """Ignores the policy (float32 inputs and weights, no autocast) but casts its result."""

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 8), initializer="glorot_uniform", autocast=False
        )

    def call(self, x):
        return keras.ops.cast(keras.ops.matmul(x, self.kernel), self.compute_dtype)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_check_fails_layers_that_ignore_the_policy(policy):
    check_mixed_precision(FollowsPolicy, X, policy)
    with pytest.raises(AssertionError, match="not the policy's"):
        check_mixed_precision(Float32Inside, X, policy)
    with pytest.raises(AssertionError, match="computes in float32"):
        check_mixed_precision(CastsAtTheEnd, X, policy)
