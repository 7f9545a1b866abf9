import math

import keras
import numpy as np
import pytest

from tfpretrain.layers import MultiHeadSelfAttention
from tfpretrain.training import NonFiniteLossError, WarmupSchedule, adamw, fit


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_schedule_formula(decay):
    s = WarmupSchedule(2.0, total_steps=110, warmup_steps=10, decay=decay, final_learning_rate=0.2)
    for step in (0, 3, 10, 37, 60, 110, 500):
        if step < 10:
            expected = 2.0 * step / 10
        else:
            p = min((step - 10) / 100, 1.0)
            expected = 0.2 + 1.8 * (
                0.5 * (1 + math.cos(math.pi * p)) if decay == "cosine" else 1 - p
            )
        assert float(s(step)) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    clone = WarmupSchedule.from_config(s.get_config())
    assert float(clone(37)) == pytest.approx(float(s(37)))


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupSchedule(1e-3, total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        WarmupSchedule(0.0, total_steps=10)


def test_adamw_decays_matrices_only():
    model = keras.Sequential(
        [
            keras.Input((2, 8)),
            MultiHeadSelfAttention(2, 4),
            keras.layers.Dense(4),
            keras.layers.LayerNormalization(),
        ]
    )
    variables = model.trainable_variables
    for v in variables:  # non-zero everywhere, so that a decayed bias would show
        v.assign(np.random.default_rng(0).normal(size=v.shape).astype("float32"))
    before = {v.path: np.asarray(v).copy() for v in variables}
    opt = adamw(model, learning_rate=0.1, weight_decay=0.5)
    opt.apply_gradients(
        zip([np.zeros(v.shape, "float32") for v in variables], variables, strict=True)
    )
    # With zero gradients only the decoupled decay moves weights: kernels shrink; biases (the
    # attention's per-head `[H, K]` ones too) and norm vectors stay.
    decayed = {v.path for v in variables if not np.allclose(np.asarray(v), before[v.path])}
    kernels = {v.path for v in variables if v.name.endswith("kernel")}
    assert decayed == kernels and len(kernels) == 5
    assert any(v.name == "query_bias" and len(v.shape) == 2 for v in variables)
    for v in variables:
        if v.path in kernels:
            np.testing.assert_allclose(np.asarray(v), before[v.path] * (1 - 0.1 * 0.5), rtol=1e-5)


def test_nan_loss_stops_with_step(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 2), "float32")
    y = np.array([1, 1, 1, np.nan, 1, 1, 1, 1], "float32")[:, None]
    with pytest.raises(NonFiniteLossError, match=r"at step 2, epoch 1, batch 2\."):
        fit(model, tf_batches(x, y), epochs=2, out_dir=tmp_path, verbose=0)
    assert not (tmp_path / "checkpoints" / "best.weights.h5").exists()


def tf_batches(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
