import math

import keras
import numpy as np
import pytest

from tfpretrain.data import mnist
from tfpretrain.evaluate import (
    KNNAccuracy,
    compare,
    copy_encoder,
    encode,
    fine_tune,
    fit_linear,
    linear_probe,
    load_encoder,
    markdown_table,
    select_labels,
)
from tfpretrain.models import AutoencoderConfig, autoencoder_layer, build_autoencoder
from tfpretrain.models.simclr import SimCLRConfig, build_cnn_encoder, build_simclr


def knn_numpy(bank, bank_labels, queries, query_labels, k, temperature=0.07, num_classes=10):
    """Accuracy of a vote of the k most cosine-similar bank rows, each weighted by
    exp(similarity / temperature) (Wu et al., 2018), in float64 numpy."""
    bank = bank / np.linalg.norm(bank.astype("float64"), axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries.astype("float64"), axis=1, keepdims=True)
    similarity = queries @ bank.T
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(queries), num_classes))
    rows = np.repeat(np.arange(len(queries))[:, None], k, axis=1)
    weights = np.exp(np.take_along_axis(similarity, nearest, 1) / temperature)
    np.add.at(votes, (rows, bank_labels[nearest]), weights)
    return float(np.mean(votes.argmax(1) == query_labels))


@pytest.fixture(scope="module")
def digits():
    (x, y), (x_test, y_test) = mnist()
    return (x[:3000], y[:3000]), (x_test[:1000], y_test[:1000])


def test_select_labels_per_class_and_total():
    y = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])
    per_class = select_labels(y, 5, per_class=True, seed=1)
    assert np.array_equal(np.bincount(y[per_class]), np.full(10, 5))
    total = select_labels(y, 100, seed=1)
    assert len(set(total)) == 100 and np.bincount(y[total], minlength=10).min() >= 5  # stratified
    assert np.array_equal(select_labels(y, 100, seed=1), total)  # reproducible
    with pytest.raises(ValueError, match="only 50"):
        select_labels(y, 51, per_class=True)
    with pytest.raises(ValueError, match="only 950"):
        select_labels(y, 1000)
    with pytest.raises(ValueError, match="positive"):
        select_labels(y, 0)


def test_linear_probe_on_pixels_is_a_real_classifier(digits):
    """A flatten 'encoder' makes the probe multinomial logistic regression on pixels (~85-90%)."""
    flatten = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    scores = linear_probe(flatten, *digits, epochs=10)
    assert 0.8 < scores["accuracy"] < 0.97 and set(scores) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
    }
    # The scores are the macro averages of the same probe's predictions, counted here by hand.
    (x, y), (x_test, y_test) = digits
    pixels = (x.reshape(len(x), -1) / 255.0).astype("float32")
    np.testing.assert_array_equal(encode(flatten, x), pixels)
    kernel, bias = fit_linear(pixels, y, 10, steps=10 * math.ceil(len(y) / 256), batch_size=256)
    test_pixels = (x_test.reshape(len(x_test), -1) / 255.0).astype("float32")
    predicted = np.argmax(test_pixels @ kernel + bias, axis=1)
    precision = np.array([np.mean(y_test[predicted == c] == c) for c in range(10)])
    recall = np.array([np.mean(predicted[y_test == c] == c) for c in range(10)])
    assert scores["accuracy"] == pytest.approx(np.mean(predicted == y_test))
    assert scores["precision"] == pytest.approx(precision.mean())
    assert scores["recall"] == pytest.approx(recall.mean())
    assert scores["f1"] == pytest.approx(np.mean(2 * precision * recall / (precision + recall)))


