"""Steps per second of the causal LM with XLA on vs off, on one device vs MirroredStrategy.

Everything runs in one process that first splits the CPU into 2 logical devices (or uses the
GPUs when there are several), so the four runs share one set-up:

    python tools/bench/distribute.py                      # GPT `nano`, global batch 32
    python tools/bench/distribute.py --preset shakespeare --precision bf16 --batch-size 64

Each run trains the model through `tfpretrain.training.fit` (the path every command uses:
under the strategy with XLA that is the per-replica XLA step of `tfpretrain.training.xla`) on
random tokens, and times `--steps` steps after `--warmup` steps (compilation excluded). The
global batch is the same for both strategies (split across the replicas under Mirrored). It
prints one line per run and, at the end, JSON with the XLA speed-ups and their ratio
(`xla_speedup_kept` = Mirrored's XLA speed-up / single-device XLA speed-up; the target is >= 0.9).
With a GPU it also reports tokens per second and model FLOP utilisation (6 × parameters ×
tokens per second over `--peak-tflops`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", default="nano", help="GPT preset (nano, shakespeare, gpt2-small)"
    )
    parser.add_argument(
        "--vocabulary-size", type=int, default=65, help="65 = Tiny Shakespeare characters"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="global batch")
    parser.add_argument("--sequence-length", type=int, default=None, help="default: the preset's")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--cpus", type=int, default=2, help="logical CPU devices when there is no GPU"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the accelerator's peak TFLOP/s at --precision, for model FLOP utilisation",
    )
    parser.add_argument(
        "--runs",
        default="single:off,single:on,mirrored:off,mirrored:on",
        help="comma-separated strategy:xla pairs to run",
    )
    args = parser.parse_args()

    import tensorflow as tf

    from tfpretrain.distribute import set_logical_cpus, set_precision

    if not tf.config.list_physical_devices("GPU"):
        set_logical_cpus(args.cpus)
    import keras
    import numpy as np

    from tfpretrain.distribute import get_strategy
    from tfpretrain.models.gpt import GPTConfig, build_gpt
    from tfpretrain.training import fit

    set_precision(args.precision)
    config = GPTConfig.preset(
        args.preset, vocabulary_size=args.vocabulary_size, sequence_length=args.sequence_length
    )
    length = config.sequence_length
    rng = np.random.default_rng(0)
    tokens = rng.integers(
        0, config.vocabulary_size, size=(args.batch_size * 8, length + 1), dtype=np.int32
    )
    data = (
        tf.data.Dataset.from_tensor_slices((tokens[:, :-1], tokens[:, 1:]))
        .repeat()
        .batch(args.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

    results = {}
    for run in args.runs.split(","):
        strategy_name, xla = run.split(":")
        strategy = get_strategy("mirrored" if strategy_name == "mirrored" else "default")
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build_gpt(config)
            model.compile(
                keras.optimizers.AdamW(3e-4),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=xla == "on",
                steps_per_execution=1,
            )
        timer = Timer()
        fit(
            model,
            data,
            epochs=1,
            steps_per_epoch=args.warmup + args.steps,
            callbacks=[timer],
            verbose=0,
        )
        seconds = timer.times[-1] - timer.times[args.warmup - 1]
        steps_per_second = args.steps / seconds
        tokens_per_second = steps_per_second * args.batch_size * length
        entry = {
            "steps_per_second": steps_per_second,
            "tokens_per_second": tokens_per_second,
            "replicas": strategy.num_replicas_in_sync,
        }
        if args.peak_tflops:
            entry["mfu"] = 6 * model.count_params() * tokens_per_second / (args.peak_tflops * 1e12)
        results[run] = entry
        print(
            f"{run:14s} replicas={entry['replicas']} {steps_per_second:7.2f} steps/s "
            f"{tokens_per_second:10.0f} tokens/s"
            + (f" MFU {entry['mfu']:.1%}" if "mfu" in entry else ""),
            flush=True,
        )
        del model
        keras.backend.clear_session()

    summary = {
        "preset": args.preset,
        "precision": args.precision,
        "global_batch": args.batch_size,
        "sequence_length": length,
        "device": "GPU" if tf.config.list_physical_devices("GPU") else f"{args.cpus} logical CPUs",
        "runs": results,
    }
    if all(k in results for k in ("single:off", "single:on", "mirrored:off", "mirrored:on")):
        single = (
            results["single:on"]["steps_per_second"] / results["single:off"]["steps_per_second"]
        )
        mirrored = (
            results["mirrored:on"]["steps_per_second"] / results["mirrored:off"]["steps_per_second"]
        )
        summary.update(
            xla_speedup_single=single,
            xla_speedup_mirrored=mirrored,
            xla_speedup_kept=mirrored / single,
        )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
