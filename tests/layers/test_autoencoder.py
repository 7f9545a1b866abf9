import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import check_config_roundtrip, check_mixed_precision, check_xla
from tfpretrain.layers import Autoencoder


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")


def test_default_is_the_classic_dense_stack(images):
    ae = Autoencoder()
    out = ae(images)
    assert out.shape == images.shape
    dense = [
        layer
        for layer in ae.encoder.layers + ae.decoder.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    assert [(d.kernel.shape[0], d.units) for d in dense] == [
        (784, 128),
        (128, 64),
        (64, 64),
        (64, 784),
    ]
    assert ae.encoder(images).shape == (4, 64)
    assert np.all((np.asarray(out) >= 0) & (np.asarray(out) <= 1))


def test_dense_forward_matches_numpy(images):
    ae = Autoencoder(encoder_units=(16, 8), decoder_units=(12,))
    out = np.asarray(ae(images))
    h = images.reshape(4, -1)
    for i, layer in enumerate(ae.encoder.layers[1:] + ae.decoder.layers[:-1]):
        w, b = (np.asarray(v) for v in layer.weights)
        h = h @ w + b
        h = 1 / (1 + np.exp(-h)) if i == 3 else np.maximum(h, 0)
    np.testing.assert_allclose(out.reshape(4, -1), h, atol=1e-5)


def test_conv_variant(images):
    ae = Autoencoder(conv=True, encoder_units=(32,))
    assert ae(images).shape == images.shape
    assert ae.encoder(images).shape == (4, 32)


def test_config_xla_and_precision(images):
    check_config_roundtrip(Autoencoder(conv=True), images)
    ae = Autoencoder()
    check_xla(lambda v: ae(v), tf.constant(images))
    check_mixed_precision(lambda: Autoencoder(), images, "mixed_bfloat16")


def test_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        Autoencoder(conv=True)(np.zeros((1, 30, 30, 1), "float32"))
    with pytest.raises(ValueError, match="channels"):
        Autoencoder(conv=True)(np.zeros((1, 28, 28), "float32"))
    with pytest.raises(ValueError, match="images of shape"):
        Autoencoder()(np.zeros((2, 784), "float32"))
    with pytest.raises(ValueError, match="encoder_units"):
        Autoencoder(encoder_units=())
