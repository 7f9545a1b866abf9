"""Image augmentations for contrastive pre-training, vectorised over a batch and seeded statelessly.

Every function takes a float32 batch `[B, H, W, C]` in [0, 1] and a `seed` (an int32/int64
tensor of shape `[2]`, as `tf.random.stateless_*` expect) and draws one independent random
setting per image, so a whole batch is transformed by a handful of batched ops. The same seed
gives the same output, which makes pipelines reproducible.

Example:

>>> images = tf.zeros((8, 28, 28, 1))
>>> view_a, view_b = two_views(images, seed=tf.constant([0, 1]))
>>> view_a.shape
TensorShape([8, 28, 28, 1])
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tfpretrain.data.pipeline import AUTOTUNE, as_image_array, scale_images


@dataclasses.dataclass
class AugmentConfig:
    """Strengths and probabilities of the two-view augmentation pipeline (defaults suit 28x28
    digits).

    Attributes:
        crop_probability: chance of a random resized crop.
        crop_scale: range of the crop's area as a fraction of the image.
        crop_ratio: range of the crop's aspect ratio (width / height).
        affine_probability: chance of a random rotation and translation.
        max_rotation: largest rotation in degrees (drawn uniformly in +-max_rotation).
        max_translation: largest shift as a fraction of the image size.
        noise_probability: chance of additive Gaussian noise.
        noise_stddev: standard deviation of the noise.
        blur_probability: chance of a Gaussian blur.
        blur_sigma: range of the blur's standard deviation in pixels.
        erase_probability: chance of erasing (zeroing) a random rectangle.
        erase_scale: range of the erased area as a fraction of the image.
    """

    crop_probability: float = 1.0
    crop_scale: tuple[float, float] = (0.4, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 4.0 / 3.0)
    affine_probability: float = 0.8
    max_rotation: float = 15.0
    max_translation: float = 0.1
    noise_probability: float = 0.5
    noise_stddev: float = 0.1
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    erase_probability: float = 0.3
    erase_scale: tuple[float, float] = (0.02, 0.15)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name.endswith("probability"):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"`{f.name}` must be in [0, 1]; got {value}.")
        for name in ("crop_scale", "crop_ratio", "blur_sigma", "erase_scale"):
            low, high = getattr(self, name)
            if not 0.0 < low <= high:
                raise ValueError(
                    f"`{name}` must be a range (low, high) with 0 < low <= high; got {(low, high)}."
                )
        if self.crop_scale[1] > 1.0 or self.erase_scale[1] > 1.0:
            raise ValueError(
                "`crop_scale` and `erase_scale` are fractions of the image area: at most 1."
            )
        if self.max_rotation < 0 or self.max_translation < 0 or self.noise_stddev < 0:
            raise ValueError("`max_rotation`, `max_translation` and `noise_stddev` must be >= 0.")


def _check_batch(images) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(
            f"Augmentations expect a batch of images [batch, height, width, channels]; got shape "
            f"{images.shape}. Add a channel axis (x[..., None]) or batch the data first."
        )
    return tf.cast(images, tf.float32)


def _seeds(seed, n: int) -> list[tf.Tensor]:
    """`n` independent stateless seeds derived from one."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=n)))


def _chosen(batch: tf.Tensor, probability: float, seed) -> tf.Tensor:
    """A `[B]` boolean mask, each image chosen with `probability`."""
    return tf.random.stateless_uniform([batch], seed=seed) < probability


def _uniform(batch, low, high, seed) -> tf.Tensor:
    return tf.random.stateless_uniform([batch], seed=seed, minval=low, maxval=high)


def _crop_size(batch, scale, ratio, seeds, height, width):
    """Random crop heights/widths (in pixels, as floats) of a random area fraction and aspect
    ratio."""
    area = _uniform(batch, scale[0], scale[1], seeds[0])
    log_ratio = _uniform(batch, math.log(ratio[0]), math.log(ratio[1]), seeds[1])
    aspect = tf.exp(log_ratio)
    crop_w = tf.minimum(tf.sqrt(area * aspect) * width, width)
    crop_h = tf.minimum(tf.sqrt(area / aspect) * height, height)
    return crop_h, crop_w


