"""Where the time of one causal-LM training step goes: tfpretrain (float32 with XLA, bfloat16 in
graph mode) against PyTorch, at the shapes of `clm.py`.

Each path runs in a fresh process built as `clm.py`'s peer of the same name (tfpretrain's
`build_gpt` + `compile_gpt` after `set_precision`, oneDNN on, `steps_per_execution` the preset's
steps; PyTorch's nanoGPT-layout GPT and AdamW, oneDNN on), trains one round to compile and warm
up, times `--rounds` unprofiled rounds of the preset's steps (the median is the unprofiled wall
step), then profiles one more round and divides by its steps:

- `tfpretrain-fp32` (`--precision fp32`, which trains under XLA): XLA's per-thunk profiler events
  (`--xla_cpu_enable_xprof_traceme`) of the training step's module, each named after its HLO
  instruction and sorted by the TensorFlow op that instruction came from (the optimized HLO's
  metadata, `--xla_dump_hlo_as_text`, read by `decode_profile.hlo_metadata`); also the XLA
  executable's run per step (`CpuExecutable::ExecuteAsyncOnStream`, the thunks and the gaps
  between them) and the number of thunks per step.
- `tfpretrain-bf16` (`--precision bf16`: no XLA on a CPU, TensorFlow's graph executor with its
  oneDNN kernels): the profiler's TensorFlow op events (`node:type`) on the executor's threads.
- `torch-default`: `torch.profiler` with `record_function` around the forward pass (with the
  loss), the backward pass and the optimizer (gradient clipping, AdamW's step, zeroing the
  gradients); the self CPU time of every op.

Every figure is an op's or thunk's own time (less the ops nested in it), summed. Below the parts,
"sum" is the time the step's ops account for and "wall - sum" the time between them: the
runtime's overhead (the thunk executor, TensorFlow's executor and `steps_per_execution` loop,
PyTorch's dispatch and Python). Ops that run at once on the two inter-op threads can make the sum
exceed the wall.

Phase, from the TensorFlow op name (the HLO metadata's `op_name`, or the graph node's name inside
the step function): under `gradient_tape/`, or a top-level `AddN` (a gradient summed over a
tensor's uses), is backward; under the optimizer's scope (`adam_w/`: global clipping, AdamW's
update, the schedule) optimizer; under the model's scope (`gpt/`) or `compile_loss/` forward;
the rest (the loss metric's update, the `steps_per_execution` loop's own ops) other. An HLO
instruction without metadata (half of a reduction XLA split in two, a copy) takes the op name of
its first user that has one. PyTorch: the `record_function` range an op starts in (other: the
batch's conversion before it).

Part, from the layer the op name is under (`gradient_tape/` stripped): `embedding/`'s token and
position gathers and their sum are embeddings, its other ops (the tied head's product and
transpose) logits + loss, as is `compile_loss/`; in `attention/` the score and value products
(`einsum`), the mask (`SelectV2`), the softmax and its gradient (`sub`, `Sum`, `mul`; the query
scale's ops are `Mul`) and the casts around them are the attention core, the rest (QKV and output
products, their bias adds, the QKV split, the head transposes, and their gradients) attention
projections; `ffn_inner/` and `ffn_outer/` products, bias adds and weight casts are MLP products,
their GELU an activation; layer norms, residual adds and gradient sums are norms, activations,
residuals, except a sum of a gather's gradient (`AddN/inputs`): embeddings. An XLA fusion counts
where its root instruction's op name says. PyTorch's ops, by their name and their parents' (the
autograd node for the backward pass) and by shape: cross-entropy logits + loss; `embedding`
embeddings; `scaled_dot_product` attention core; matrix products (with their bias sums) by
their shapes: a vocabulary-wide side logits + loss, a 4 x width side MLP products, the rest
attention projections; `layer_norm`, `gelu` and adds norms, activations, residuals; copies of 4-D
(head-split) tensors and the gradients of the QKV split and head transposes attention
projections.

The top lines list the largest thunks by HLO instruction name (its number dropped), TensorFlow
ops by type and PyTorch ops by name.

Needs torch (CPU) next to tfpretrain's requirements, and `TFPRETRAIN_DATA_DIR` for Tiny
Shakespeare. Usage, from the repository root:

    python tools/bench/clm_profile.py [--presets nano shakespeare] [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from clm import PEERS, REPO, SHAPES, KerasWorker, TorchWorker, shakespeare_chars  # noqa: E402
from decode_profile import hlo_metadata  # noqa: E402

PATHS = {
    # name (a clm.py peer): column heading
    "tfpretrain-fp32": "tf fp32 XLA",
    "tfpretrain-bf16": "tf bf16 graph",
    "torch-default": "torch",
}
PARTS = (
    "embeddings",
    "attention projections",
    "attention core",
    "MLP products",
    "logits + loss",
    "norms, activations, residuals",
    "optimizer",
    "other",
)
PHASES = ("forward", "backward", "optimizer", "other")
NORMS = "norms, activations, residuals"
# Layers of build_gpt, by their name scope; the first match in an op name is its layer.
LAYERS = {
    "embedding",
    "attention",
    "attention_norm",
    "ffn_norm",
    "final_norm",
    "ffn_inner",
    "ffn_gate",
    "ffn_outer",
}
# What under `attention/` is the core: the two einsums, the mask, the softmax and its gradient
# (`sub`, `Sum`, `mul`: the query scale's ops are `Mul`), the float32 casts around the softmax.
ATTENTION_CORE = {"einsum", "Softmax", "SelectV2", "sub", "Sum", "mul", "Cast"}
EMBEDDING_LOOKUP = {"token_embedding", "position_embedding", "add", "strided_slice"}


# ----------------------------------------------------------------------------- classification


def _base(component: str) -> str:
    """A name-scope component without the `_N` Keras and TensorFlow add to make it unique."""
    return re.sub(r"_\d+$", "", component)


def tf_phase(op_name: str, model: str, optimizer: str) -> str:
    """forward, backward, optimizer or other, from a TensorFlow op name (see the module doc)."""
    first = _base(op_name.split("/")[0])
    if first in ("gradient_tape", "AddN"):
        return "backward"
    if first.replace("_", "").lower() == optimizer:
        return "optimizer"
    if first in (model, "compile_loss"):
        return "forward"
    return "other"


def tf_part(op_name: str, product: bool, phase: str, model: str) -> str:
    """The part of the model a TensorFlow op name belongs to (see the module doc)."""
    if phase == "optimizer":
        return "optimizer"
    parts = [_base(c) for c in op_name.split("/")]
    if parts[0] == "gradient_tape":
        parts = parts[1:]
    if not parts or phase == "other":
        return "other"
    if parts[0] == "compile_loss":
        return "logits + loss"
    if parts[0] == "AddN":
        return "embeddings" if "inputs" in parts else NORMS
    layer = next((i for i, c in enumerate(parts) if c in LAYERS), None)
    if layer is None:
        return NORMS if parts[0] == model else "other"
    name, sub = parts[layer], (parts[layer + 1] if layer + 1 < len(parts) else "")
    if name == "embedding":
        return "embeddings" if sub in EMBEDDING_LOOKUP and not product else "logits + loss"
    if name == "attention":
        if sub == "einsum" or (sub in ATTENTION_CORE and not product):
            return "attention core"
        return "attention projections"
    if name.startswith("ffn_") and name != "ffn_norm":
        if product or sub in ("Tensordot", "MatMul", "BiasAdd", "Cast"):
            return "MLP products"
        return NORMS
    return NORMS  # the layer norms


TORCH_PRODUCTS = re.compile(r"aten::(mm|addmm|bmm|baddbmm|matmul|linear)$|(Mm|Addmm)Backward")
TORCH_LOSS = re.compile(r"cross_entropy|nll_loss|log_softmax|NllLoss|LogSoftmax")
TORCH_NORMS = re.compile(r"layer_norm|LayerNorm|gelu|Gelu|aten::add|AddBackward")
TORCH_COPY = re.compile(r"copy_|clone|reshape|contiguous")
TORCH_HEADS = re.compile(r"Split\w*Backward|TransposeBackward")


def torch_part(chain: list, phase: str, width: int, vocab: int) -> str:
    """The part of an op (`chain`: it and its parents, innermost first) in the PyTorch GPT."""
    if phase == "optimizer":
        return "optimizer"
    if phase == "other":
        return "other"
    names = [event.name for event in chain]
    if any(TORCH_LOSS.search(n) for n in names):
        return "logits + loss"
    if any("mbedding" in n for n in names):
        return "embeddings"
    if any("scaled_dot_product" in n or "ScaledDotProduct" in n for n in names):
        return "attention core"
    if any(TORCH_PRODUCTS.search(n) for n in names):
        dims = {d for event in chain for shape in event.input_shapes or () for d in shape}
        if vocab in dims:
            return "logits + loss"
        return "MLP products" if 4 * width in dims else "attention projections"
    if any(TORCH_NORMS.search(n) for n in names):
        return NORMS
    if any(TORCH_HEADS.search(n) for n in names) or (
        TORCH_COPY.search(names[0]) and any(len(s) == 4 for s in chain[0].input_shapes or ())
    ):
        return "attention projections"
    return "other"


# ----------------------------------------------------------------------------- traces


def exclusive(events):
    """`(event, own picoseconds)` of `(start_ps, duration_ps, event)` on one thread: each event's
    duration less that of the events nested in it."""
    out = []
    stack = []  # open events: [end, own, event]
    for start, duration, event in sorted(events, key=lambda e: (e[0], -e[1])):
        while stack and stack[-1][0] <= start:
            _, own, done = stack.pop()
            out.append((done, own))
        if stack:
            stack[-1][1] -= duration
        stack.append([start + duration, duration, event])
    out.extend((event, own) for _, own, event in stack)
    return out


def host_plane(logdir: str):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (trace,) = Path(logdir).rglob("*.xplane.pb")
    space = xplane_pb2.XSpace.FromString(trace.read_bytes())
    (plane,) = [p for p in space.planes if p.name == "/host:CPU"]
    return plane


def xla_profile(plane, dump: Path, steps: int, model: str, optimizer: str) -> dict:
    """Thunk times of the training step's XLA module by part and phase, ms per step."""
    names = {k: v.name for k, v in plane.event_metadata.items()}
    stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
    module_stat = next(k for k, v in stat_names.items() if v == "hlo_module")
    per_module = collections.defaultdict(list)  # module -> per line, its thunk events
    executable_ps = 0
    for line in plane.lines:
        found = collections.defaultdict(list)
        for event in line.events:
            name = names.get(event.metadata_id, "")
            if name == "CpuExecutable::ExecuteAsyncOnStream":
                executable_ps += event.duration_ps
            for stat in event.stats:
                if stat.metadata_id == module_stat:
                    module = stat_names.get(stat.ref_value) or stat.str_value
                    found[module].append((event.offset_ps, event.duration_ps, name))
        for module, events in found.items():
            per_module[module].append(events)
    # The training step: the module of `one_step_on_data` with the most thunk events.
    module = max(
        (m for m in per_module if "one_step_on_data" in m),
        key=lambda m: sum(len(events) for events in per_module[m]),
    )
    metadata = hlo_metadata(dump, module, inherit=True)
    parts, phases, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    count = 0
    for events in per_module[module]:
        for name, own in exclusive(events):
            op_name, product = metadata.get(name, ("", False))
            phase = tf_phase(op_name, model, optimizer) if op_name else "other"
            ms = own / 1e9 / steps
            parts[tf_part(op_name, product, phase, model)] += ms
            phases[phase] += ms
            by_op[re.sub(r"\.\d+$", "", name)] += ms
            count += 1
    return {
        "module": module,
        "parts": dict(parts),
        "phases": dict(phases),
        "sum_ms": sum(parts.values()),
        "count_per_step": count / steps,
        "executable_ms": executable_ps / 1e9 / steps,
        "top": by_op.most_common(8),
    }


