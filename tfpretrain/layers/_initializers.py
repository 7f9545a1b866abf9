"""One initializer per weight."""

from __future__ import annotations

import keras


def clone_initializer(initializer) -> keras.initializers.Initializer:
    """A copy of a Keras initializer (or its name or config) for one more weight.

    A Keras 3 random initializer created without a seed picks one when it is created, so one
    instance used for several weights of the same shape gives them all the same values (equal
    query, key and value kernels; position embeddings equal to the first token embeddings).
    Each weight gets its own copy, as `keras.layers.MultiHeadAttention` does for its sublayers;
    a copy of an explicitly seeded initializer keeps that seed.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())
