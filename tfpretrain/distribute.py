"""Choosing a `tf.distribute` strategy and the numeric precision for a run."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _tpu_resolver():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        resolver.master()  # raises when no TPU is reachable
        return resolver
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        return None


def _has_cluster() -> bool:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from err
    return bool(config.get("cluster", {}).get("worker"))


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy for `name`.

    `auto` picks a TPU when a TPU cluster resolver finds one, `MultiWorkerMirroredStrategy`
    when `TF_CONFIG` describes workers, `MirroredStrategy` with more than one GPU, and the
    default (single-device) strategy otherwise.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name == "auto":
        if _tpu_resolver() is not None:
            name = "tpu"
        elif _has_cluster():
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not _has_cluster():
            raise ValueError("The multiworker strategy needs TF_CONFIG describing the cluster's workers.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = _tpu_resolver()
    if resolver is None:
        raise ValueError("No TPU was found by TPUClusterResolver; use --strategy auto or default.")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def set_precision(precision: str = "fp32") -> str:
    """Sets Keras' global dtype policy from `fp32`, `bf16` or `fp16`; returns the policy name."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    return PRECISIONS[precision]