TF_OP = re.compile(r"^([^:]+):([A-Za-z_]\w*)$")


def graph_profile(plane, steps: int, model: str, optimizer: str) -> dict:
    """TensorFlow op times (graph executor) by part, phase and op type, ms per step."""
    names = {k: v.name for k, v in plane.event_metadata.items()}
    parts, phases, by_type = collections.Counter(), collections.Counter(), collections.Counter()
    count = 0
    for line in plane.lines:
        if line.name.startswith("tf_data"):  # the input pipeline's own threads
            continue
        events = []
        for event in line.events:
            match = TF_OP.match(names.get(event.metadata_id, ""))
            if match:  # `ExecutorState::Process` and the like are not ops
                events.append((event.offset_ps, event.duration_ps, match.groups()))
        for (node, op_type), own in exclusive(events):
            # The step function's ops are inlined into the loop under its call's name.
            inside = "StatefulPartitionedCall/" in node
            op_name = node.split("StatefulPartitionedCall/", 1)[1] if inside else ""
            phase = tf_phase(op_name, model, optimizer) if inside else "other"
            ms = own / 1e9 / steps
            parts[tf_part(op_name, "MatMul" in op_type or "Einsum" in op_type, phase, model)] += ms
            phases[phase] += ms
            by_type[op_type] += ms
            count += 1
    return {
        "parts": dict(parts),
        "phases": dict(phases),
        "sum_ms": sum(parts.values()),
        "count_per_step": count / steps,
        "top": by_type.most_common(8),
    }


