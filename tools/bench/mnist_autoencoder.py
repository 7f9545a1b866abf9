"""Seconds per epoch of `tfpretrain autoencoder` against a plain Keras script of the same model.

Both train the dense 784-128-64-64-784 autoencoder (Adam, binary cross-entropy, batch 256) on
55,000 MNIST images with 5,000 held out for validation, each in its own fresh process, alternated
round by round so that both see the same machine load. The first epoch (tracing and compilation)
is excluded. Each pair runs with TensorFlow's oneDNN ops off and on, because TensorFlow enables
them by default on some CPUs only.

    python tools/bench/mnist_autoencoder.py [--epochs 6] [--rounds 2] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The plain Keras script: what a user writes from the keras.io example, run with Keras' defaults
# (NumPy arrays into model.fit, no XLA request, which Keras resolves to off on a CPU).
PLAIN_KERAS = r"""
import json, sys, time
import keras, numpy as np
from tfpretrain.data import mnist

epochs = int(sys.argv[1])
(x, _), _ = mnist()
x = x.reshape(-1, 784).astype("float32") / 255.0
x_fit, x_val = x[:-5000], x[-5000:]
inputs = keras.Input((784,))
h = keras.layers.Dense(128, activation="relu")(inputs)
h = keras.layers.Dense(64, activation="relu")(h)
h = keras.layers.Dense(64, activation="relu")(h)
outputs = keras.layers.Dense(784, activation="sigmoid")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="binary_crossentropy")

class Timer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        seconds.append(time.perf_counter() - self.start)

seconds = []
model.fit(x_fit, x_fit, epochs=epochs, batch_size=256, shuffle=True,
          validation_data=(x_val, x_val), callbacks=[Timer()], verbose=0)
print(json.dumps({"seconds_per_epoch_after_first": sum(seconds[1:]) / len(seconds[1:])}))
"""


def run_tfpretrain(epochs: int, env: dict) -> float:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tfpretrain.cli.main",
                "autoencoder",
                "--epochs",
                str(epochs),
                "--out",
                out,
            ],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        return json.loads((Path(out) / "metrics.json").read_text())["seconds_per_epoch_after_first"]


def run_plain(epochs: int, env: dict) -> float:
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_KERAS, str(epochs)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds_per_epoch_after_first"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--epochs", type=int, default=6, help="epochs per run (the first is not timed)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per setting")
    parser.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md table")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")

    rows = []
    for onednn in ("0", "1"):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
        times: dict[str, list[float]] = {"tfpretrain": [], "plain keras": []}
        for _ in range(args.rounds):
            times["tfpretrain"].append(run_tfpretrain(args.epochs, env))
            times["plain keras"].append(run_plain(args.epochs, env))
        ours, plain = (statistics.median(times[k]) for k in ("tfpretrain", "plain keras"))
        rows.append((onednn, ours, plain, ours / plain))
        print(
            f"oneDNN={onednn}: tfpretrain {ours:.3f} s/epoch {times['tfpretrain']}, "
            f"plain Keras {plain:.3f} s/epoch {times['plain keras']}, ratio {ours / plain:.2f}",
            flush=True,
        )

    best_plain = min(r[2] for r in rows)
    cli_default = rows[1][1]  # the CLI turns oneDNN on unless TF_ENABLE_ONEDNN_OPTS is set
    print(
        "tfpretrain CLI default (oneDNN on) vs plain Keras at its best: ratio "
        f"{cli_default / best_plain:.2f}"
    )
    if args.markdown:
        print("\n| TF_ENABLE_ONEDNN_OPTS | tfpretrain s/epoch | plain Keras s/epoch | ratio |")
        print("|---|---|---|---|")
        for onednn, ours, plain, ratio in rows:
            print(f"| {onednn} | {ours:.3f} | {plain:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
