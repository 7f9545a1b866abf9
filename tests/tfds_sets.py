"""TFDS data sets prepared offline in a temporary folder, with TFDS' own writer."""

from __future__ import annotations


def store_tfds(root, name, features, splits, config=None):
    """Prepares data set `name` (`config`) under `root` from in-memory `splits`, in that order.

    Args:
        root: the TFDS data directory (what `--data-dir` names).
        name: the data set's name, e.g. `tiny_shakespeare`.
        features: feature name -> `tfds.features` feature.
        splits: split name -> feature name -> values.
        config: the builder config's name, e.g. `plain_text`.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.dataset_builders.TfDataBuilder(
        name=name,
        config=config,
        version="1.0.0",
        features=tfds.features.FeaturesDict(features),
        split_datasets={k: tf.data.Dataset.from_tensor_slices(v) for k, v in splits.items()},
        data_dir=str(root),
        disable_shuffling=True,
    )
    builder.download_and_prepare()
