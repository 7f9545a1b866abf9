"""Where a decoding step's time goes at gpt2-small's shape (124M, float32), against the memory
bandwidth bound and KerasHub's step.

For each batch size, in a fresh process (XLA's flags are read once): decodes `--new` greedy
tokens with `TextGenerator` after a compiling call, traces one more call with XLA's per-thunk
profiler events (`--xla_cpu_enable_xprof_traceme`) and sorts the loop's thunks by the
TensorFlow op they came from (the optimized HLO's metadata): the attention projections, the MLP,
the logits (the 50257-wide product with the tied embedding), the attention over the cache, the
cache update, and the rest (norms, activations, the sampler, the loop). Then times KerasHub's
own decoding step (`GPT2CausalLM.call_with_cache` plus an argmax, in a `tf.function` without
XLA, its CPU default) on the same weights, and measures the memory bandwidth: NumPy's copy
and an XLA reduction over 512 MB. The bound is the bytes of weights a step reads (every matrix
and the token embedding, once per step whatever the batch) over the reduction's read rate.
Needs `torch`, `transformers` (to write the random-weight folder) and `keras-hub`.

Usage:

    python tools/bench/decode_profile.py [--folder DIR] [--batch 1 8] [--new 24]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# op_name fragments (TensorFlow op names in the HLO metadata) -> category, first match wins.
CATEGORIES = (
    ("cache update", ("XlaDynamicUpdateSlice",)),
    ("attention over the cache", ("attention_1/einsum", "attention_1/Einsum", "Softmax")),
    ("attention projections", ("attention_1/",)),
    ("MLP", ("ffn_",)),
    ("logits", ("embedding_3/", "embedding_2/")),
    ("sampler", ("while/cond",)),
)


def category(op_name: str, is_product: bool) -> str:
    for name, fragments in CATEGORIES:
        if any(f in op_name for f in fragments):
            if name in ("attention projections", "MLP", "logits") and not is_product:
                return "norms, activations, residuals"
            return name
    return "norms, activations, residuals" if "block_" in op_name else "loop and other"


def hlo_metadata(
    dump: Path, module: str = "decode_ids", inherit: bool = False
) -> dict[str, tuple[str, bool]]:
    """`{instruction: (op_name, whether it is or holds a matrix product)}` of the optimized HLO
    of the one module in `dump` whose name holds `module` (by default the decoding loop's).

    With `inherit`, an instruction without metadata (the first half of a reduction XLA's CPU
    backend split in two, a copy) takes the op_name of the first of its users that has one.
    """
    (text,) = [p.read_text() for p in dump.glob(f"*{module}*cpu_after_optimizations.txt")]
    fused = {}  # fused computation -> whether it holds a dot
    current = None
    for line in text.splitlines():
        if line.startswith("%") and line.rstrip().endswith("{"):
            current = line.split()[0][1:]
            fused[current] = False
        elif line.startswith("}"):  # the entry computation's own dots belong to no fusion
            current = None
        elif current and " dot(" in line:
            fused[current] = True
    out = {}
    users = collections.defaultdict(list)  # instruction -> the instructions reading it
    for line in text.splitlines():
        match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*?\b(\w[\w-]*)\(", line)
        if not match:
            continue
        name, opcode = match.groups()
        op_name = re.search(r'op_name="([^"]*)"', line)
        calls = re.search(r"calls=%([\w.\-]+)", line)
        product = opcode == "dot" or bool(calls and fused.get(calls.group(1)))
        out[name] = (op_name.group(1) if op_name else "", product)
        for operand in re.findall(r"%([\w.\-]+)", line[match.end() :].split(")", 1)[0]):
            users[operand].append(name)
    while inherit:  # until no instruction without an op_name has a user with one
        inherit = False
        for name, (op_name, product) in out.items():
            named = [out[user][0] for user in users[name] if out[user][0]]
            if not op_name and named:
                out[name], inherit = (named[0], product), True
    return out


def profile_ours(folder: Path, batch: int, new: int, prompt: int) -> dict:
    """Runs in the child process: per-category milliseconds per decoding step."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from tfpretrain.models import gpt

    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]

    class Ids:
        vocabulary_size = vocab

    generator = gpt.TextGenerator(gpt.from_pretrained(folder), Ids())
    prompts = list(np.random.default_rng(0).integers(0, vocab, (batch, prompt)).astype("int32"))

    def run():
        return generator.generate_ids(prompts, prompt + new, greedy=True)

    run()
    calls = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        calls.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        run()
        tf.profiler.experimental.stop()
        (trace,) = Path(logdir).rglob("*.xplane.pb")
        space = xplane_pb2.XSpace.FromString(trace.read_bytes())
    metadata = hlo_metadata(Path(os.environ["DECODE_PROFILE_DUMP"]))
    (plane,) = [p for p in space.planes if p.name == "/host:CPU"]
    names = {k: v.name for k, v in plane.event_metadata.items()}
    totals = collections.Counter()
    thunks = 0
    for line in plane.lines:
        for event in line.events:
            name = names.get(event.metadata_id, "")
            op_name, product = metadata.get(name, ("", False))
            if op_name.startswith("while/") and not name.startswith("while"):
                totals[category(op_name, product)] += event.duration_ps / 1e9
                thunks += 1
    steps = new  # the loop runs from the prompt's end; the prompt itself is prefilled
    return {
        "call_ms_per_token": 1e3 * min(calls) / new,
        "step_ms": sum(totals.values()) / steps,
        "thunks_per_step": thunks / steps,
        "parts": {k: v / steps for k, v in totals.most_common()},
    }


