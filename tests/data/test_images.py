"""The user's own images: class folders, .npz/.npy arrays, hold-outs (data/image_files.py)."""

import numpy as np
import pytest
from PIL import Image

from tfpretrain.data import CorruptDataError, ImageDataset, load_image_dataset, load_images
from tfpretrain.data.splits import stratified_holdout, stratified_sample


def _write(path, array, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _grid(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_class_folders_grey_with_hold_out(tmp_path):
    images = {
        name: [_grid(10 * c + i, (8, 6)) for i in range(5)]
        for c, name in enumerate(["cat", "dog", "emu"])
    }
    for name, arrays in images.items():
        for i, a in enumerate(arrays):
            _write(tmp_path / name / f"{i}.png", a)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")  # ignored
    data = load_image_dataset(str(tmp_path), test_fraction=0.2, seed=3)
    assert data.class_names == ["cat", "dog", "emu"]
    assert data.x_train.shape == (12, 8, 6, 1) and data.x_test.shape == (3, 8, 6, 1)
    assert sorted(data.y_test.tolist()) == [0, 1, 2]  # stratified: one of each class
    # Every image comes back with its label, bit for bit.
    for x, y in zip(
        np.concatenate([data.x_train, data.x_test]),
        np.concatenate([data.y_train, data.y_test]),
        strict=True,
    ):
        assert any((x[..., 0] == a).all() for a in images[data.class_names[y]])
    again = load_image_dataset(str(tmp_path), test_fraction=0.2, seed=3)
    assert (again.x_test == data.x_test).all()


def test_split_trees_rgb_jpeg_and_declared_classes(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for c, name in enumerate(["b", "a"]):
            for i in range(n):
                _write(tmp_path / split / name / f"{i}.jpg", _grid(c * 7 + i, (5, 4, 3)), "JPEG")
    data = load_image_dataset(str(tmp_path), class_names=["b", "a"])
    assert data.class_names == ["b", "a"]
    assert data.x_train.shape == (6, 5, 4, 3) and data.x_test.shape == (2, 5, 4, 3)
    assert data.y_train.tolist() == [0, 0, 0, 1, 1, 1] and data.y_test.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"\['a'\] are not among the declared"):
        load_image_dataset(str(tmp_path), class_names=["b", "c"])


def test_mixed_sizes_named_then_resized_or_cropped(tmp_path):
    _write(tmp_path / "a" / "small.png", np.full((4, 4), 50, np.uint8))
    wide = np.zeros((4, 12, 3), np.uint8)
    wide[:, 4:8] = 200  # the centre third: what a square centre crop keeps
    _write(tmp_path / "b" / "wide.png", wide)
    _write(tmp_path / "b" / "wide2.png", wide)
    with pytest.raises(ValueError, match=r"small.png is 4x4 but .*wide.png is 12x4.*image-size"):
        load_image_dataset(str(tmp_path))
    data = load_image_dataset(str(tmp_path), image_size=(4, 4), fit="crop", test_fraction=0.3)
    x = np.concatenate([data.x_train, data.x_test])
    assert x.shape == (3, 4, 4, 3)  # one colour image makes them all RGB
    wides = x[np.concatenate([data.y_train, data.y_test]) == 1]
    assert (wides == 200).all()
    resized = load_image_dataset(str(tmp_path), image_size=(4, 4), fit="resize", test_fraction=0.3)
    stretched = resized.x_train[resized.y_train == 1]
    assert stretched.shape[1:] == (4, 4, 3) and stretched.min() < 200


def test_bad_folders(tmp_path):
    _write(tmp_path / "one" / "only" / "x.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="at least two classes"):
        load_image_dataset(str(tmp_path / "one"))
    _write(tmp_path / "two" / "a" / "ok.png", np.zeros((3, 3), np.uint8))
    raw = (tmp_path / "one" / "only" / "x.png").read_bytes()
    (tmp_path / "two" / "b").mkdir(parents=True)
    (tmp_path / "two" / "b" / "cut.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptDataError, match=r"cut.png: cannot decode"):
        load_image_dataset(str(tmp_path / "two"))
    _write(tmp_path / "loose" / "a" / "x.png", np.zeros((3, 3), np.uint8))
    _write(tmp_path / "loose" / "stray.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="stray.png lies directly in"):
        load_image_dataset(str(tmp_path / "loose"))
    with pytest.raises(ValueError, match="not a tfds:NAME spec, not a folder"):
        load_image_dataset(str(tmp_path / "missing"))


def test_npz_forms_and_npy(tmp_path):
    x = _grid(0, (20, 32, 32, 3))
    y = np.array(["ship", "car"] * 10)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    data = load_image_dataset(str(tmp_path / "xy.npz"), test_fraction=0.25)
    assert data.class_names == ["car", "ship"] and data.x_train.shape == (16, 32, 32, 3)
    assert np.bincount(data.y_test).tolist() == [2, 2]  # round(0.25 * 10) per class
    (xt, yt), (xs, ys) = load_images(str(tmp_path / "xy.npz"), test_fraction=0.25)
    assert (xt == data.x_train).all() and (ys == data.y_test).all()

    grey = _grid(1, (10, 28, 28))
    np.savez(
        tmp_path / "keras.npz",
        x_train=grey[:8],
        y_train=np.arange(8) % 2,
        x_test=grey[8:],
        y_test=np.array([0, 1]),
    )
    data = load_image_dataset(str(tmp_path / "keras.npz"))
    assert data.x_train.shape == (8, 28, 28) and (data.x_test == grey[8:]).all()
    assert data.class_names == ["0", "1"]

    np.save(tmp_path / "x.npy", grey.astype(np.float32) / 255.0)
    data = load_image_dataset(str(tmp_path / "x.npy"), test_fraction=0.2)
    assert data.y_train is None and data.class_names == [] and len(data.x_test) == 2
    assert data.x_train.dtype == np.uint8
    assert sorted(np.concatenate([data.x_train, data.x_test]).sum((1, 2))) == sorted(
        grey.astype(np.int64).sum((1, 2))
    )

    np.savez(tmp_path / "bad.npz", images=x)
    with pytest.raises(ValueError, match=r"holds arrays \['images'\]; expected `x`"):
        load_image_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "float.npz", x=x.astype(np.float32))
    with pytest.raises(ValueError, match="floats in \\[0, 1\\]"):
        load_image_dataset(str(tmp_path / "float.npz"))


def test_stratified_draws():
    labels = np.array([0] * 90 + [1] * 10)
    train, held = stratified_holdout(labels, 100, 0.1, seed=0)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(100))
    assert np.bincount(labels[held]).tolist() == [9, 1]
    sample = stratified_sample(labels, 100, 20, seed=0)
    assert len(set(sample.tolist())) == 20 and np.bincount(labels[sample]).tolist() == [18, 2]
    assert not (stratified_sample(labels, 100, 20, seed=1) == sample).all()
    with pytest.raises(ValueError, match="too few"):
        stratified_holdout(np.array([0]), 1, 0.5, seed=0)


def test_limit_draws_class_by_class_not_the_first_rows(tmp_path):
    # A split tree is read class after class, 60/30/10 images: its first 50 are all class 0.
    counts = (60, 30, 10)
    for split, scale in (("train", 1), ("test", 2)):
        for c, n in enumerate(counts):
            for i in range(n // scale):
                _write(tmp_path / split / f"c{c}" / f"{i:03d}.png", _grid(1000 * c + i, (4, 4)))
    data = load_image_dataset(str(tmp_path))
    assert (data.y_train[:50] == 0).all()

    def pixels(x):
        return {image.tobytes() for image in x}

    small = data.limit(train=50, test=20, seed=1)
    assert small.x_train.shape == (50, 4, 4, 1) and small.y_train.shape == (50,)
    assert np.bincount(small.y_train).tolist() == [30, 15, 5]  # the classes' proportions
    assert np.bincount(small.y_test).tolist() == [12, 6, 2]
    assert pixels(small.x_train) <= pixels(data.x_train)
    assert pixels(small.x_train) != pixels(data.x_train[:50])
    # Each image keeps its label.
    for x, y in zip(small.x_train, small.y_train, strict=True):
        assert y in data.y_train[(data.x_train == x).all(axis=(1, 2, 3))]

    again = data.limit(train=50, test=20, seed=1)
    assert (again.x_train == small.x_train).all() and (again.y_train == small.y_train).all()
    other = data.limit(train=50, test=20, seed=2)
    assert pixels(other.x_train) != pixels(small.x_train)
    assert (other.x_test == small.x_test).all()  # the test draw is the same for every seed

    unchanged = data.limit(train=None, test=1000, seed=1)
    assert unchanged.x_train is data.x_train and unchanged.x_test is data.x_test
    unlabelled = ImageDataset(data.x_train, None, data.x_test, None, [], "x.npy")
    unlabelled = unlabelled.limit(train=7, seed=0)
    assert unlabelled.x_train.shape[0] == 7 and unlabelled.y_train is None