# ----------------------------------------------------------------------------- children


def keras_child(name: str, preset: str, rounds: int) -> dict:
    import tensorflow as tf

    worker = KerasWorker("tfpretrain", preset)  # built, compiled and run one round
    steps = worker.steps
    walls = [worker.train(steps) / steps for _ in range(rounds)]
    model = worker.model
    optimizer = type(model.optimizer).__name__.lower()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        profiled = worker.train(steps) / steps
        tf.profiler.experimental.stop()
        plane = host_plane(logdir)
    if worker.path["xla"]:
        dump = Path(os.environ["CLM_PROFILE_DUMP"])
        result = xla_profile(plane, dump, steps, model.name, optimizer)
    else:
        result = graph_profile(plane, steps, model.name, optimizer)
    path = worker.path
    result["settings"] = f"{path['policy']}, XLA {'on' if path['xla'] else 'off'}, oneDNN on"
    return {**result, "walls_ms": [1e3 * w for w in walls], "profiled_ms": 1e3 * profiled}


def torch_child(preset: str, rounds: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    worker = TorchWorker(preset)  # built and run two steps
    steps, model, opt = worker.steps, worker.model, worker.opt
    worker.train(steps)
    walls = [worker.train(steps) / steps for _ in range(rounds)]
    _, _, width, _, _, _ = SHAPES[preset]
    _, vocab = shakespeare_chars()

    def step():  # TorchWorker.train's step, in three ranges
        x, y = next(worker.batches)
        x, y = torch.from_numpy(x).long(), torch.from_numpy(y).long()
        with record_function("forward"):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        profiled = (time.perf_counter() - start) / steps
    events = list(prof.events())
    ranges = sorted(
        (e.time_range.start, e.time_range.end, e.name) for e in events if e.name in PHASES
    )
    starts = [r[0] for r in ranges]

    def phase_of(event):
        i = bisect.bisect_right(starts, event.time_range.start) - 1
        if i >= 0 and event.time_range.start < ranges[i][1]:
            return ranges[i][2]
        return "other"

    parts, phases, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    range_ms = collections.Counter()
    count = 0
    for event in events:
        if event.name in PHASES:
            range_ms[event.name] += (event.time_range.end - event.time_range.start) / 1e3 / steps
            continue
        phase = phase_of(event)
        chain = [event]
        while chain[-1].cpu_parent is not None and chain[-1].cpu_parent.name not in PHASES:
            chain.append(chain[-1].cpu_parent)
        ms = event.self_cpu_time_total / 1e3 / steps
        parts[torch_part(chain, phase, width, vocab)] += ms
        phases[phase] += ms
        by_op[event.name] += ms
        count += 1
    return {
        "settings": "float32, eager, oneDNN on",
        "parts": dict(parts),
        "phases": dict(phases),
        "range_ms": dict(range_ms),
        "sum_ms": sum(parts.values()),
        "count_per_step": count / steps,
        "top": by_op.most_common(8),
        "walls_ms": [1e3 * w for w in walls],
        "profiled_ms": 1e3 * profiled,
    }


def child(name: str, preset: str, rounds: int) -> None:
    if PEERS[name][0] == "torch":
        result = torch_child(preset, rounds)
    else:
        result = keras_child(name, preset, rounds)
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver


def run_path(name: str, preset: str, rounds: int) -> dict:
    """Runs one path in a fresh process (XLA's flags and oneDNN are read at start-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), **PEERS[name][1])
        if name == "tfpretrain-fp32":
            env["XLA_FLAGS"] = (
                f"--xla_cpu_enable_xprof_traceme=true --xla_dump_to={tmp} --xla_dump_hlo_as_text"
            )
            env["CLM_PROFILE_DUMP"] = tmp
        flags = ["--child", name, "--preset", preset, "--rounds", str(rounds)]
        out = subprocess.run(
            [sys.executable, __file__, *flags],
            env=env,
            cwd=REPO,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_ms"] = statistics.median(result["walls_ms"])
    return result


def report(preset: str, results: dict) -> None:
    layers, heads, width, block, batch, steps = SHAPES[preset]
    print(
        f"\n## {preset}: {layers} layers, {heads} heads, width {width}, batch {batch} x {block}; "
        f"ms per step (profiled round of {steps} steps)"
    )
    names = list(results)
    print(f"{'':34s}" + "".join(f"{PATHS[n]:>15s}" for n in names))

    def row(label, values, fmt="{:15.2f}"):
        cells = "".join(fmt.format(v) if v is not None else f"{'':>15s}" for v in values)
        print(f"{label:34s}{cells}")

    for part in PARTS:
        row(part, [results[n]["parts"].get(part, 0.0) for n in names])
    for phase in PHASES:
        row(f"phase: {phase}", [results[n]["phases"].get(phase, 0.0) for n in names])
    row("sum of thunk / op times", [results[n]["sum_ms"] for n in names])
    row("thunks / ops per step", [results[n]["count_per_step"] for n in names], "{:15.0f}")
    row("XLA executable run", [results[n].get("executable_ms") for n in names])
    row("wall step, profiled", [results[n]["profiled_ms"] for n in names])
    row("wall - sum (overhead)", [results[n]["profiled_ms"] - results[n]["sum_ms"] for n in names])
    row("wall step, unprofiled (median)", [results[n]["wall_ms"] for n in names])
    for name in names:
        top = ", ".join(f"{op} {ms:.2f}" for op, ms in results[name]["top"][:6])
        print(f"top {PATHS[name]} ({results[name]['settings']}): {top}")
    if "torch-default" in results:
        ranges = results["torch-default"]["range_ms"]
        print(
            "torch record_function ranges (wall, with Python): "
            + ", ".join(f"{k} {ranges.get(k, 0.0):.2f}" for k in PHASES[:3])
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["nano"], choices=list(SHAPES))
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    parser.add_argument("--rounds", type=int, default=3, help="unprofiled timed rounds per path")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.preset, args.rounds)
    results = {}
    for preset in args.presets:
        results[preset] = {name: run_path(name, preset, args.rounds) for name in args.paths}
        report(preset, results[preset])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
