"""Choosing a `tf.distribute` strategy, the numeric precision and XLA for a run, and describing
the machine it runs on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable

import keras
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
PRECISION_CHOICES = ("auto", *PRECISIONS)
XLA_MODES = ("auto", "on", "off")


def _tpu_resolver():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        resolver.master()  # raises when no TPU is reachable
        return resolver
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        return None


def _has_cluster() -> bool:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from err
    return bool(config.get("cluster", {}).get("worker"))


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy for `name`.

    `auto` picks a TPU when a TPU cluster resolver finds one, `MultiWorkerMirroredStrategy`
    when `TF_CONFIG` describes workers, `MirroredStrategy` with more than one GPU, and the
    default (single-device) strategy otherwise.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name == "auto":
        if _tpu_resolver() is not None:
            name = "tpu"
        elif _has_cluster():
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if not tf.config.list_logical_devices("GPU"):
            # MirroredStrategy() would use only CPU:0; several logical CPUs (`set_logical_cpus`)
            # are how multi-replica training is tested without accelerators.
            cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
            if len(cpus) > 1:
                return tf.distribute.MirroredStrategy(cpus)
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if not _has_cluster():
            raise ValueError(
                "The multiworker strategy needs TF_CONFIG describing the cluster's workers."
            )
        return _multiworker_strategy()
    resolver = _tpu_resolver()
    if resolver is None:
        raise ValueError("No TPU was found by TPUClusterResolver; use --strategy auto or default.")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


_WATCHDOG = """
import os, signal, socket, sys, time
parent, timeout, peers = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
time.sleep(timeout)
if os.getppid() != parent:  # the parent is gone: nothing to stop
    sys.exit(0)
def reachable(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
        return True
    except (OSError, ValueError):
        return False
missing = [a for a in peers if not reachable(a)] or peers
sys.stderr.write(
    "\\nerror: the workers at " + ", ".join(missing) + " (from TF_CONFIG) did not join the "
    "cluster within %g s. Check that the addresses and ports in TF_CONFIG are right, that every "
    "worker was started with the same cluster and its own task index, and that the ports are "
    "open between the machines (TFPRETRAIN_WORKER_TIMEOUT sets this wait).\\n" % timeout)
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


def _multiworker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """`MultiWorkerMirroredStrategy` from TF_CONFIG, failing clearly when a worker never shows up.

    The strategy's constructor waits in C++ for every task of the cluster to connect, without a
    timeout, holding the GIL and ignoring SIGTERM, so a wrong address in TF_CONFIG would hang the
    job forever. A watchdog process kills this one (SIGKILL) after printing a message naming the
    unreachable addresses when the cluster has not formed within `TFPRETRAIN_WORKER_TIMEOUT`
    seconds (default 300).
    """
    config = json.loads(os.environ["TF_CONFIG"])
    task = config.get("task", {})
    me = config["cluster"].get(task.get("type", ""), [None] * (task.get("index", 0) + 1))[
        task.get("index", 0)
    ]
    peers = [a for job in ("chief", "worker") for a in config["cluster"].get(job, []) if a != me]
    try:
        timeout = float(os.environ.get("TFPRETRAIN_WORKER_TIMEOUT", "300"))
    except ValueError as err:
        raise ValueError(f"TFPRETRAIN_WORKER_TIMEOUT must be a number of seconds: {err}") from err
    # A watchdog *process*: the C++ wait holds the GIL, so a Python thread could not run.
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), f"{timeout:g}", *peers],
        stdin=subprocess.DEVNULL,
    )
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    finally:
        watchdog.kill()
        watchdog.wait()
    return strategy


def _has_accelerator() -> bool:
    """Whether this machine has a GPU or a TPU that TensorFlow sees."""
    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"))


# The narrowest model `--precision auto` trains in bfloat16 (on a CPU with a bfloat16 unit).
# GPT training, bfloat16 (oneDNN, no XLA) against float32 with XLA, 2 cores: on a Xeon with AMX
# 0.86x its speed at width 128 (`nano`), 1.26x at 384 (`shakespeare`); on an AMD EPYC with
# AVX512-BF16 and no AMX 0.65x at 128, 1.40x at 384. The crossover lies between the two.
BF16_MIN_WIDTH = 384


def _cpuinfo() -> dict[str, str]:
    """The fields of /proc/cpuinfo (one processor's: they are alike); empty where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            fields = dict(line.split(":", 1) for line in cpuinfo if ":" in line)
    except OSError:  # not Linux
        return {}
    return {k.strip(): v.strip() for k, v in fields.items()}


def _cpu_flags() -> set[str]:
    """The CPU's ISA extensions as the kernel names them (`avx512f`, `amx_bf16`, ...)."""
    return set(_cpuinfo().get("flags", "").split())


