"""Activations by name: `get_activation` and `serialize_activation` for the layers' configs.

"gelu" is the exact GELU written with `erf`. TensorFlow writes it with `erfc`, which XLA's CPU
code expands into a long chain of operations with divisions; the `erf` form is the same
function, compiled to one rational approximation, and is cheaper under XLA on CPU
(see BENCHMARKS.md).
"""

from __future__ import annotations

import math

import keras
from keras import ops

_SQRT_HALF = 1.0 / math.sqrt(2.0)


@keras.saving.register_keras_serializable(package="tfpretrain")
def gelu(x):
    """Exact GELU (Hendrycks & Gimpel, 2016): `x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))`.

    Example:

    >>> float(gelu(keras.ops.convert_to_tensor(1.0)))  # doctest: +ELLIPSIS
    0.841...
    """
    return 0.5 * x * (1.0 + ops.erf(x * ops.cast(_SQRT_HALF, x.dtype)))


@keras.saving.register_keras_serializable(package="tfpretrain")
def gelu_approximate(x):
    """GELU's tanh approximation (GPT-2, `hidden_act="gelu_new"` in BERT checkpoints)."""
    return keras.activations.gelu(x, approximate=True)


_NAMED = {"gelu": gelu, "gelu_approximate": gelu_approximate}


def get_activation(identifier):
    """`keras.activations.get`, with "gelu" and "gelu_approximate" resolved to the functions
    above."""
    if isinstance(identifier, str) and identifier in _NAMED:
        return _NAMED[identifier]
    return keras.activations.get(identifier)


def serialize_activation(activation):
    """The name `get_activation` takes back: "gelu" for `gelu`, else Keras' serialization."""
    for name, fn in _NAMED.items():
        if activation is fn:
            return name
    return keras.activations.serialize(activation)
