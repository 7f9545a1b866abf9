import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close, check_config_roundtrip, check_keras_roundtrip
from tfpretrain.data.augment import two_view_dataset
from tfpretrain.losses import nt_xent
from tfpretrain.models.simclr import (
    ProjectionHead,
    SimCLR,
    SimCLRConfig,
    build_cnn_encoder,
    build_simclr,
)

SMALL = SimCLRConfig(
    image_shape=(12, 12, 1), encoder_filters=(4, 8), projection_units=(8,), projection_dim=4
)


def _views(n=8, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(size=(n, size, size, 1)).astype("float32"),
        rng.uniform(size=(n, size, size, 1)).astype("float32"),
    )


def test_shapes_presets_and_projection_head_roundtrip():
    model = build_simclr(SimCLRConfig.preset("tiny"))
    assert model.encoder.output_shape == (None, 16)
    assert model(np.zeros((3, 28, 28, 1), "float32")).shape == (3, 16)
    check_config_roundtrip(ProjectionHead((8,), 4), np.ones((5, 6), "float32"))
    with pytest.raises(ValueError, match="preset"):
        SimCLRConfig.preset("huge")
    assert SimCLRConfig.from_dict({"encoder_filters": [4], "temperature": 0.2}).encoder_filters == (
        4,
    )


def test_train_step_loss_is_nt_xent_and_falls():
    a, b = _views()
    model = build_simclr(SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    assert model.jit_compile is True
    # evaluate() = the test step: NT-Xent of the projections of both views in inference mode.
    loss = model.evaluate(tf.data.Dataset.from_tensor_slices((a, b)).batch(8), verbose=0)[0]
    expected = nt_xent(model(a, training=False), model(b, training=False), SMALL.temperature)
    assert abs(loss - float(expected)) < 1e-5
    history = model.fit(
        tf.data.Dataset.from_tensor_slices((a, b)).batch(8), epochs=30, verbose=0
    ).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["contrastive_accuracy"][-1] > 0.5  # positives become the nearest neighbours


def test_any_keras_encoder_and_keras_roundtrip(tmp_path):
    encoder = keras.Sequential(
        [keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(6)]
    )
    model = SimCLR(encoder, projection_units=(5,), projection_dim=3, temperature=0.2)
    a, _ = _views()
    loaded = check_keras_roundtrip(model, a, tmp_path)
    assert loaded.temperature == 0.2 and loaded.encoder.output_shape == (None, 6)
    assert_close(loaded.encoder(a), encoder(a))


def test_on_augmented_mnist_like_pipeline():
    images = (np.random.default_rng(0).uniform(size=(64, 12, 12)) * 255).astype("uint8")
    model = build_simclr(SMALL)
    model.compile(optimizer="adam")
    views = two_view_dataset(images, batch_size=16, seed=0)
    history = model.fit(views, epochs=1, verbose=0).history
    # Noise images leave one epoch nothing to learn: the loss stays near its chance value
    # log(2N - 1) for N = 16 pairs (3.43; measured 3.62), and the augmented views of an image are
    # rarely each other's nearest (measured 0.05). Unaugmented pairs give 2.28 and 1.0.
    assert abs(history["loss"][0] - math.log(2 * 16 - 1)) < 0.5
    assert history["contrastive_accuracy"][0] < 0.5


def test_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        SimCLRConfig(temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(build_cnn_encoder((12, 12, 1), (4,)), temperature=-1.0)
    with pytest.raises(ValueError, match="channels"):
        SimCLR(keras.Sequential([keras.Input((12, 12)), keras.layers.Flatten()]))
    model = build_simclr(SMALL)
    model.compile(optimizer="adam")
    a, b = _views(n=1)
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(
            tf.data.Dataset.from_tensor_slices((a, b)).batch(1, drop_remainder=True), verbose=0
        )
    with pytest.raises(ValueError, match="at least 2"):
        two_view_dataset(np.zeros((10, 12, 12), "uint8"), batch_size=1)
    with pytest.raises(ValueError, match="shape"):
        two_view_dataset(np.zeros((10, 12), "uint8"), batch_size=2)
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam", loss="mse")


DISTRIBUTED = """
import json
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfpretrain.models.simclr import SimCLRConfig, build_simclr
rng = np.random.default_rng(0)
a = rng.uniform(size=(8, 12, 12, 1)).astype("float32")
b = rng.uniform(size=(8, 12, 12, 1)).astype("float32")
cfg = SimCLRConfig(image_shape=(12, 12, 1), encoder_filters=(4, 8), projection_units=(8,),
                   projection_dim=4)
keras.utils.set_random_seed(0)
single = build_simclr(cfg)
weights = single.get_weights()
single.compile(optimizer=keras.optimizers.SGD(0.5))
ds = tf.data.Dataset.from_tensor_slices((a, b)).batch(8)
h1 = single.fit(ds, epochs=2, verbose=0).history
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    multi = build_simclr(cfg)
    multi.set_weights(weights)
    multi.compile(optimizer=keras.optimizers.SGD(0.5))
h2 = multi.fit(ds, epochs=2, verbose=0).history
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync, "single": h1["loss"], "multi": h2["loss"],
    "diff": max(float(np.abs(x - y).max())
                for x, y in zip(single.get_weights(), multi.get_weights())),
    "change": max(float(np.abs(x - y).max()) for x, y in zip(single.get_weights(), weights)),
}))
"""


def test_global_batch_loss_and_step_match_across_two_replicas():
    """Two replicas with 4 pairs each compute the 8-pair loss, gradients and updates of one
    device."""
    result = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True, check=True
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    np.testing.assert_allclose(out["multi"], out["single"], rtol=1e-5)
    assert out["change"] > 0.1  # the steps really moved the weights
    assert out["diff"] < 1e-4
