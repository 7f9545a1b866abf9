import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.data.splits import (
    balanced_sample,
    holdout_stream,
    is_held_out,
    stratified_split,
    stratified_subset,
)


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


# Read class after class, as a class-folder tree is: any first or last N rows miss classes.
SORTED = np.repeat([0, 1, 2], [600, 300, 100])


@pytest.mark.parametrize("seed", [0, 3])
def test_stratified_split_holds_out_every_class_of_a_sorted_set(seed):
    rest, held = stratified_split(SORTED, 1000, 100, seed)
    assert len(held) == 100 and np.bincount(SORTED[held]).tolist() == [60, 30, 10]
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(1000))
    assert (np.diff(rest) > 0).all() and not (np.diff(held) > 0).all()  # held rows shuffled
    again = stratified_split(SORTED, 1000, 100, seed)
    assert (again[0] == rest).all() and (again[1] == held).all()
    assert set(stratified_split(SORTED, 1000, 100, seed + 1)[1]) != set(held)


def test_stratified_split_without_labels_is_a_seeded_shuffle():
    rest, held = stratified_split(None, 1000, 100, seed=0)
    assert len(held) == 100 and len(set(held.tolist()) | set(rest.tolist())) == 1000
    assert set(held.tolist()) != set(range(900, 1000))  # not the tail
    assert (stratified_split(None, 1000, 100, seed=0)[1] == held).all()
    for size in (0, 1000):
        with pytest.raises(ValueError, match="both sides"):
            stratified_split(SORTED, 1000, size, seed=0)


def test_stratified_subset_keeps_rows_and_labels_together():
    x = np.arange(1000) * 10  # x identifies its row
    xs, ys = stratified_subset(x, SORTED, 50, seed=1)
    assert np.bincount(ys).tolist() == [30, 15, 5] and (SORTED[xs // 10] == ys).all()
    again = stratified_subset(x, SORTED, 50, seed=1)
    assert (again[0] == xs).all() and (again[1] == ys).all()
    # One row per class even where the proportion rounds to none.
    assert sorted(stratified_subset(x, SORTED, 3, seed=0)[1].tolist()) == [0, 1, 2]
    whole = stratified_subset(x, SORTED, 1000, seed=1)
    assert whole[0] is x and whole[1] is SORTED
    assert stratified_subset(x, SORTED, None, seed=1)[0] is x
    xs, ys = stratified_subset(x, None, 50, seed=1)
    assert ys is None and len(set(xs.tolist())) == 50 and xs.max() > 500


def test_every_kth_element_is_held_out_and_the_rest_trains():
    assert [n for n in range(60) if is_held_out(n, 0.1)] == [9, 19, 29, 39, 49, 59]
    # floor(count * fraction) of the first count elements, spread evenly, for any fraction.
    for fraction, count in ((0.05, 600), (0.2, 600), (0.3, 7), (0.05, 19)):
        assert sum(is_held_out(n, fraction) for n in range(count)) == int(count * fraction)
    train, held = holdout_stream(tf.data.Dataset.range(30), 0.1)
    assert list(held.as_numpy_iterator()) == [9, 19, 29]
    assert list(train.as_numpy_iterator()) == [n for n in range(30) if n not in (9, 19, 29)]
