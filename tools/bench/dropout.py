"""Dropout under XLA: `keras.layers.Dropout` against `tfpretrain.layers.Dropout`, one process.

Times one training-mode call on a `[32, 4, 128, 128]` tensor (BERT `mini`'s attention
probabilities at batch 32 x 128) in a TensorFlow function compiled with XLA and in one without,
best of a few repeats, and a plain `x * 2` of the same size as the floor. Prints one JSON line
per measurement:

    python tools/bench/dropout.py [--shape 32 4 128 128] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", type=int, nargs="+", default=[32, 4, 128, 128])
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from tfpretrain.layers import Dropout

    x = tf.random.normal(args.shape, seed=0)
    layers = {
        "keras.layers.Dropout": keras.layers.Dropout(args.rate),
        "tfpretrain.layers.Dropout": Dropout(args.rate),
        "floor: x * 2": None,
    }
    for xla in (True, False):
        for name, layer in layers.items():
            body = (
                (lambda v: v * 2.0)
                if layer is None
                else (lambda v, layer=layer: layer(v, training=True))
            )
            step = tf.function(lambda v, body=body: tf.reduce_sum(body(v)), jit_compile=xla)
            step(x).numpy()  # trace and compile
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                step(x).numpy()
                times.append(time.perf_counter() - start)
            print(
                json.dumps(
                    {
                        "layer": name,
                        "xla": xla,
                        "shape": args.shape,
                        "best_ms": round(min(times) * 1e3, 2),
                    }
                )
            )


if __name__ == "__main__":
    main()
