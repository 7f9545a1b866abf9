"""Layer normalization choices shared by the blocks: classic LayerNorm or RMSNorm (T5, Llama)."""

from __future__ import annotations

import keras

NORMS = ("layer", "rms")

# Keras (>= 3.9) ships RMS normalization (Zhang & Sennrich, 2019):
# `x * rsqrt(mean(x^2) + eps) * scale`, computed in float32 under mixed precision, no mean
# subtraction and no bias, exactly T5's "LayerNorm". It is re-exported here so tfpretrain code
# has one name for it.
RMSNormalization = keras.layers.RMSNormalization


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS}; got {norm!r}.")
    return norm


def make_norm(
    norm: str, epsilon: float, dtype=None, name: str | None = None, center: bool = True
) -> keras.layers.Layer:
    """A normalization layer over the last axis.

    Args:
        norm: `"layer"` (`keras.layers.LayerNormalization`, mean and variance, scale and bias)
            or `"rms"` (`keras.layers.RMSNormalization`, root mean square, scale only).
        epsilon: added to the variance / mean square.
        dtype: the layer's dtype policy.
        name: the layer's name.
        center: whether a LayerNorm adds a learned bias (RMSNorm never does).

    Returns:
        A Keras layer.

    Example:

    >>> make_norm("rms", 1e-6)(keras.ops.ones((2, 3, 8))).shape
    TensorShape([2, 3, 8])
    """
    check_norm(norm)
    if norm == "rms":
        return RMSNormalization(epsilon=epsilon, dtype=dtype, name=name)
    return keras.layers.LayerNormalization(epsilon=epsilon, center=center, dtype=dtype, name=name)