# The CPU units whose bfloat16 products oneDNN uses, best first, with the names the reasons give.
BF16_UNITS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}


def _bf16_unit() -> str | None:
    """The CPU's best bfloat16 unit (`AMX`, `AVX512-BF16`), or None."""
    flags = _cpu_flags()
    return next((name for flag, name in BF16_UNITS.items() if flag in flags), None)


def _onednn_on() -> bool:
    """Whether TensorFlow's oneDNN ops are on in this process (`TF_ENABLE_ONEDNN_OPTS`)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def precision_decision(requested: str = "auto", width: int | None = None) -> tuple[str, str]:
    """The precision a run trains in (`fp32`, `bf16` or `fp16`) and why: `requested` (a run's
    `precision` setting, `--precision`) as given, or for `auto` bfloat16 mixed precision only
    on a machine without a GPU or TPU whose CPU has a bfloat16 unit (AMX or AVX512-BF16) that
    TensorFlow's oneDNN ops use, for a model of hidden width `width` >= `BF16_MIN_WIDTH`;
    float32 otherwise, and when `width` is None.

    There oneDNN's bfloat16 products outrun XLA's float32 ones (XLA's CPU backend has no faster
    bfloat16 products); for narrow models the conversions cost more than the products gain and
    float32 with XLA is faster (BENCHMARKS.md). The reason is what `fit` records in the run's
    `config.json` (`execution.precision_reason`).
    """
    if requested not in PRECISION_CHOICES:
        raise ValueError(
            f"Unknown precision {requested!r}; choose one of {', '.join(PRECISION_CHOICES)}."
        )
    if requested != "auto":
        return requested, "as requested"
    if _has_accelerator():
        return "fp32", "auto: float32 with a GPU or TPU (--precision bf16 or fp16 to mix there)"
    unit = _bf16_unit()
    if unit is None:
        return "fp32", "auto: float32, the CPU has no bfloat16 unit (amx_bf16 or avx512_bf16)"
    if not _onednn_on():
        return "fp32", (
            "auto: float32, oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0) and without it bfloat16 "
            "products are no faster"
        )
    if width is None:
        return "fp32", "auto: float32, no model width given"
    if width < BF16_MIN_WIDTH:
        return "fp32", (
            f"auto: float32, width {width} is below {BF16_MIN_WIDTH}, where bfloat16 on "
            f"{unit} starts to pay"
        )
    return "bf16", f"auto: bfloat16 on a CPU with {unit}, width {width} >= {BF16_MIN_WIDTH}"


# The policy object the last `set_precision` set, and its reason: a policy set otherwise (by
# `keras.mixed_precision.set_global_policy`, which makes a new object) has no reason.
_decided: tuple[object, str] | None = None


def set_precision(precision: str = "auto", width: int | None = None) -> str:
    """Sets Keras' global dtype policy for `precision` (`auto`, `fp32`, `bf16` or `fp16`),
    `auto` resolved by `precision_decision` for a model of hidden width `width`; returns the
    policy name. Recipes call it before building the model, with the width where they know it.
    """
    global _decided
    chosen, reason = precision_decision(precision, width)
    keras.mixed_precision.set_global_policy(PRECISIONS[chosen])
    _decided = (keras.mixed_precision.global_policy(), reason)
    return PRECISIONS[chosen]


def precision_reason() -> str | None:
    """Why Keras' global dtype policy is what it is: the reason of the `set_precision` call that
    set it; None when it was set otherwise."""
    if _decided is not None and _decided[0] is keras.mixed_precision.global_policy():
        return _decided[1]
    return None


def xla_decision(mode: str = "auto") -> tuple[bool, str]:
    """Whether training steps are XLA-compiled, and why: `mode` (a run's `xla` setting, `--xla`)
    is `on`, `off` or `auto`: XLA, except for bfloat16 on a machine without a GPU or TPU.

    XLA's CPU backend runs bfloat16 matrix products no faster than float32 ones, while
    TensorFlow's own (oneDNN) kernels use the CPU's bfloat16 instructions (BENCHMARKS.md has the
    measurements). `auto` reads Keras' global dtype policy, so call it after `set_precision`.
    The reason is what `fit` records in the run's `config.json` (`execution.xla_reason`).
    """
    if mode not in XLA_MODES:
        raise ValueError(f"--xla must be auto, on or off; got {mode!r}.")
    if mode != "auto":
        return mode == "on", f"--xla {mode}"
    dtype = keras.mixed_precision.global_policy().compute_dtype
    if dtype == "float32":
        return True, "auto: float32 trains fastest under XLA"
    if dtype != "bfloat16":
        return True, f"auto: {dtype} trains under XLA (auto is off only for CPU-only bfloat16)"
    if _has_accelerator():
        return True, "auto: bfloat16 with a GPU or TPU trains under XLA"
    return False, (
        "auto: bfloat16 on a CPU-only machine: TensorFlow's oneDNN kernels use the CPU's "
        "bfloat16 instructions, XLA's CPU backend does not"
    )


def xla_for_training(mode: str = "auto") -> bool:
    """Whether training steps are XLA-compiled under `mode` (`--xla`): `xla_decision`'s answer.

    Every recipe compiles with `jit_compile=xla_for_training(cfg.xla)`, after `set_precision`.
    """
    return xla_decision(mode)[0]


def machine() -> dict:
    """What a timing depends on: the CPU (`cpu` model, `vendor`, the `isa` extensions that change
    which kernels run: avx2, avx512f, avx512_bf16, amx) and whether TensorFlow's oneDNN ops are on
    in this process (`onednn`, and the `TF_ENABLE_ONEDNN_OPTS` setting that chose it), and the
    `XLA_FLAGS` XLA's compiler read.

    `fit` records it in each run's `config.json` (`execution.machine`); the benchmarks
    (`tools/bench/clock.py`) report it with their readings.
    """
    fields = _cpuinfo()  # empty when not on Linux: the platform string is all there is
    info = {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("vendor_id", ""),
        "isa": sorted(_cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
    }
    info["onednn"] = _onednn_on()
    info["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)")
    info["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "(unset)")
    return info


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's files: always, except on the non-chief workers of a
    multi-worker job (the `chief` task, else worker 0, writes)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return chief_task(resolver.task_type, resolver.task_id, set(resolver.cluster_spec().as_dict()))


def chief_task(task_type: str, task_id: int, jobs: set[str]) -> bool:
    """Whether the task `task_type:task_id` of a cluster with the jobs `jobs` is the one that
    writes: the `chief`, else worker 0."""
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in jobs


def global_batch_size(
    per_replica_batch_size: int, strategy: tf.distribute.Strategy | None = None
) -> int:
    """Global batch = per-replica batch × replicas in sync (the size one optimizer step sees)."""
    if per_replica_batch_size <= 0:
        raise ValueError(
            f"The per-replica batch size must be positive; got {per_replica_batch_size}."
        )
    strategy = strategy or tf.distribute.get_strategy()
    return per_replica_batch_size * strategy.num_replicas_in_sync


def per_replica_batch_size(
    global_batch: int, strategy: tf.distribute.Strategy | None = None
) -> int:
    """The per-replica share of a global batch; it must divide evenly."""
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if global_batch <= 0 or global_batch % replicas:
        raise ValueError(
            f"The global batch size {global_batch} must be a positive multiple of the "
            f"{replicas} replicas; use e.g. {max(1, global_batch // replicas) * replicas}."
        )
    return global_batch // replicas


def distribute_dataset(
    make_dataset: Callable[[tf.distribute.InputContext, int], tf.data.Dataset],
    global_batch: int,
    strategy: tf.distribute.Strategy | None = None,
):
    """Builds each worker's input pipeline with `distribute_datasets_from_function`.

    `make_dataset(input_context, per_replica_batch)` must return the *unbatched*-then-batched
    pipeline for one worker: it should shard by `input_context.input_pipeline_id` out of
    `input_context.num_input_pipelines` (see `shard_for`) and batch by `per_replica_batch`, so each
    worker reads only its share of the files or examples and each replica gets its own batch.
    The result can be passed to `model.fit` (Keras does not re-batch it).

    Returns:
        A `tf.distribute.DistributedDataset` whose every step holds `global_batch` examples.
    """
    strategy = strategy or tf.distribute.get_strategy()
    per_replica_batch_size(global_batch, strategy)  # validates that replicas divide the batch

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        return make_dataset(input_context, input_context.get_per_replica_batch_size(global_batch))

    return strategy.distribute_datasets_from_function(dataset_fn)


def shard_for(
    dataset: tf.data.Dataset, input_context: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    """This input pipeline's shard of `dataset` (every `num_input_pipelines`-th element)."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return dataset
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)


def set_logical_cpus(count: int) -> list[str]:
    """Splits the first CPU into `count` logical devices (to test multi-replica strategies on a
    laptop or CI). Must run before TensorFlow initialises its devices, i.e. before any op runs
    in the process; returns the logical CPU device names.

    Raises:
        RuntimeError: TensorFlow already initialised its devices with a different layout.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as err:
        current = tf.config.list_logical_devices("CPU")
        if len(current) != count:
            raise RuntimeError(
                f"Cannot split the CPU into {count} logical devices: TensorFlow already "
                f"initialised {len(current)}. Call set_logical_cpus first thing in a fresh process."
            ) from err
    return [d.name for d in tf.config.list_logical_devices("CPU")]
