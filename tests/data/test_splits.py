import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.data.splits import balanced_sample, holdout_stream, is_held_out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_sample_draws_equal_classes_from_an_unequal_set(seed):
    labels = np.array([0] * 700 + [1] * 250 + [2] * 50)
    rows = balanced_sample(labels, 1000, 90, seed)
    assert len(set(rows.tolist())) == 90
    assert np.bincount(labels[rows]).tolist() == [30, 30, 30]
    # A class smaller than its share gives all it has; the others share the rest equally.
    rows = balanced_sample(labels, 1000, 300, seed)
    assert np.bincount(labels[rows]).tolist() == [125, 125, 50]


def test_balanced_sample_is_seeded():
    labels = np.arange(100) % 2
    assert (balanced_sample(labels, 100, 10, 0) == balanced_sample(labels, 100, 10, 0)).all()
    assert set(balanced_sample(labels, 100, 10, 0)) != set(balanced_sample(labels, 100, 10, 1))


def test_sst2_limit_draws_balanced_labels():
    from tfpretrain.data.text_files import labelled_task

    data = labelled_task("sst2", limit=100, balanced=True, seed=1)
    sentences, labels = data["train"]
    assert len(sentences) == 100 and np.bincount(labels).tolist() == [50, 50]
    proportional = labelled_task("sst2", limit=100, seed=1)["train"][1]
    assert np.bincount(proportional).tolist() == [44, 56]  # SST-2 is 44% negative


def test_every_kth_element_is_held_out_and_the_rest_trains():
    assert [n for n in range(60) if is_held_out(n, 0.1)] == [9, 19, 29, 39, 49, 59]
    # floor(count * fraction) of the first count elements, spread evenly, for any fraction.
    for fraction, count in ((0.05, 600), (0.2, 600), (0.3, 7), (0.05, 19)):
        assert sum(is_held_out(n, fraction) for n in range(count)) == int(count * fraction)
    train, held = holdout_stream(tf.data.Dataset.range(30), 0.1)
    assert list(held.as_numpy_iterator()) == [9, 19, 29]
    assert list(train.as_numpy_iterator()) == [n for n in range(30) if n not in (9, 19, 29)]
