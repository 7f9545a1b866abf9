"""Fréchet distance between image sets in the feature space of a classifier trained on the real
data.

The Fréchet (2-Wasserstein) distance between Gaussians N(m1, S1) and N(m2, S2) is

    |m1 - m2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2),

the quantity FID reports with Inception features (Heusel et al., 2017). Here the features come
from a small CNN the package trains on the real images (`train_feature_classifier`), so scores
are comparable between runs that share that classifier, not with published FIDs.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.training.checkpoint import load_keras_model

FEATURE_CLASSIFIER_FILE = "feature_classifier.keras"


def sqrtm_psd(matrix) -> tf.Tensor:
    """The symmetric positive semi-definite square root of a symmetric PSD matrix (float64).

    Uses the eigendecomposition `Q diag(w) Q^T`; eigenvalues rounded below zero are clipped.
    """
    matrix = tf.convert_to_tensor(matrix, tf.float64)
    matrix = (matrix + tf.transpose(matrix)) / 2.0
    eigenvalues, vectors = tf.linalg.eigh(matrix)
    root = tf.sqrt(tf.maximum(eigenvalues, 0.0))
    return (vectors * root[None, :]) @ tf.transpose(vectors)


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b).

    Args:
        mean_a, mean_b: `[D]` means.
        cov_a, cov_b: `[D, D]` symmetric PSD covariances.

    Returns:
        The distance as a Python float (>= 0 up to rounding).

    Example:

    >>> frechet_distance([0.0], [[4.0]], [1.0], [[1.0]])  # (0-1)^2 + (2-1)^2
    2.0
    """
    mean_a, mean_b = (tf.convert_to_tensor(m, tf.float64) for m in (mean_a, mean_b))
    cov_a, cov_b = (tf.convert_to_tensor(c, tf.float64) for c in (cov_a, cov_b))
    if mean_a.shape.rank != 1 or mean_a.shape != mean_b.shape:
        raise ValueError(
            f"Means must be two [D] vectors of equal size; got {mean_a.shape} and {mean_b.shape}."
        )
    d = mean_a.shape[0]
    if cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(f"Covariances must be [{d}, {d}]; got {cov_a.shape} and {cov_b.shape}.")
    # tr((S_a S_b)^1/2) = tr((S_a^1/2 S_b S_a^1/2)^1/2); the latter is symmetric PSD, so the
    # eigendecomposition route is exact and stable (no complex Schur form needed).
    root_a = sqrtm_psd(cov_a)
    cross = sqrtm_psd(root_a @ cov_b @ root_a)
    diff = mean_a - mean_b
    value = (
        tf.reduce_sum(diff * diff)
        + tf.linalg.trace(cov_a)
        + tf.linalg.trace(cov_b)
        - 2.0 * tf.linalg.trace(cross)
    )
    return float(value.numpy())


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean `[D]` and unbiased covariance `[D, D]` of `[N, D]` features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"Need [N, D] features with N >= 2; got shape {features.shape}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def build_feature_classifier(
    image_shape=(28, 28, 1), num_classes: int = 10, width: int = 32
) -> keras.Model:
    """A small CNN whose 128-wide layer `"features"` is the Fréchet feature space."""
    images = keras.Input(shape=image_shape, name="images")
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(images)
    x = keras.layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="features")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(images, logits, name="feature_classifier")


def train_feature_classifier(
    images, labels, *, path=None, epochs: int = 2, batch_size: int = 256, seed: int = 0, verbose=0
) -> keras.Model:
    """Trains (or loads, when `path` exists) the classifier that defines the Fréchet features.

    Args:
        images: `[N, H, W]` / `[N, H, W, C]` uint8 or float images of the real data.
        labels: `[N]` integer class labels.
        path: `.keras` file to cache the classifier in; loaded instead of training when present.
        epochs, batch_size, seed: training settings.

    Returns:
        The trained classifier (`images -> logits`).
    """
    from tfpretrain.data import image_dataset, image_shape

    if path is not None and Path(path).exists():
        return load_keras_model(path)
    num_classes = int(np.max(labels)) + 1
    model = build_feature_classifier(image_shape=image_shape(images), num_classes=num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    model.fit(
        image_dataset(images, labels, batch_size=batch_size, seed=seed),
        epochs=epochs,
        verbose=verbose,
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
    return model


class FrechetScorer:
    """Scores image sets against fixed real images in a classifier's feature space.

    Args:
        classifier: a model with a layer named `"features"` (`train_feature_classifier`).
        real_images: the reference images, `[N, H, W(, C)]`, uint8 or float in [0, 1].
        batch_size: images per forward pass.

    Example:

    >>> scorer = FrechetScorer(classifier, x_test)  # doctest: +SKIP
    >>> scorer.score(generated_images)  # doctest: +SKIP
    """

    def __init__(self, classifier: keras.Model, real_images, batch_size: int = 1000):
        self.classifier = classifier
        self.batch_size = batch_size
        self.features_model = keras.Model(
            classifier.inputs, [classifier.get_layer("features").output, classifier.output]
        )
        self._predict = tf.function(
            lambda x: self.features_model(x, training=False), jit_compile=True
        )
        real_features, _ = self.features_and_classes(real_images)
        self.real_mean, self.real_cov = gaussian_statistics(real_features)

    def features_and_classes(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Features `[N, D]` and predicted classes `[N]` of images."""
        from tfpretrain.data import scale_images

        feats, classes = [], []
        for start in range(0, len(images), self.batch_size):
            batch = scale_images(images[start : start + self.batch_size])
            f, logits = self._predict(batch)
            feats.append(np.asarray(f))
            classes.append(np.argmax(np.asarray(logits), axis=-1))
        return np.concatenate(feats), np.concatenate(classes)

    def score(self, images) -> float:
        """Fréchet distance of `images` from the real images."""
        features, _ = self.features_and_classes(images)
        return frechet_distance(*gaussian_statistics(features), self.real_mean, self.real_cov)
