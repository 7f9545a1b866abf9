"""Data sets and `tf.data` pipelines."""

from tfpretrain.data.datasets import (
    DATA_DIR_ENV,
    CorruptDataError,
    DataNotFoundError,
    ImageDataset,
    data_dir,
    fashion_mnist,
    load_image_dataset,
    load_images,
    mnist,
    read_idx,
)
from tfpretrain.data.pipeline import as_image_array, image_dataset, image_shape, scale_images

__all__ = [
    "DATA_DIR_ENV",
    "CorruptDataError",
    "DataNotFoundError",
    "ImageDataset",
    "as_image_array",
    "data_dir",
    "fashion_mnist",
    "image_dataset",
    "image_shape",
    "load_image_dataset",
    "load_images",
    "mnist",
    "read_idx",
    "scale_images",
]
