"""TFDS data sets prepared locally and offline, read back through `tfds:` specs."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.tfds_sets import store_tfds
from tfpretrain.data import DataNotFoundError, fashion_mnist, load_image_dataset
from tfpretrain.data.datasets import CLASS_NAMES
from tfpretrain.data.text_files import corpus_dataset, labelled_task, read_corpus

PLAY = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
REVIEWS = [("A gem.", 1), ("Dull and long.", 0), ("Loved it!", 1), ("Ugh.", 0)]
UNLABELLED = ["No label here."]


@pytest.fixture(scope="module")
def text_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tensorflow_datasets")
    store_tfds(
        root,
        "tiny_shakespeare",
        {"text": tfds.features.Text()},
        {"train": {"text": [PLAY]}, "test": {"text": ["Exeunt.\n"]}},
    )
    classes = tfds.features.ClassLabel(names=["neg", "pos"])
    # TFDS' own layout: imdb_reviews/plain_text/VERSION (its default config).
    store_tfds(
        root,
        "imdb_reviews",
        {"text": tfds.features.Text(), "label": classes},
        config="plain_text",
        splits={
            "train": {"text": [t for t, _ in REVIEWS], "label": [y for _, y in REVIEWS]},
            "test": {"text": ["Fine.", "Bad."], "label": [1, 0]},
            "unsupervised": {"text": UNLABELLED, "label": [-1]},
        },
    )
    sst = {
        "idx": tfds.features.Scalar(np.int32),
        "sentence": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=["negative", "positive"]),
    }
    store_tfds(
        root,
        "glue",
        sst,
        config="sst2",
        splits={
            "train": {"idx": [0, 1, 2], "sentence": ["good", "bad", "fine"], "label": [1, 0, 1]},
            "validation": {"idx": [0, 1], "sentence": ["nice", "awful"], "label": [1, 0]},
            "test": {"idx": [0], "sentence": ["hidden"], "label": [-1]},
        },
    )
    return root


def test_tfds_corpus_read_and_streamed(text_sets):
    lines = read_corpus("tfds:tiny_shakespeare", data_dir=text_sets)
    assert lines == [line for line in PLAY.splitlines() if line]
    streamed = corpus_dataset("tfds:tiny_shakespeare", data_dir=text_sets)
    assert isinstance(streamed, tf.data.Dataset)
    assert [s.decode() for s in streamed.as_numpy_iterator()] == lines
    # As stored (clm): the blank line kept, the text's final newline ending its last line.
    layout = corpus_dataset("tfds:tiny_shakespeare", data_dir=text_sets, layout=True)
    assert [s.decode() for s in layout.as_numpy_iterator()] == PLAY.split("\n")[:-1]
    assert read_corpus("tfds:tiny_shakespeare:test", data_dir=text_sets) == ["Exeunt."]
    reviews = read_corpus("tfds:imdb_reviews:unsupervised:text", data_dir=text_sets)
    assert reviews == UNLABELLED


def test_tfds_labelled_tasks_keep_class_names(text_sets):
    imdb = labelled_task("tfds:imdb_reviews", data_dir=text_sets)
    assert imdb["class_names"] == ["neg", "pos"] and imdb["num_classes"] == 2
    assert imdb["train"][0] == [t for t, _ in REVIEWS]
    assert imdb["train"][1].tolist() == [y for _, y in REVIEWS]
    assert imdb["dev"][0] == ["Fine.", "Bad."]  # no validation split: test is the dev set
    sst = labelled_task("tfds:glue/sst2", data_dir=text_sets)
    assert sst["class_names"] == ["negative", "positive"]
    assert sst["dev"][0] == ["nice", "awful"] and sst["dev"][1].tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"split 'test' has unlabelled examples \(label -1"):
        labelled_task("tfds:glue/sst2:train:test", data_dir=text_sets)
    with pytest.raises(ValueError, match=r"no split 'dev'; its splits are"):
        labelled_task("tfds:glue/sst2:train:dev", data_dir=text_sets)


def test_unprepared_tfds_names_how_to_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(
        DataNotFoundError,
        match=r"'cifar10' is not prepared in .*tfds build "
        r"cifar10.*download_and_prepare",
    ):
        load_image_dataset("tfds:cifar10")
    assert not any(tmp_path.iterdir())  # nothing written, nothing downloaded
    with pytest.raises(DataNotFoundError, match="tfds build tiny_shakespeare"):
        read_corpus("tfds:tiny_shakespeare")


@pytest.fixture(scope="module")
def fashion_subset():
    """200 training and 50 test images of the real Fashion-MNIST, in their original order."""
    (x_train, y_train), (x_test, y_test) = fashion_mnist()
    return x_train[:200], y_train[:200], x_test[:50], y_test[:50]


def test_fashion_mnist_as_png_folders_equals_the_builtin(tmp_path, fashion_subset):
    from PIL import Image

    x_train, y_train, x_test, y_test = fashion_subset
    folders = [name.replace("/", "-") for name in CLASS_NAMES["fashion_mnist"]]  # T-shirt/top
    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            path = tmp_path / split / folders[y] / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(path)
    data = load_image_dataset(str(tmp_path), class_names=folders)
    for xs, ys, got_x, got_y in (
        (x_train, y_train, data.x_train, data.y_train),
        (x_test, y_test, data.x_test, data.y_test),
    ):
        order = np.lexsort((np.arange(len(ys)), ys))  # the loader's order: class, then file
        assert got_x.shape == (len(xs), 28, 28, 1)
        np.testing.assert_array_equal(got_x[..., 0], xs[order])
        np.testing.assert_array_equal(got_y, ys[order])
    # Sorted folder names give other ids, but every image keeps its class name.
    default = load_image_dataset(str(tmp_path))
    assert default.class_names == sorted(folders)
    order = np.lexsort((np.arange(200), [sorted(folders).index(folders[y]) for y in y_train]))
    assert [default.class_names[y] for y in default.y_train] == [folders[y] for y in y_train[order]]


def test_fashion_mnist_as_local_tfds_equals_the_builtin(tmp_path, fashion_subset):
    x_train, y_train, x_test, y_test = fashion_subset
    names = CLASS_NAMES["fashion_mnist"]
    features = {
        "image": tfds.features.Image(shape=(28, 28, 1)),
        "label": tfds.features.ClassLabel(names=names),
    }
    store_tfds(
        tmp_path,
        "fashion_mnist_small",
        features,
        {
            "train": {"image": x_train[..., None], "label": y_train.astype(np.int64)},
            "test": {"image": x_test[..., None], "label": y_test.astype(np.int64)},
        },
    )
    data = load_image_dataset("tfds:fashion_mnist_small", data_dir=tmp_path)
    assert data.class_names == names and data.source == "tfds:fashion_mnist_small"
    np.testing.assert_array_equal(data.x_train[..., 0], x_train)
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.x_test[..., 0], x_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    # TFDS slices name both splits; the default test split is `test`.
    sliced = load_image_dataset(
        "tfds:fashion_mnist_small:train[:80]:train[80:100]", data_dir=tmp_path
    )
    np.testing.assert_array_equal(sliced.x_test[..., 0], x_train[80:100])
    np.testing.assert_array_equal(sliced.y_train, y_train[:80])
    resized = load_image_dataset("tfds:fashion_mnist_small", data_dir=tmp_path, image_size=(32, 32))
    assert resized.x_train.shape == (200, 32, 32, 1)


def test_a_registered_name_prepared_without_its_config_folder(tmp_path):
    # imdb_reviews is registered with configs; a copy written straight to imdb_reviews/1.0.0
    # (as TfDataBuilder does without a config) is still found.
    classes = tfds.features.ClassLabel(names=["neg", "pos"])
    store_tfds(
        tmp_path,
        "imdb_reviews",
        {"text": tfds.features.Text(), "label": classes},
        {"train": {"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}},
    )
    data = labelled_task("tfds:imdb_reviews", data_dir=tmp_path, dev_fraction=0.5)
    assert sorted(data["train"][0] + data["dev"][0]) == ["a", "b", "c", "d"]
    assert sorted(data["dev"][1].tolist()) == [0, 1] and data["class_names"] == ["neg", "pos"]