def _transform(images, matrices) -> tf.Tensor:
    """Resamples each image with its own output->input affine map `[B, 8]` (bilinear, zero fill)."""
    shape = tf.shape(images)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrices,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def crop_and_affine(images, seed, config: AugmentConfig | None = None) -> tf.Tensor:
    """Random resized crop, then a small rotation and translation, as ONE resampling per image.

    Both transforms map output pixels to input pixels, so they compose into one affine matrix
    and the image is interpolated once (sharper than two resamplings and twice as fast).
    Images that are not chosen for a transform get its identity.
    """
    config = config or AugmentConfig()
    images = _check_batch(images)
    batch = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    s = _seeds(seed, 8)

    crop_h, crop_w = _crop_size(batch, config.crop_scale, config.crop_ratio, s[0:2], height, width)
    offset_y = _uniform(batch, 0.0, 1.0, s[2]) * (height - crop_h)
    offset_x = _uniform(batch, 0.0, 1.0, s[3]) * (width - crop_w)
    do_crop = _chosen(batch, config.crop_probability, s[4])
    scale_x = tf.where(do_crop, crop_w / width, 1.0)
    scale_y = tf.where(do_crop, crop_h / height, 1.0)
    offset_x = tf.where(do_crop, offset_x, 0.0)
    offset_y = tf.where(do_crop, offset_y, 0.0)

    do_affine = _chosen(batch, config.affine_probability, s[5])
    angle = tf.random.stateless_uniform([batch], seed=s[6], minval=-1.0, maxval=1.0)
    angle = tf.where(do_affine, angle * config.max_rotation * math.pi / 180.0, 0.0)
    shift = tf.random.stateless_uniform([batch, 2], seed=s[7], minval=-1.0, maxval=1.0)
    shift = tf.where(do_affine[:, None], shift * config.max_translation, 0.0)
    shift_x, shift_y = shift[:, 0] * width, shift[:, 1] * height

    # Rotation about the centre plus shift in the crop's frame: p_crop = R (p - c) + c + t,
    # then the crop's frame to the input: p_in = S p_crop + o.
    # Combined A = S R, b = S (c - R c + t) + o.
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    bx = cx - (cos * cx - sin * cy) + shift_x
    by = cy - (sin * cx + cos * cy) + shift_y
    zeros = tf.zeros_like(angle)
    matrices = tf.stack(
        [
            scale_x * cos,
            -scale_x * sin,
            scale_x * bx + offset_x,
            scale_y * sin,
            scale_y * cos,
            scale_y * by + offset_y,
            zeros,
            zeros,
        ],
        axis=1,
    )
    return _transform(images, matrices)


def gaussian_noise(images, seed, probability: float = 0.5, stddev: float = 0.1) -> tf.Tensor:
    """Adds N(0, stddev^2) noise to the chosen images and clips to [0, 1]."""
    images = _check_batch(images)
    s = _seeds(seed, 2)
    chosen = _chosen(tf.shape(images)[0], probability, s[0])
    noisy = tf.clip_by_value(
        images + stddev * tf.random.stateless_normal(tf.shape(images), seed=s[1]), 0.0, 1.0
    )
    return tf.where(chosen[:, None, None, None], noisy, images)


def gaussian_blur(
    images, seed, probability: float = 0.5, sigma=(0.1, 1.0), radius: int = 2
) -> tf.Tensor:
    """Blurs each chosen image with a Gaussian of its own random sigma (separable, 2*radius+1 taps).

    The batch is folded into the channel axis so that one depthwise convolution applies a
    different kernel to every image.
    """
    images = _check_batch(images)
    s = _seeds(seed, 2)
    batch = tf.shape(images)[0]
    channels = tf.shape(images)[3]
    sigmas = _uniform(batch, sigma[0], sigma[1], s[0])
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernels = tf.exp(-0.5 * tf.square(taps[None, :] / sigmas[:, None]))
    kernels = kernels / tf.reduce_sum(kernels, axis=1, keepdims=True)  # [B, K]
    kernels = tf.repeat(kernels, channels, axis=0)  # [B*C, K], image-major like the folded channels
    shape = tf.shape(images)
    folded = tf.reshape(
        tf.transpose(images, [1, 2, 0, 3]), [1, shape[1], shape[2], -1]
    )  # [1, H, W, B*C]
    horizontal = tf.transpose(kernels)[None, :, :, None]  # [1, K, B*C, 1]
    vertical = tf.transpose(kernels)[:, None, :, None]  # [K, 1, B*C, 1]
    blurred = tf.nn.depthwise_conv2d(folded, horizontal, [1, 1, 1, 1], "SAME")
    blurred = tf.nn.depthwise_conv2d(blurred, vertical, [1, 1, 1, 1], "SAME")
    blurred = tf.transpose(tf.reshape(blurred, [shape[1], shape[2], batch, channels]), [2, 0, 1, 3])
    chosen = _chosen(batch, probability, s[1])
    return tf.where(chosen[:, None, None, None], blurred, images)


