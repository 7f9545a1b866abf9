import numpy as np
import pytest

from tfpretrain.frechet import (
    FrechetScorer,
    frechet_distance,
    gaussian_statistics,
    sqrtm_psd,
    train_feature_classifier,
)


def _random_psd(rng, d, floor=0.1):
    a = rng.normal(size=(d, d))
    return a @ a.T + floor * np.eye(d)


def _denman_beavers_trace_sqrt(a, b, iterations=60):
    """tr((A B)^1/2) by the Denman-Beavers iteration on the (non-symmetric) product: an
    independent route that uses no eigendecomposition and no SciPy."""
    y, z = a @ b, np.eye(len(a))
    for _ in range(iterations):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return np.trace(y)


def test_sqrtm_squares_back():
    rng = np.random.default_rng(0)
    s = _random_psd(rng, 6)
    root = sqrtm_psd(s).numpy()
    np.testing.assert_allclose(root @ root, s, atol=1e-9)
    np.testing.assert_allclose(root, root.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(root) > 0)


def test_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(2.0)
    rng = np.random.default_rng(1)
    d = 5
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 3.0, d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    # Covariances with shared eigenvectors: |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2.
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(m1, q @ np.diag(a) @ q.T, m2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)
    # Scaled covariance c^2 S: (1 - c)^2 tr S.
    s = _random_psd(rng, d)
    assert frechet_distance(m1, s, m1, 9.0 * s) == pytest.approx(4.0 * np.trace(s), rel=1e-9)
    assert frechet_distance(m1, s, m1, s) == pytest.approx(0.0, abs=1e-8)


def test_general_covariances_match_an_iterative_reference():
    rng = np.random.default_rng(2)
    for d in (2, 7):
        s1, s2 = _random_psd(rng, d), _random_psd(rng, d)
        m1, m2 = rng.normal(size=d), rng.normal(size=d)
        reference = (
            np.sum((m1 - m2) ** 2) + np.trace(s1 + s2) - 2 * _denman_beavers_trace_sqrt(s1, s2)
        )
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-8)
        # Symmetric in its two arguments.
        assert frechet_distance(m2, s2, m1, s1) == pytest.approx(reference, rel=1e-8)


def test_estimate_from_samples_approaches_closed_form():
    rng = np.random.default_rng(3)
    m2 = np.array([1.0, -1.0, 0.5])
    x = rng.normal(size=(40_000, 3))
    y = m2 + rng.normal(size=(40_000, 3)) * np.array([2.0, 1.0, 0.5])
    expected = np.sum(m2**2) + (1 - 2.0) ** 2 + 0 + (1 - 0.5) ** 2
    got = frechet_distance(*gaussian_statistics(x), *gaussian_statistics(y))
    assert got == pytest.approx(expected, abs=0.05)


def test_bad_input():
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="Means"):
        frechet_distance([0.0, 1.0], np.eye(2), [0.0], np.eye(1))
    with pytest.raises(ValueError, match="Covariances"):
        frechet_distance([0.0, 1.0], np.eye(3), [0.0, 1.0], np.eye(2))


def test_scorer_separates_real_from_noise_and_caches_classifier(tmp_path):
    from tfpretrain.data import mnist

    (x, y), _ = mnist()
    x, y = x[:1024], y[:1024]
    path = tmp_path / "clf.keras"
    classifier = train_feature_classifier(x, y, path=path, epochs=1, batch_size=128)
    assert path.exists()
    again = train_feature_classifier(x, y, path=path, epochs=1)  # loaded, not retrained
    for w1, w2 in zip(classifier.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(w1, w2)
    scorer = FrechetScorer(classifier, x[:512], batch_size=256)
    noise = np.random.default_rng(0).uniform(size=(512, 28, 28, 1)).astype("float32")
    assert scorer.score(x[512:]) < 0.25 * scorer.score(noise)
