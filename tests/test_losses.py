import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.losses import NTXent, nt_xent


def nt_xent_numpy(a, b, t):
    """SimCLR's loss written out as in the paper: l(i, j) over all 2N anchors, averaged."""
    z = np.concatenate([a, b]).astype("float64")
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(a)
    sim = z @ z.T
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(np.exp(sim[i, k] / t) for k in range(2 * n) if k != i)
        total += -np.log(np.exp(sim[i, j] / t) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_paper_formula(temperature):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    got = float(nt_xent(tf.constant(a, tf.float32), tf.constant(b, tf.float32), temperature))
    np.testing.assert_allclose(got, nt_xent_numpy(a, b, temperature), rtol=1e-5)


def test_symmetric_and_scale_invariant():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=(4, 8)).astype("float32")
    np.testing.assert_allclose(float(nt_xent(a, b)), float(nt_xent(b, a)), rtol=1e-6)
    np.testing.assert_allclose(float(nt_xent(3 * a, b)), float(nt_xent(a, b)), rtol=1e-5)


def test_aligned_views_score_lower_than_random():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(16, 8)).astype("float32")
    assert float(nt_xent(a, a + 0.01, 0.1)) < float(
        nt_xent(a, rng.normal(size=(16, 8)).astype("float32"), 0.1)
    )


def test_loss_class_and_config():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(10, 4)).astype("float32")
    loss = NTXent(temperature=0.2)
    np.testing.assert_allclose(
        float(loss(np.zeros(10), z)), nt_xent_numpy(z[:5], z[5:], 0.2), rtol=1e-5
    )
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, NTXent) and clone.temperature == 0.2


def test_xla_and_bfloat16_inputs():
    rng = np.random.default_rng(4)
    a, b = (tf.constant(rng.normal(size=(8, 4)), tf.bfloat16) for _ in range(2))
    value = tf.function(lambda x, y: nt_xent(x, y), jit_compile=True)(a, b)
    # Computed in float32 from the bfloat16 values: the formula's value on them, not bf16's
    # rounding of it (which is off by up to 0.4%).
    assert value.dtype == tf.float32
    a32, b32 = (np.asarray(tf.cast(v, tf.float32)) for v in (a, b))
    np.testing.assert_allclose(float(value), nt_xent_numpy(a32, b32, 0.5), rtol=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(tf.ones((4, 2)), tf.ones((4, 2)), temperature)
    with pytest.raises(ValueError, match="temperature"):
        NTXent(temperature=temperature)


def test_bad_shapes():
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent(tf.ones((1, 4)), tf.ones((1, 4)))
    with pytest.raises(ValueError, match=r"\[batch, features\]"):
        nt_xent(tf.ones((4,)), tf.ones((4,)))
