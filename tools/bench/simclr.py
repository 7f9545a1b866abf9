r"""Images per second of SimCLR pre-training and the share of step time spent waiting for input.

Three timings on the same model, batch and machine (after one warm-up execution each):

1. the augmentation pipeline alone (`two_view_dataset` iterated without a model),
2. `model.fit` fed by the real pipeline (what `tfpretrain simclr` does),
3. `model.fit` fed by a few pre-computed view batches held in memory (no input cost).

The input-wait share is `(t2 - t3) / t2`: the time training spends beyond pure computation. It
must stay under 10% for the pipeline not to be the bottleneck. One compiled model runs both
feeds, alternating for `--rounds` rounds, and each feed's median is kept: a single timing of
each on a shared 2-core machine varies by more than the difference being measured.

    python tools/bench/simclr.py [--steps 32] [--rounds 3] [--batch-size 256] \
        [--preset mnist] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI does
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=32, help="training steps per timing")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings of each feed")
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per batch")
    parser.add_argument("--preset", default="mnist", help="SimCLR preset (encoder size)")
    parser.add_argument("--steps-per-execution", type=int, default=16)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table row")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from tfpretrain.data import mnist
    from tfpretrain.data.augment import two_view_dataset
    from tfpretrain.models.simclr import SimCLRConfig, build_simclr
    from tfpretrain.training.lars import LARS

    (x, _), _ = mnist()
    steps, batch = args.steps, args.batch_size
    views = two_view_dataset(x, batch_size=batch, seed=0, repeat=True)

    # 1. The pipeline alone.
    iterator = iter(views)
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    pipeline_seconds = time.perf_counter() - start

    keras.utils.set_random_seed(0)
    model = build_simclr(SimCLRConfig.preset(args.preset))
    model.compile(
        optimizer=LARS(0.3), jit_compile=True, steps_per_execution=args.steps_per_execution
    )

    def timed_fit(data) -> float:
        # Timed from the end of the first execution (batch-end callbacks run once per
        # execution): a new iterator refilling its shuffle buffer is a cost of restarting the
        # benchmark, not of training.
        times: list[float] = []
        clock = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: times.append(time.perf_counter())
        )
        model.fit(
            data,
            epochs=1,
            steps_per_epoch=steps + args.steps_per_execution,
            verbose=0,
            callbacks=[clock],
        )
        return times[-1] - times[0]

    # 2. Fed by the real pipeline; 3. fed from memory (a few view batches, repeated).
    cached = tf.data.Dataset.from_tensor_slices(
        tuple(tf.stack(t) for t in zip(*views.take(4), strict=True))
    )
    cached = cached.repeat().prefetch(tf.data.AUTOTUNE)
    for data in (views, cached):  # compile and warm up on both feeds
        model.fit(data, epochs=1, steps_per_epoch=args.steps_per_execution, verbose=0)
    timings = {"pipeline": [], "memory": []}
    for _ in range(args.rounds):
        timings["pipeline"].append(timed_fit(views))
        timings["memory"].append(timed_fit(cached))
    pipeline_fit, memory_fit = (statistics.median(timings[k]) for k in ("pipeline", "memory"))

    result = {
        "preset": args.preset,
        "batch_size": batch,
        "steps": steps,
        "cpu_threads": os.cpu_count(),
        "pipeline_images_per_second": 2 * batch * steps / pipeline_seconds,
        "train_images_per_second": batch * steps / pipeline_fit,
        "train_pairs_per_second_from_memory": batch * steps / memory_fit,
        "ms_per_step": 1000 * pipeline_fit / steps,
        "input_wait_share": max(0.0, (pipeline_fit - memory_fit) / pipeline_fit),
        "seconds_per_round": timings,
    }
    if args.markdown:
        print(
            "| preset | batch | images/s (pairs) | ms/step | views/s, pipeline alone | input wait |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        print(
            f"| {args.preset} | {batch} | {result['train_images_per_second']:.0f} | "
            f"{result['ms_per_step']:.0f} | {result['pipeline_images_per_second']:.0f} | "
            f"{100 * result['input_wait_share']:.1f}% |"
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
