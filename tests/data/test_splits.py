import numpy as np
import pytest

from tfpretrain.data.splits import balanced_sample


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
