"""The benchmarks' clocks: a training step's time inside `fit`, and the machine's matmul peak.

The training clock runs from the first step's start to the last step's end.

Timing around a whole `model.fit` call also counts its set-up and tear-down, which on a 2-core
machine sometimes adds seconds (seen as rounds that all took the same power-of-two multiple of
10 ms whatever the model); a callback reads the clock inside the loop instead.
"""

from __future__ import annotations

import time


def timed_fit(model, data, steps: int) -> float:
    """Runs `model.fit(data)` for `steps` steps; returns the seconds the steps took."""
    import keras

    marks: list[float] = []
    clock = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: (
            marks.append(time.perf_counter()) if not marks else None
        ),
        # Keras turns the logs into floats before this runs, so the step has finished.
        on_train_batch_end=lambda batch, logs: marks.append(time.perf_counter()),
    )
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    return marks[-1] - marks[0]


def matmul_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` float32 `size`-square matrix products in a TF graph.

    The reference for model FLOP utilisation: what this machine's matmul kernels reach at a shape
    large enough to be bound by arithmetic (oneDNN's or Eigen's, as `TF_ENABLE_ONEDNN_OPTS` says).
    """
    import tensorflow as tf

    a = tf.random.normal((size, size))
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def machine() -> dict:
    """What a reading depends on: `tfpretrain.distribute.machine` (the CPU's model, vendor and ISA
    extensions, and whether TensorFlow's oneDNN ops are on in this process), the one
    implementation, which training runs record too. Imported when called, so that the peers
    that never call it (PyTorch, JAX) load no TensorFlow."""
    from tfpretrain.distribute import machine as describe

    return describe()
