"""Training tokens per second and model FLOP utilisation of the GPT presets on one accelerator.

    python tools/bench/gpt_throughput.py --runs shakespeare:64 gpt2-small:16 --precision bf16

Builds `tfpretrain.models.gpt.build_gpt` for each `preset:batch[:length]` run, compiles it with
AdamW and the causal-LM loss (`jit_compile=True`), trains on random tokens (throughput does not
depend on their values), and times `--steps` steps after `--warmup` untimed ones (compilation
excluded) with the benchmarks' training clock (`clock.timed_fit`: inside `fit`, from the first
step's start to the last step's end, which Keras reads back before the callback runs).
Each run gets a process of its own: on the JAX backend a second model trained in the same
process ran about 2x slower than the same model alone (H200, Keras 3.15.1, JAX 0.11.2).

The GPT graph (`models/gpt.py` and `layers/`) is written in `keras.ops` alone, so the same model
runs on whichever Keras backend is installed. With TensorFlow it is imported as usual; on a
machine without TensorFlow (`KERAS_BACKEND=jax`) the two files are loaded without the package's
TensorFlow-only parts. The figures then measure the model's own graph under XLA on that device,
not tfpretrain's TensorFlow train step or input pipeline: say which backend a figure came from.

Model FLOPs per token are 6 N + 12 L T d (N: weights in matrix products, the tied head
included; L layers, T positions, d width), the count of nanoGPT and the PaLM paper; utilisation
is against `--peak-tflops` (default: the H100/H200 datasheet's dense bf16 989 TFLOP/s) and
against a bf16 8192³ matrix product measured in the same process.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
if "KERAS_BACKEND" not in os.environ:
    os.environ["KERAS_BACKEND"] = "tensorflow" if importlib.util.find_spec("tensorflow") else "jax"


def load_gpt():
    """`tfpretrain.models.gpt`, importable without TensorFlow on other Keras backends."""
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        # The package root insists on the TensorFlow backend and `models/__init__` imports the
        # TensorFlow-based families; the GPT graph needs neither, so stand empty packages in.
        for name, folder in (
            ("tfpretrain", "tfpretrain"),
            ("tfpretrain.models", "tfpretrain/models"),
        ):
            package = types.ModuleType(name)
            package.__path__ = [str(REPO / folder)]
            sys.modules[name] = package
    return importlib.import_module("tfpretrain.models.gpt")


def matmul_peak(keras, repeats: int = 10, n: int = 8192) -> float:
    """Measured FLOP/s of a bf16 n³ product (mean of `repeats` after 3 warm-ups)."""
    a = keras.random.normal((n, n), dtype="bfloat16", seed=1)
    b = keras.random.normal((n, n), dtype="bfloat16", seed=2)
    if keras.backend.backend() == "jax":
        import jax

        product, wait = jax.jit(lambda x, y: x @ y), lambda out: out.block_until_ready()
    else:
        import tensorflow as tf

        product, wait = (
            tf.function(lambda x, y: tf.matmul(x, y), jit_compile=True),
            lambda out: out.numpy(),
        )
    for _ in range(3):
        wait(product(a, b))
    start = time.perf_counter()
    for _ in range(repeats):
        out = product(a, b)
    wait(out)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["shakespeare:64", "gpt2-small:16"],
        help="preset:global_batch[:sequence_length] (default length: the preset's)",
    )
    parser.add_argument(
        "--vocabulary-size",
        type=int,
        default=None,
        help="default: 65 (Tiny Shakespeare characters) for shakespeare, the preset's otherwise",
    )
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if len(args.runs) > 1:
        return run_each_alone(args)

    import keras
    import numpy as np
    from clm import flops_per_token
    from clock import timed_fit

    gpt = load_gpt()
    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = str(jax.devices()[0].device_kind)
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        device = (
            tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
            if gpus
            else "cpu"
        )
    summary = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "device": device,
        "precision": args.precision,
        "peak_tflops": args.peak_tflops,
    }
    if device != "cpu":
        summary["matmul_bf16_tflops"] = matmul_peak(keras) / 1e12
    print(json.dumps(summary), flush=True)

    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if args.precision == "bf16" else "float32"
    )
    (run,) = args.runs  # several are run one process each by run_each_alone
    preset, batch, *length = run.split(":")
    batch = int(batch)
    vocab = args.vocabulary_size or (65 if preset == "shakespeare" else None)
    config = gpt.GPTConfig.preset(
        preset, vocabulary_size=vocab, sequence_length=int(length[0]) if length else None
    )
    length = config.sequence_length
    keras.utils.set_random_seed(0)
    model = gpt.build_gpt(config)
    model.compile(
        keras.optimizers.AdamW(3e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    rng = np.random.default_rng(0)
    pool = [
        rng.integers(0, config.vocabulary_size, size=(batch, length + 1), dtype=np.int32)
        for _ in range(8)
    ]
    data = ((w[:, :-1], w[:, 1:]) for w in itertools.cycle(pool))
    entry = {
        "preset": preset,
        "batch": batch,
        "sequence_length": length,
        "parameters": model.count_params(),
    }
    try:
        timed_fit(model, data, args.warmup)
        seconds = timed_fit(model, data, args.steps)
    except Exception as error:  # an out-of-memory batch is a result too
        entry["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    else:
        tokens_per_second = args.steps * batch * length / seconds
        model_flops = flops_per_token(
            config.num_layers, config.hidden_dim, length, config.vocabulary_size
        )
        entry.update(
            step_ms=1000 * seconds / args.steps,
            tokens_per_second=tokens_per_second,
            model_tflops=model_flops * tokens_per_second / 1e12,
            mfu=model_flops * tokens_per_second / (args.peak_tflops * 1e12),
        )
        if "matmul_bf16_tflops" in summary:
            entry["mfu_of_measured_matmul"] = entry["model_tflops"] / summary["matmul_bf16_tflops"]
    print(json.dumps(entry), flush=True)
    summary["runs"] = [entry]
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


def run_each_alone(args) -> None:
    """Runs every `--runs` entry in a fresh process and prints (and writes) their results
    together."""
    summary = None
    for run in args.runs:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "run.json"
            command = [
                sys.executable,
                __file__,
                "--runs",
                run,
                "--precision",
                args.precision,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--peak-tflops",
                str(args.peak_tflops),
                "--json",
                str(out),
            ]
            if args.vocabulary_size:
                command += ["--vocabulary-size", str(args.vocabulary_size)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            result = json.loads(out.read_text())
        print(json.dumps(result["runs"][0]), flush=True)
        if summary is None:
            summary = {**result, "runs": []}
        summary["runs"].append(result["runs"][0])
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