def random_erasing(
    images, seed, probability: float = 0.3, scale=(0.02, 0.15), ratio=(0.3, 3.3), value: float = 0.0
) -> tf.Tensor:
    """Sets a random rectangle of each chosen image to `value` (Zhong et al., 2017)."""
    images = _check_batch(images)
    s = _seeds(seed, 5)
    shape = tf.shape(images)
    batch = shape[0]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    box_h, box_w = _crop_size(batch, scale, ratio, s[0:2], height, width)
    top = _uniform(batch, 0.0, 1.0, s[2]) * (height - box_h)
    left = _uniform(batch, 0.0, 1.0, s[3]) * (width - box_w)
    rows = tf.range(shape[1], dtype=tf.float32)[None, :, None]
    cols = tf.range(shape[2], dtype=tf.float32)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + box_h)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + box_w)[:, None, None])
    )
    inside = inside & _chosen(batch, probability, s[4])[:, None, None]
    return tf.where(inside[..., None], tf.cast(value, images.dtype), images)


def augment(images, seed, config: AugmentConfig | None = None) -> tf.Tensor:
    """One random view of each image: crop + rotation/translation, blur, noise, erasing."""
    config = config or AugmentConfig()
    s = _seeds(seed, 4)
    x = crop_and_affine(images, s[0], config)
    x = gaussian_blur(x, s[1], config.blur_probability, config.blur_sigma)
    x = gaussian_noise(x, s[2], config.noise_probability, config.noise_stddev)
    return random_erasing(x, s[3], config.erase_probability, config.erase_scale)


def two_views(images, seed, config: AugmentConfig | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Two independently augmented views of each image (SimCLR's positive pairs)."""
    s = _seeds(seed, 2)
    return augment(images, s[0], config), augment(images, s[1], config)


def two_view_dataset(
    images,
    *,
    batch_size: int = 256,
    config: AugmentConfig | None = None,
    seed: int = 0,
    shuffle: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of `(view_a, view_b)` pairs for contrastive training.

    Raw pixels are cached, shuffled and batched first; scaling and augmentation then run once
    per batch (vectorised) in parallel `map` calls. Batch `i` of the stream is augmented with
    the seed `(seed, i)`, so the views are reproducible. Partial batches are dropped: every
    batch must have the same size to be split across replicas and to contain negatives.

    Args:
        images: `[N, H, W]` or `[N, H, W, C]` uint8 or float array.
        batch_size: pairs per batch (the global batch under a distribution strategy), >= 2.
        config: augmentation settings.
        seed: seed of the shuffle and of the augmentations.
        shuffle: reshuffle every epoch.
        repeat: repeat forever.
    """
    images = as_image_array(images)
    if batch_size < 2:
        raise ValueError(
            f"Contrastive training needs at least 2 images per batch (the other images are the "
            f"negatives); got batch_size={batch_size}."
        )
    if images.shape[0] < batch_size:
        raise ValueError(
            f"Only {images.shape[0]} images for a batch size of {batch_size}; lower the batch size."
        )
    config = config or AugmentConfig()
    ds = tf.data.Dataset.from_tensor_slices(images).cache()
    if shuffle:
        ds = ds.shuffle(images.shape[0], seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True).enumerate()

    def views(index, batch):
        return two_views(scale_images(batch), tf.stack([tf.cast(seed, tf.int64), index]), config)

    return ds.map(views, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def example_views(
    images, n: int = 8, seed: int = 0, config: AugmentConfig | None = None
) -> tuple[np.ndarray, ...]:
    """`(originals, view_a, view_b)` of the first `n` images, as NumPy arrays for plotting."""
    x = scale_images(as_image_array(images)[:n])
    a, b = two_views(x, tf.constant([seed, 0]), config)
    return x.numpy(), a.numpy(), b.numpy()
