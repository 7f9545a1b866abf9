"""Mixed precision (bf16 on CPU, fp16 loss scaling) and gradient accumulation through `fit`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.distribute import set_precision, xla_for_training
from tfpretrain.models.autoencoder import AutoencoderConfig, build_autoencoder
from tfpretrain.recipes.autoencoder import compile_autoencoder
from tfpretrain.recipes.load import model_width
from tfpretrain.training import fit

CONFIG = AutoencoderConfig(image_shape=(8, 8, 1), encoder_units=(32, 16), decoder_units=(32,))


def _images(n=128, seed=0):
    # Smooth blobs: learnable structure, so the loss has somewhere to go.
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1)
    centres = rng.uniform(1, 7, size=(n, 1, 1, 2))
    return np.exp(-((grid - centres) ** 2).sum(-1) / 4.0)[..., None].astype("float32")


def _dataset(batch):
    x = _images()
    return tf.data.Dataset.from_tensor_slices((x, x)).batch(batch)


def test_bf16_autoencoder_trains_with_float32_weights_and_loss(tmp_path):
    assert set_precision("bf16") == "mixed_bfloat16"
    model = compile_autoencoder(build_autoencoder(CONFIG), learning_rate=3e-3)
    assert all(w.dtype == "float32" for w in model.weights)
    x = _images(16)
    assert model(x).dtype == "bfloat16"  # computed in bfloat16 ...
    loss = model.compute_loss(x=x, y=x, y_pred=model(x))
    assert loss.dtype == "float32"  # ... the loss in float32
    history = fit(model, _dataset(16), epochs=4, out_dir=tmp_path, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0]

    # bf16 stays close to the float32 model holding the same weights.
    set_precision("fp32")
    reference = build_autoencoder(CONFIG)
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(
        np.asarray(tf.cast(model(x), tf.float32)), np.asarray(reference(x)), atol=3e-2
    )


def test_recipes_compile_with_xla_except_bf16_on_a_cpu():
    # XLA's CPU backend has no fast bfloat16 matrix products; TensorFlow's own kernels do.
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    for precision, xla in (("fp32", True), ("fp16", True), ("bf16", has_gpu)):
        set_precision(precision)
        assert xla_for_training() is xla
        assert compile_autoencoder(build_autoencoder(CONFIG), learning_rate=1e-3).jit_compile is xla
    for mode, xla in (("on", True), ("off", False)):  # --xla overrides, in either precision
        assert xla_for_training(mode) is xla
        model = compile_autoencoder(build_autoencoder(CONFIG), learning_rate=1e-3, xla=mode)
        assert model.jit_compile is xla
    with pytest.raises(ValueError, match="auto, on or off"):
        xla_for_training("yes")
    set_precision("fp32")


def test_fp16_uses_dynamic_loss_scaling_and_skips_overflowing_steps():
    set_precision("fp16")
    model = compile_autoencoder(
        build_autoencoder(CONFIG), learning_rate=1e-3, steps_per_execution=1
    )
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x = _images(16)
    model.fit(x, x, batch_size=16, epochs=1, verbose=0)
    scale = float(model.optimizer.dynamic_scale.numpy())
    before = [w.copy() for w in model.get_weights()]
    huge = np.full_like(x, 6e4)  # float16 overflows: gradients become Inf
    model.fit(huge, huge, batch_size=16, epochs=1, verbose=0)
    assert float(model.optimizer.dynamic_scale.numpy()) == scale / 2  # scale halved ...
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)  # ... and the step was skipped
    model.fit(x, x, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(model.get_weights()[0], before[0])  # training goes on


def test_gradient_accumulation_equals_one_big_batch():
    def train(batch, accumulate):
        keras.utils.set_random_seed(5)
        model = compile_autoencoder(
            build_autoencoder(CONFIG), learning_rate=1e-2, gradient_accumulation_steps=accumulate
        )
        fit(model, _dataset(batch), epochs=2, verbose=0)
        return model

    micro = train(8, 4)  # 4 micro-batches of 8 per update
    big = train(32, None)  # one batch of 32 per update
    # The step counter (and so any learning-rate schedule) counts applied updates.
    assert int(micro.optimizer.iterations.numpy()) == int(big.optimizer.iterations.numpy()) == 8
    for a, b in zip(micro.get_weights(), big.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(micro.get_weights()[0], train(8, None).get_weights()[0], atol=1e-4)


@pytest.mark.parametrize(
    "config, width",
    [
        ({"model": {"hidden_dim": 256, "intermediate_dim": 1024}}, 256),  # a tfpretrain run
        ({"model_type": "bert", "hidden_size": 384, "intermediate_size": 1536}, 384),
        # DistilBERT's `hidden_dim` is its feed-forward width, not the model's.
        ({"model_type": "distilbert", "dim": 768, "hidden_dim": 3072}, 768),
        ({"model_type": "t5", "d_model": 512, "d_ff": 2048}, 512),
        ({"model_type": "gpt2", "n_embd": 768, "n_inner": None}, 768),
        ({"run": {"seed": 0}}, None),  # a run that records no model (a classifier run)
    ],
)
def test_model_width_reads_runs_and_hugging_face_configs(tmp_path, config, width):
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_width(tmp_path) == width
    assert model_width(tmp_path / "missing") is None