def test_fine_tune_learns_and_leaves_encoder_untouched(digits):
    encoder = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(64, "relu")]
    )
    before = [w.copy() for w in encoder.get_weights()]
    scores = fine_tune(encoder, *digits, labels=200, steps=120, batch_size=64)
    assert scores["labels"] == 200 and scores["accuracy"] > 0.6
    for a, b in zip(before, encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = copy_encoder(encoder, (28, 28, 1), fresh=True)
    assert not np.allclose(fresh.get_weights()[0], encoder.get_weights()[0])
    with pytest.raises(ValueError, match="only 3000"):
        fine_tune(encoder, *digits, labels=5000)


def test_fit_linear_weights_apply_to_the_raw_features():
    """Training sees standardised features; the returned weights must undo that exactly."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 4)).astype("float32")
    y = (z[:, 0] - z[:, 1] > 0).astype("int64")
    raw = z * np.array([1e2, 1e-2, 1.0, 5.0], "float32") + 50.0  # scaled and shifted
    kernel, bias = fit_linear(raw, y, 2, steps=360, batch_size=100)
    assert kernel.shape == (4, 2) and bias.shape == (2,)
    logits = raw.astype("float64") @ kernel + bias
    assert np.mean(np.argmax(logits, axis=1) == y) > 0.9
    # The same probe trained on the standardised features gives the same logits.
    standard = (raw - raw.mean(0)) / (raw.std(0) + 1e-6)
    k2, b2 = fit_linear(standard, y, 2, steps=360, batch_size=100)
    np.testing.assert_allclose(logits, standard @ k2 + b2, rtol=1e-3, atol=1e-3)


def test_fine_tune_starts_its_head_from_a_probe(digits):
    """With a learning rate of ~0 only the starting head decides: a probe's, or a random one."""
    encoder = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(64, "relu")]
    )
    kwargs = dict(labels=200, steps=2, batch_size=64, learning_rate=1e-12)
    warm = fine_tune(encoder, *digits, **kwargs)
    cold = fine_tune(encoder, *digits, probe_first=False, **kwargs)
    assert warm["accuracy"] > 0.5 and cold["accuracy"] < 0.35
    # A re-initialised network starts at random, as supervised training from scratch does.
    assert fine_tune(encoder, *digits, from_scratch=True, **kwargs)["accuracy"] < 0.35


def test_knn_callback_and_compare_table(digits):
    (x, y), (x_test, y_test) = digits
    flatten = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()])
    knn = KNNAccuracy((x, y), (x_test[:300], y_test[:300]), k=10, encoder=flatten)
    pixels = knn_numpy(x.reshape(len(x), -1), y, x_test[:300].reshape(300, -1), y_test[:300], k=10)
    assert knn.accuracy(flatten) == pixels > 0.8  # k-NN on raw MNIST pixels is a strong baseline
    # As a callback during SimCLR training it logs knn_accuracy each epoch.
    model = build_simclr(SimCLRConfig.preset("tiny"))
    model.compile(optimizer="adam")
    views = (x[:64, ..., None] / 255.0).astype("float32")
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((views, views)).batch(32, drop_remainder=True)
    logs = model.fit(
        ds,
        epochs=2,
        verbose=0,
        callbacks=[KNNAccuracy((x[:500], y[:500]), (x_test[:100], y_test[:100]), k=5)],
    )
    assert len(logs.history["knn_accuracy"]) == 2
    # The value logged is the k-NN accuracy of the trained encoder's features.
    images = np.concatenate([x[:500], x_test[:100]])[..., None] / 255.0
    features = model.encoder.predict(images, verbose=0)
    expected = knn_numpy(features[:500], y[:500], features[500:], y_test[:100], k=5)
    assert logs.history["knn_accuracy"][-1] == pytest.approx(expected, abs=0.011)  # one query's tie

    rows = compare(
        {"pixels": build_cnn_encoder((28, 28, 1), (4,))},
        (x[:500], y[:500]),
        (x_test[:200], y_test[:200]),
        label_counts=(50,),
        steps=20,
        batch_size=25,
    )
    assert set(rows) == {"scratch", "pixels"} and set(rows["pixels"]) == {"50", "linear_probe"}
    table = markdown_table(rows)
    assert "| 50 labels | linear probe |" in table and table.count("\n") == 4


def test_load_encoder_from_runs_and_files(tmp_path):
    ae = build_autoencoder(AutoencoderConfig(conv=True))
    (tmp_path / "ae").mkdir()
    ae.save(tmp_path / "ae" / "model.keras")
    encoder, kind = load_encoder(tmp_path / "ae")
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    assert kind == "autoencoder"
    np.testing.assert_allclose(encoder(x), autoencoder_layer(ae).encoder(x), atol=1e-5)

    simclr = build_simclr(SimCLRConfig.preset("tiny"))
    simclr.save(tmp_path / "simclr.keras")
    encoder, kind = load_encoder(tmp_path / "simclr.keras")
    assert kind == "simclr"
    np.testing.assert_allclose(encoder(x), simclr.encoder(x), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="simclr"):
        load_encoder(tmp_path / "missing")
