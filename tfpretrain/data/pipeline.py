"""`tf.data` pipeline builders shared by the families: images, seed streams, streamed text."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def as_image_array(x, name: str = "images") -> np.ndarray:
    """Checks that `x` holds numeric images `[N, H, W]` or `[N, H, W, C]` and returns it as
    NumPy."""
    try:
        array = np.asarray(x)
    except Exception as err:
        raise TypeError(f"`{name}` cannot be converted to an array: {err}") from err
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(
            f"`{name}` must hold numbers (uint8 pixels or floats); got dtype {array.dtype}. "
            "Convert it first, e.g. np.asarray(x, dtype='float32')."
        )
    if array.ndim not in (3, 4) or array.shape[0] == 0:
        raise ValueError(
            f"`{name}` must have shape [N, height, width] or [N, height, width, channels] with "
            f"N > 0; got {array.shape}."
        )
    return array


def image_shape(images) -> tuple[int, int, int]:
    """`(height, width, channels)` of `[N, H, W]` (one channel) or `[N, H, W, C]` images: the
    input shape of a model for them."""
    images = as_image_array(images)
    return (*images.shape[1:3], images.shape[3] if images.ndim == 4 else 1)


def scale_images(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1] with a channel axis; float input is only given a channel
    axis."""
    images = tf.convert_to_tensor(images)
    if images.dtype.is_integer:
        images = tf.cast(images, tf.float32) / 255.0
    else:
        images = tf.cast(images, tf.float32)
    if images.shape.rank == 3:  # a batch of [H, W] images
        images = images[..., None]
    return images


def image_dataset(
    images,
    labels=None,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int | None = None,
    targets: str = "labels",
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Builds `images (, labels)` batches: scale to [0, 1], add channels, cache, shuffle, batch,
    prefetch.

    The raw uint8 array is cached and shuffled, and scaling runs once per batch (vectorised), so
    the pipeline stays far ahead of small models.

    Args:
        images: `[N, H, W]` or `[N, H, W, C]` uint8 or float array.
        labels: optional `[N]` integer labels.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch.
        seed: shuffle seed, for reproducible order.
        targets: `"labels"` yields `(images, labels)` (or images alone when there are no labels);
            `"images"` yields `(images, images)`, the autoencoder's reconstruction target.
        drop_remainder: drop the last partial batch.
        repeat: repeat forever (for step-based training).
    """
    images = as_image_array(images)
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be positive; got {batch_size}.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"`labels` must have shape ({images.shape[0]},) to match the images; "
                f"got {labels.shape}."
            )
    if targets not in ("labels", "images"):
        raise ValueError(f"`targets` must be 'labels' or 'images'; got {targets!r}.")

    ds = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(images.shape[0], seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def prepare(*batch):
        x = scale_images(batch[0])
        if targets == "images":
            return x, x
        return x if labels is None else (x, batch[1])

    return ds.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def seed_stream(seed: int | None, rerandomize_each_iteration: bool) -> tf.data.Dataset:
    """An endless data set of int64 `[2]` seeds for stateless draws inside a `tf.data` map.

    With `rerandomize_each_iteration`, every pass over the data (every epoch) gets new seeds;
    without it, every pass gets the same ones (held-out data that should not change).
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=rerandomize_each_iteration)
    return seeds.batch(2).map(lambda s: tf.cast(s % (2**31 - 1), tf.int64))


def shard_by_element(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with its multi-worker sharding set to elements, not files.

    A streamed corpus reads its files itself (one `TextLineDataset`, one TFDS reader); tf.data's
    automatic file sharding would hand a worker whole files, or refuse a single file among
    several workers. Sharding by element gives each worker its share of every batch, as for
    data held in memory.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
