import numpy as np
import pytest

from tfpretrain.data import image_dataset


def test_scales_batches_and_targets():
    x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    ds = image_dataset(x, batch_size=4, shuffle=False, targets="images")
    batches = list(ds.as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(4, 4, 4, 1), (4, 4, 4, 1), (2, 4, 4, 1)]
    np.testing.assert_allclose(batches[0][0][..., 0], x[:4] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(batches[0][0], batches[0][1])


def test_labels_and_seeded_shuffle():
    x = np.arange(20, dtype=np.uint8).reshape(20, 1, 1)
    y = np.arange(20)
    first = [b for b in image_dataset(x, y, batch_size=20, seed=3).as_numpy_iterator()][0]
    again = [b for b in image_dataset(x, y, batch_size=20, seed=3).as_numpy_iterator()][0]
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(np.round(first[0][:, 0, 0, 0] * 255).astype(int), first[1])
    assert sorted(first[1]) == list(range(20)) and list(first[1]) != list(range(20))


def test_bad_inputs():
    with pytest.raises(TypeError, match="numbers"):
        image_dataset(np.array([["a", "b"]] * 4).reshape(2, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        image_dataset(np.zeros((5, 784)))
    with pytest.raises(ValueError, match="labels"):
        image_dataset(np.zeros((5, 2, 2)), np.zeros(4))
