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

`--parity` checks instead that the user's own data forms train as the built-in loader does:
Fashion-MNIST written out as a PNG class-folder tree and as a TFDS data set prepared locally
(under `--work`, kept for the next run) is loaded through `--dataset`, its arrays compared with
the built-in ones, and one short `tfpretrain simclr` run per form (same seed, steps and
`--limit-train` draw) gives its linear-probe accuracy; the folder's input wait is timed in a
loop, `next(iterator)` against the training step.

    python tools/bench/simclr.py --parity --preset tiny --limit-train 4096 --epochs 16 \
        [--work DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

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
    parity = parser.add_argument_group("--parity: the built-in loader against a folder and TFDS")
    parity.add_argument("--parity", action="store_true", help="run the parity check instead")
    parity.add_argument("--work", help="where the PNG tree, TFDS data and runs go (default: tmp)")
    parity.add_argument("--limit-train", type=int, default=4096, help="training images drawn")
    parity.add_argument("--epochs", type=int, default=16, help="SimCLR epochs of each run")
    parity.add_argument("--probe-epochs", type=int, default=30, help="linear-probe epochs")
    parity.add_argument("--seed", type=int, default=0)
    parity.add_argument("--wait-steps", type=int, default=48, help="steps of the input-wait loop")
    args = parser.parse_args()
    if args.parity:
        print(json.dumps(run_parity(args), indent=2))
        return

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


def _folder_name(label: int, name: str) -> str:
    """A class folder whose sorted place is its label: `00_T-shirt-top` (no `/` in a name)."""
    return f"{label:02d}_{name.replace('/', '-')}"


def export_png_tree(data, root: Path) -> Path:
    """Writes `data` as `root/{train,test}/<class folder>/<row>.png`, once.

    Files are named by their row in the built-in arrays, so reading a class folder in sorted
    order gives its images in the built-in order: a class-by-class draw (`--limit-train`) then
    picks the same images, in the same order, as from the built-in arrays.
    """
    from PIL import Image

    if (root / ".complete").is_file():
        return root
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        folders = [root / split / _folder_name(i, n) for i, n in enumerate(data.class_names)]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        for row, (image, label) in enumerate(zip(x, y, strict=True)):
            Image.fromarray(image).save(folders[label] / f"{row:05d}.png")
    (root / ".complete").write_text("")
    return root


def build_tfds(data, root: Path, name: str = "fashion_mnist_local") -> str:
    """Prepares `data` as the TFDS data set `name` under `root` (once), in the built-in order
    (TFDS' writer shuffles unless told not to). Returns its `--dataset` spec."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if not (root / name).is_dir():
        shape = (*data.x_train.shape[1:3], 1)
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=shape),
                "label": tfds.features.ClassLabel(names=data.class_names),
            }
        )
        splits = {
            split: tf.data.Dataset.from_tensor_slices({"image": x.reshape(-1, *shape), "label": y})
            for split, x, y in (
                ("train", data.x_train, data.y_train),
                ("test", data.x_test, data.y_test),
            )
        }
        tfds.dataset_builders.TfDataBuilder(
            name=name,
            version="1.0.0",
            features=features,
            split_datasets=splits,
            data_dir=str(root),
            disable_shuffling=True,
        ).download_and_prepare()
    return f"tfds:{name}"


def _digest(*arrays) -> str:
    """A short hash of arrays' values, the channel axis of grey images dropped."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for a in arrays:  # pixels as uint8, labels as int64, whatever the source stored
        a = np.asarray(a, np.uint8 if np.ndim(a) > 1 else np.int64)
        h.update(np.ascontiguousarray(a.reshape(len(a), -1)).tobytes())
    return h.hexdigest()[:12]


def compare_arrays(reference, data, limit: int, seed: int) -> dict:
    """How `data` matches the built-in `reference`: whole splits, each class's images in order,
    and the `--limit-train` draw."""
    import numpy as np

    def flat(x):
        return x.reshape(len(x), -1)

    def per_class(x, y):
        return all(
            np.array_equal(flat(x[y == c]), flat(reference.x_train[reference.y_train == c]))
            for c in range(len(reference.class_names))
        )

    drawn = data.limit(train=limit, seed=seed)
    drawn_reference = reference.limit(train=limit, seed=seed)
    return {
        "train_equal": bool(
            np.array_equal(flat(data.x_train), flat(reference.x_train))
            and np.array_equal(data.y_train, reference.y_train)
        ),
        "test_equal": bool(
            np.array_equal(flat(data.x_test), flat(reference.x_test))
            and np.array_equal(data.y_test, reference.y_test)
        ),
        "train_classes_equal_in_order": per_class(data.x_train, data.y_train),
        "train_sha256": _digest(data.x_train, data.y_train),
        "test_sorted_sha256": _digest(*_sorted(data.x_test, data.y_test)),
        "drawn_equal": bool(
            np.array_equal(flat(drawn.x_train), flat(drawn_reference.x_train))
            and np.array_equal(drawn.y_train, drawn_reference.y_train)
        ),
        "drawn_sha256": _digest(drawn.x_train, drawn.y_train),
    }


def _sorted(x, y):
    """Rows in an order that does not depend on the source's (by label, then pixels)."""
    import numpy as np

    flat = x.reshape(len(x), -1)
    order = np.lexsort((*flat.T[::-1], y))
    return flat[order], y[order]


def input_wait(x, args) -> dict:
    """Share of step time spent in `next(iterator)` of SimCLR's input pipeline on `x`.

    A loop of `--wait-steps` steps (after a warm-up), each timed as the wait for the next batch
    plus the XLA-compiled training step run to completion. The pipeline prefetches while a
    step runs, so the wait is what the step could not hide.
    """
    import keras
    import tensorflow as tf

    from tfpretrain.data import image_shape
    from tfpretrain.data.augment import two_view_dataset
    from tfpretrain.models.simclr import SimCLRConfig, build_simclr
    from tfpretrain.training.lars import LARS

    keras.utils.set_random_seed(args.seed)
    model = build_simclr(SimCLRConfig.preset(args.preset, image_shape=image_shape(x)))
    model.compile(optimizer=LARS(0.3))
    model.optimizer.build(model.trainable_variables)
    step = tf.function(model.train_step, jit_compile=True)
    iterator = iter(two_view_dataset(x, batch_size=args.batch_size, seed=args.seed, repeat=True))
    for _ in range(4):  # compile, fill the prefetch buffer
        float(step(next(iterator))["loss"])
    waits, steps = [], []
    for _ in range(args.wait_steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        float(step(batch)["loss"])  # to completion
        waits.append(fetched - start)
        steps.append(time.perf_counter() - start)
    return {
        "input_wait_share": sum(waits) / sum(steps),
        "ms_per_step": 1000 * statistics.median(steps),
        "ms_waiting_per_step": 1000 * sum(waits) / len(waits),
        "steps": args.wait_steps,
    }


def run_parity(args) -> dict:
    """Loads Fashion-MNIST three ways, compares the arrays, trains SimCLR on each; see the
    module docstring."""
    import tensorflow as tf

    from tfpretrain.data import load_image_dataset
    from tfpretrain.recipes.simclr import run as run_simclr
    from tfpretrain.settings.simclr import SimCLRRun

    tf.get_logger().setLevel("ERROR")  # one model per run: retracing warnings say nothing here
    work = Path(args.work or tempfile.mkdtemp(prefix="simclr-parity-"))
    reference = load_image_dataset("fashion_mnist")
    start = time.perf_counter()
    tree = export_png_tree(reference, work / "png")
    spec = build_tfds(reference, work / "tensorflow_datasets")
    prepare_seconds = time.perf_counter() - start
    sources = {
        "built-in": ("fashion_mnist", None),
        "png folder": (str(tree), None),
        "tfds": (spec, str(work / "tensorflow_datasets")),
    }
    result: dict = {
        "preset": args.preset,
        "batch_size": args.batch_size,
        "limit_train": args.limit_train,
        "epochs": args.epochs,
        "steps": args.epochs * (args.limit_train // args.batch_size),
        "seed": args.seed,
        "prepare_seconds": prepare_seconds,
        "sources": {},
    }
    loaded = {}
    for name, (dataset, data_dir) in sources.items():
        start = time.perf_counter()
        loaded[name] = load_image_dataset(dataset, data_dir=data_dir)
        result["sources"][name] = {
            "dataset": dataset,
            "load_seconds": time.perf_counter() - start,
            **compare_arrays(reference, loaded[name], args.limit_train, args.seed),
        }
    for name, (dataset, data_dir) in sources.items():
        metrics = run_simclr(
            SimCLRRun(
                out_dir=str(work / "runs" / name.replace(" ", "_")),
                dataset=dataset,
                data_dir=data_dir,
                preset=args.preset,
                batch_size=args.batch_size,
                epochs=args.epochs,
                limit_train=args.limit_train,
                probe_epochs=args.probe_epochs,
                seed=args.seed,
                knn_every=0,
                export=False,
                overwrite=True,
                verbose=0,
            )
        )
        result["sources"][name].update(
            probe_accuracy=metrics["linear_probe_accuracy"],
            final_loss=metrics["final_loss"],
            train_seconds=metrics["train_seconds"],
        )
    probes = [s["probe_accuracy"] for s in result["sources"].values()]
    result["probe_spread_points"] = 100 * (max(probes) - min(probes))
    folder = loaded["png folder"].limit(train=args.limit_train, seed=args.seed)
    result["png_folder_input_wait"] = input_wait(folder.x_train, args)
    if args.markdown:
        print("| source | load s | same arrays | same draw | probe | final loss | train s |")
        print("|---|---:|---|---|---:|---:|---:|")
        for name, s in result["sources"].items():
            same = "yes" if s["train_equal"] and s["test_equal"] else "no"
            if same == "no" and s["train_classes_equal_in_order"]:
                same = "per class"
            print(
                f"| {name} | {s['load_seconds']:.1f} | {same} | "
                f"{'yes' if s['drawn_equal'] else 'no'} | {100 * s['probe_accuracy']:.2f}% | "
                f"{s['final_loss']:.4f} | {s['train_seconds']:.0f} |"
            )
        wait = result["png_folder_input_wait"]
        print(
            f"\nPNG folder input wait: {100 * wait['input_wait_share']:.1f}% of "
            f"{wait['ms_per_step']:.0f} ms per step"
        )
    return result


if __name__ == "__main__":
    main()