def kerashub_step_ms(folder: Path, batch: int, width: int, steps: int = 16) -> float:
    """KerasHub's decoding step (`call_with_cache` and an argmax) in a loop, ms per step."""
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(HERE))
    from generation import keras_hub_model

    config = json.loads((folder / "config.json").read_text())
    model = keras_hub_model(folder, config)
    ids = np.random.default_rng(0).integers(0, config["vocab_size"], (batch, width)).astype("int32")
    _, cache = model._build_cache(ids)

    @tf.function  # KerasHub's generate compiles without XLA on a CPU
    def loop(cache):
        def body(i, token, cache):
            logits, _, cache = model.call_with_cache(token, cache, i)
            return i + 1, tf.argmax(logits[:, -1], -1, output_type=tf.int32)[:, None], cache

        start = width - steps
        return tf.while_loop(
            lambda i, *_: i < width, body, (start, tf.constant(ids[:, :1]), cache)
        )[1]

    loop(cache)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        loop(cache).numpy()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times) / steps


def bandwidth() -> dict:
    """NumPy copy (read + write) and XLA row sums (read, both cores) over 512 MB, GB/s."""
    import numpy as np
    import tensorflow as tf

    a = np.ones(128 * 2**20, np.float32)
    b = np.empty_like(a)
    x = tf.constant(a.reshape(2**12, -1))
    total = tf.function(lambda x: tf.reduce_sum(x, axis=1), jit_compile=True)
    total(x)

    def best(fn):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    return {
        "numpy_copy": 2 * a.nbytes / best(lambda: np.copyto(b, a)) / 1e9,
        "xla_sum": a.nbytes / best(lambda: total(x).numpy()) / 1e9,
    }


def child(args) -> None:
    result = profile_ours(args.folder, args.child, args.new, args.prompt)
    result["kerashub_step_ms"] = kerashub_step_ms(args.folder, args.child, args.prompt + args.new)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="an existing GPT-2 folder (default: write one)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new", type=int, default=24)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "gpt2-random"
        if args.folder is None:
            sys.path.insert(0, str(HERE))
            from checkpoints import write_checkpoint

            write_checkpoint(folder)
        from safetensors import safe_open

        with safe_open(folder / "model.safetensors", "np") as f:
            sizes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        # A step reads every matrix and vector once, but one row of the position table.
        read = 4 * sum(math.prod(shape) for name, shape in sizes.items() if "wpe" not in name)
        rates = bandwidth()
        bound = read / (rates["xla_sum"] * 1e9) * 1e3
        print(
            f"weights read per step {read / 1e6:.0f} MB; NumPy copy {rates['numpy_copy']:.1f} "
            f"GB/s (read + write), XLA sum {rates['xla_sum']:.1f} GB/s (read): bound "
            f"{bound:.1f} ms per step"
        )
        for batch in args.batch:
            dump = Path(tmp) / f"dump{batch}"
            env = {
                **os.environ,
                "XLA_FLAGS": f"--xla_cpu_enable_xprof_traceme=true --xla_dump_to={dump} "
                "--xla_dump_hlo_as_text",
                "DECODE_PROFILE_DUMP": str(dump),
                "TF_CPP_MIN_LOG_LEVEL": "2",
            }
            flags = ["--folder", str(folder), "--new", str(args.new), "--prompt", str(args.prompt)]
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(batch), *flags],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            parts = ", ".join(f"{k} {v:.3g}" for k, v in result["parts"].items())
            print(
                f"batch {batch}: tfpretrain step {result['step_ms']:.3g} ms in "
                f"{result['thunks_per_step']:.0f} thunks ({parts}); "
                f"{result['call_ms_per_token']:.3g} ms per new token with the prefill; "
                f"KerasHub step {result['kerashub_step_ms']:.3g} ms"
            )


if __name__ == "__main__":
    main()
