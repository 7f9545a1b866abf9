import gzip
import hashlib

import numpy as np
import pytest

from tfpretrain import data


def test_mnist_from_data_dir(data_dir):
    (x_train, y_train), (x_test, y_test) = data.mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and set(np.unique(y_train)) == set(range(10))
    # The first training digit of the original MNIST is a 5, the first test digit a 7.
    assert y_train[0] == 5 and y_test[0] == 7


def test_fashion_mnist_idx_files(data_dir):
    (x_train, y_train), (x_test, y_test) = data.fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and y_test.shape == (10000,)
    # Same bytes as the official file: hash the labels we parsed against the raw payload.
    raw = gzip.open(data_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").read()[8:]
    assert hashlib.sha256(y_test.tobytes()).hexdigest() == hashlib.sha256(raw).hexdigest()


def test_missing_everywhere_names_all_places(tmp_path, monkeypatch):
    monkeypatch.setenv("TFPRETRAIN_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_network():
        raise OSError("no network")

    monkeypatch.setattr("keras.datasets.mnist.load_data", no_network)
    with pytest.raises(data.DataNotFoundError) as err:
        data.mnist()
    text = str(err.value)
    assert "nothing/mnist/mnist.npz" in text and "keras_home/datasets/mnist.npz" in text
    assert "Keras download" in text and "TFPRETRAIN_DATA_DIR" in text


def test_corrupt_npz(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.npz").write_bytes(b"this is not a zip file")
    monkeypatch.setenv("TFPRETRAIN_DATA_DIR", str(tmp_path))
    with pytest.raises(data.CorruptDataError, match="Cannot read MNIST"):
        data.mnist()


def test_corrupt_idx(tmp_path):
    path = tmp_path / "bad-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x10" + b"\x01" * 3)  # promises 16 labels, holds 3
    with pytest.raises(data.CorruptDataError, match="header promises 16"):
        data.read_idx(path)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="mnist"):
        data.load_images("cifar")
