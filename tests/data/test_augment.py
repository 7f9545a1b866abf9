"""What each augmentation of tfpretrain.data.augment does to constructed images, and its seeding."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfpretrain.data.augment import (
    AugmentConfig,
    augment,
    crop_and_affine,
    example_views,
    gaussian_blur,
    gaussian_noise,
    random_erasing,
    two_view_dataset,
    two_views,
)

H = W = 16
NONE = dict(
    crop_probability=0.0,
    affine_probability=0.0,
    noise_probability=0.0,
    blur_probability=0.0,
    erase_probability=0.0,
)


def seed(a=0, b=1):
    return tf.constant([a, b], tf.int64)


def coordinates(batch: int) -> np.ndarray:
    """Images whose channels are each pixel's x / (W - 1), its y / (H - 1), and 1.

    Bilinear resampling is exact on such ramps, so the affine map that a view sampled the input
    with can be read back from the view; channel 2 stays 1 exactly where all four neighbours
    of the sampled point lie inside the input.
    """
    ys, xs = np.mgrid[0:H, 0:W].astype("float32")
    image = np.stack([xs / (W - 1), ys / (H - 1), np.ones_like(xs)], axis=-1)
    return np.repeat(image[None], batch, axis=0)


def sampling_map(view: np.ndarray) -> np.ndarray:
    """The `[2, 3]` matrix M with input (x, y) = M @ (output x, output y, 1), fitted on the
    output pixels that sampled inside the input; the fit must be exact (the map is affine)."""
    ys, xs = np.mgrid[0:H, 0:W].astype("float64")
    inside = np.abs(view[..., 2] - 1.0) < 1e-5
    assert inside.sum() >= 0.25 * H * W
    design = np.stack([xs[inside], ys[inside], np.ones(inside.sum())], axis=1)
    target = np.stack([view[..., 0][inside] * (W - 1), view[..., 1][inside] * (H - 1)], axis=1)
    matrix, *_ = np.linalg.lstsq(design, target, rcond=None)
    np.testing.assert_allclose(design @ matrix, target, atol=2e-3)
    return matrix.T


def test_config_rejects_impossible_settings():
    for bad in (
        dict(noise_probability=1.5),
        dict(crop_scale=(0.5, 0.4)),
        dict(crop_scale=(0.5, 1.2)),
        dict(blur_sigma=(0.0, 1.0)),
        dict(max_rotation=-1.0),
        dict(noise_stddev=-0.1),
    ):
        with pytest.raises(ValueError):
            AugmentConfig(**bad)


def test_a_batch_without_a_channel_axis_is_refused():
    with pytest.raises(ValueError, match="channel axis"):
        augment(np.zeros((2, H, W), "float32"), seed())


def test_no_crop_and_no_affine_is_the_identity():
    x = np.random.default_rng(0).uniform(size=(4, H, W, 3)).astype("float32")
    out = crop_and_affine(x, seed(), AugmentConfig(**NONE))
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_random_resized_crop_samples_an_axis_aligned_region_of_the_source():
    config = AugmentConfig(**{**NONE, "crop_probability": 1.0}, crop_scale=(0.3, 0.5))
    views = crop_and_affine(coordinates(32), seed(), config).numpy()
    areas, ratios = [], []
    for view in views:
        (sx, shear_x, ox), (shear_y, sy, oy) = sampling_map(view)
        assert abs(shear_x) < 1e-3 and abs(shear_y) < 1e-3  # no rotation
        # Output pixel j samples the input at sx * j + ox: a crop sx * W wide from column ox.
        assert 0.3 - 1e-3 <= sx * sy <= 0.5 + 1e-3  # the crop's share of the image area
        assert 0.75 - 1e-3 <= (sx * W) / (sy * H) <= 4 / 3 + 1e-3  # its aspect ratio
        assert ox >= -1e-3 and oy >= -1e-3 and ox + sx * W <= W + 1e-3 and oy + sy * H <= H + 1e-3
        areas.append(sx * sy)
        ratios.append(sx / sy)
    assert np.std(areas) > 0.02 and np.std(ratios) > 0.05  # every image draws its own crop


def test_rotation_and_shift_stay_within_their_bounds():
    config = AugmentConfig(
        **{**NONE, "affine_probability": 1.0}, max_rotation=15.0, max_translation=0.1
    )
    views = crop_and_affine(coordinates(32), seed(), config).numpy()
    centre = np.array([(W - 1) / 2, (H - 1) / 2])
    angles = []
    for view in views:
        matrix = sampling_map(view)
        rotation, offset = matrix[:, :2], matrix[:, 2]
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(2), atol=2e-3)  # a pure rotation
        angle = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
        # ... about the centre, then shifted: input = R (output - c) + c + t.
        shift = offset - (centre - rotation @ centre)
        assert abs(angle) <= 15.0 + 0.1
        assert abs(shift[0]) <= 0.1 * W + 1e-2 and abs(shift[1]) <= 0.1 * H + 1e-2
        angles.append(angle)
    assert max(np.abs(angles)) > 10.0 and np.std(angles) > 3.0  # drawn over the whole range


def test_crop_then_rotation_is_one_resampling_with_the_crops_area():
    """The default view: the sampling matrix is S R (rows of lengths sx and sy, orthogonal)."""
    views = crop_and_affine(coordinates(32), seed(3, 4), AugmentConfig()).numpy()
    for view in views:
        rows = sampling_map(view)[:, :2]
        sx, sy = np.linalg.norm(rows, axis=1)
        assert abs(rows[0] @ rows[1]) < 2e-3 * sx * sy
        assert 0.4 - 1e-3 <= sx * sy <= 1.0 + 1e-3


def test_probabilities_choose_whole_images():
    config = AugmentConfig(**{**NONE, "crop_probability": 0.5})
    views = crop_and_affine(coordinates(64), seed(), config).numpy()
    identity = [np.allclose(sampling_map(v), [[1, 0, 0], [0, 1, 0]], atol=1e-4) for v in views]
    assert 16 <= sum(identity) <= 48  # about half of the 64
    for function in (gaussian_noise, gaussian_blur, random_erasing):
        x = np.full((64, H, W, 1), 0.5, "float32")
        out = function(x, seed(), probability=0.5).numpy()
        unchanged = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
        assert 16 <= sum(unchanged) <= 48, function.__name__
        np.testing.assert_array_equal(function(x, seed(), probability=0.0), x)


def test_gaussian_noise_has_the_asked_deviation_and_stays_in_range():
    grey = np.full((8, H, W, 1), 0.5, "float32")
    noise = gaussian_noise(grey, seed(), probability=1.0, stddev=0.1).numpy() - 0.5
    assert abs(noise.std() - 0.1) < 0.005 and abs(noise.mean()) < 0.005
    assert not np.allclose(noise[0], noise[1])  # each image its own noise
    black = np.zeros((8, H, W, 1), "float32")
    black = gaussian_noise(black, seed(), probability=1.0, stddev=0.5).numpy()
    assert black.min() == 0.0 and black.max() <= 1.0
    assert 0.4 < np.mean(black == 0.0) < 0.6  # the negative half is clipped to 0


def gaussian_kernel(sigma: float, radius: int = 2) -> np.ndarray:
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def test_gaussian_blur_spreads_a_point_into_the_normalised_gaussian_of_its_sigma():
    batch, channels, c = 4, 2, H // 2
    points = np.zeros((batch, H, W, channels), "float32")
    points[:, c, c, 0] = 1.0
    points[:, c, c, 1] = 0.5
    out = gaussian_blur(points, seed(), probability=1.0, sigma=(0.5, 1.5)).numpy()
    sigmas = []
    for image in out:
        # Each image's sigma, read from the kernel's first tap: k(1) / k(0) = exp(-1 / (2 sigma^2)).
        sigma = math.sqrt(-0.5 / math.log(image[c, c + 1, 0] / image[c, c, 0]))
        assert 0.5 - 1e-3 <= sigma <= 1.5 + 1e-3
        kernel = np.outer(gaussian_kernel(sigma), gaussian_kernel(sigma))
        for channel, height in enumerate((1.0, 0.5)):  # both channels of an image share it
            expected = np.zeros((H, W))
            expected[c - 2 : c + 3, c - 2 : c + 3] = height * kernel
            np.testing.assert_allclose(image[..., channel], expected, atol=1e-5)
        sigmas.append(sigma)
    assert np.std(sigmas) > 0.05  # every image draws its own sigma
    flat = gaussian_blur(np.full((2, H, W, 1), 0.7, "float32"), seed(), probability=1.0).numpy()
    np.testing.assert_allclose(flat[:, 2:-2, 2:-2], 0.7, atol=1e-6)  # the kernel sums to one


def test_random_erasing_sets_one_rectangle_of_the_asked_area():
    ones = np.ones((32, H, W, 1), "float32")
    out = random_erasing(
        ones, seed(), probability=1.0, scale=(0.1, 0.2), ratio=(0.5, 2.0), value=0.25
    ).numpy()[..., 0]
    for image in out:
        erased = image == 0.25
        assert np.all(image[~erased] == 1.0)
        rows, cols = np.flatnonzero(erased.any(1)), np.flatnonzero(erased.any(0))
        # One full rectangle, whose pixel count is its drawn area up to the pixels it straddles.
        assert erased.sum() == len(rows) * len(cols)
        assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1))
        assert np.array_equal(cols, np.arange(cols[0], cols[-1] + 1))
        slack = len(rows) + len(cols) + 1
        assert 0.1 * H * W - slack <= erased.sum() <= 0.2 * H * W + slack


@pytest.mark.parametrize(
    "function",
    [
        lambda x, s: crop_and_affine(x, s),
        lambda x, s: gaussian_noise(x, s, probability=1.0),
        lambda x, s: gaussian_blur(x, s, probability=1.0),
        lambda x, s: random_erasing(x, s, probability=1.0),
        augment,
    ],
    ids=["crop_and_affine", "gaussian_noise", "gaussian_blur", "random_erasing", "augment"],
)
def test_the_same_seed_gives_the_same_view_and_another_seed_another(function):
    x = np.random.default_rng(0).uniform(size=(8, H, W, 1)).astype("float32")
    first = function(x, seed(5, 6)).numpy()
    np.testing.assert_array_equal(first, function(x, seed(5, 6)).numpy())
    assert not np.allclose(first, function(x, seed(5, 7)).numpy())
    assert first.shape == x.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0  # images in [0, 1] stay in [0, 1]


def test_two_views_of_the_same_image_differ():
    same = np.repeat(np.random.default_rng(0).uniform(size=(1, H, W, 1)).astype("float32"), 4, 0)
    a, b = (v.numpy() for v in two_views(same, seed()))
    assert not np.allclose(a, b)
    assert not np.allclose(a[0], a[1])  # every image of the batch is augmented on its own
    again = two_views(same, seed())
    np.testing.assert_array_equal(a, again[0])
    np.testing.assert_array_equal(b, again[1])


def test_two_view_dataset_scales_pairs_and_seeds_batch_i_with_seed_and_i():
    images = (np.random.default_rng(0).uniform(size=(40, H, W)) * 255).astype("uint8")
    scaled = images[..., None] / 255.0

    # Without augmentation both views are the scaled image; a shuffled epoch is a permutation
    # of the images (the last partial batch dropped).
    def plain_views():
        dataset = two_view_dataset(images, batch_size=16, config=AugmentConfig(**NONE), seed=3)
        return list(dataset.as_numpy_iterator())

    plain = plain_views()
    assert [a.shape for a, _ in plain] == [(16, H, W, 1)] * 2
    seen = np.concatenate([a for a, _ in plain])
    for a, b in plain:
        np.testing.assert_array_equal(a, b)
    index = [int(np.argmin(np.abs(scaled - view).reshape(40, -1).max(1))) for view in seen]
    np.testing.assert_allclose(seen, scaled[index], atol=1e-6)
    assert len(set(index)) == 32 and index != list(range(32))
    np.testing.assert_array_equal(seen, np.concatenate([a for a, _ in plain_views()]))
    # Augmented, unshuffled: batch i is `two_views` of the scaled batch with the seed (seed, i).
    dataset = two_view_dataset(images, batch_size=16, seed=3, shuffle=False)
    batches = list(dataset.as_numpy_iterator())
    for i, (a, b) in enumerate(batches):
        batch = tf.constant(scaled[16 * i : 16 * (i + 1)], tf.float32)
        want_a, want_b = two_views(batch, seed(3, i))
        np.testing.assert_allclose(a, want_a, atol=1e-5)
        np.testing.assert_allclose(b, want_b, atol=1e-5)
    assert not np.allclose(batches[0][0], scaled[:16])


def test_example_views_are_the_first_images_and_two_views_of_them():
    images = (np.random.default_rng(0).uniform(size=(10, H, W)) * 255).astype("uint8")
    originals, a, b = example_views(images, n=4, seed=2)
    np.testing.assert_allclose(originals, images[:4, ..., None] / 255.0, atol=1e-6)
    want_a, want_b = two_views(tf.constant(originals), seed(2, 0))
    np.testing.assert_allclose(a, want_a, atol=1e-5)
    np.testing.assert_allclose(b, want_b, atol=1e-5)
