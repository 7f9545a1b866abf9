"""How a run executes, recorded in its `config.json` (`execution`) and logged once by `fit`:
whether the train step is XLA-compiled and why, the precision policy and why, the strategy and
its devices, and the machine (CPU model, vendor, oneDNN state), so that figures taken on
different machines or paths can be told apart."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf


def _run_directory(out_dir) -> tuple[Path, dict] | None:
    """The run directory `out_dir` belongs to, with its `config.json` record: `out_dir` itself,
    or its parent for a recipe that trains in a subfolder of its run directory (distill's
    `distill/` and `baseline/`). A run directory's record holds the run's settings (`run`,
    written when the run was accepted); None when neither has one (`fit` outside a run)."""
    from tfpretrain.training.rundir import CONFIG

    out = Path(out_dir)
    for directory in (out, out.parent):
        try:
            record = json.loads((directory / CONFIG).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("run"), dict):
            return directory, record
    return None


def _devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices the strategy's replicas run on in this process; the default strategy has no
    list: TensorFlow places its ops on the first GPU, else the CPU."""
    try:
        return list(strategy.extended.worker_devices)
    except (RuntimeError, NotImplementedError, AttributeError):
        logical = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [logical[0].name] if logical else []


def _strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The strategy's class as `tf.distribute` names it (its Python classes are named otherwise,
    e.g. `CollectiveAllReduceStrategy`); `default` for the default (single-device) strategy."""
    for name in (
        "TPUStrategy",
        "MultiWorkerMirroredStrategy",
        "MirroredStrategy",
        "OneDeviceStrategy",
        "ParameterServerStrategy",
    ):
        public = getattr(tf.distribute, name, None)
        if isinstance(public, type) and isinstance(strategy, public):
            return name
    if type(strategy) is type(tf.distribute.get_strategy()):  # (outside any strategy scope)
        return "default"
    return type(strategy).__name__


def _xla_refused(model: keras.Model) -> str | None:
    """Why a model compiled with `jit_compile=True` trains without XLA, when Keras says: it turns
    XLA off (with a warning) for layers without XLA support and under op determinism."""
    if model.run_eagerly:
        return "it runs eagerly"
    layers = getattr(model, "_flatten_layers", lambda: [])()
    unsupported = [layer.name for layer in layers if not getattr(layer, "supports_jit", True)]
    if unsupported:
        return f"Keras turns XLA off for layers without XLA support ({', '.join(unsupported[:3])})"
    from tensorflow.python.framework.config import is_op_determinism_enabled

    if is_op_determinism_enabled():
        return "Keras turns XLA off while TensorFlow's op determinism is on (--deterministic)"
    return None


def _execution(model: keras.Model, mode: str | None) -> dict:
    """How `model` trains: the `execution` part of `config.json`.

    `xla` is read from the compiled model, after `adapt_to_strategy`: Keras' `jit_compile`, or
    the per-replica XLA steps that `use_replica_xla` installs under multi-device strategies (it
    turns `jit_compile` off; `xla_per_replica` says so). The reason is `xla_decision(mode)`'s,
    `mode` being the run's recorded `xla` setting (every recipe compiles with
    `jit_compile=xla_for_training(cfg.xla)` under the same precision policy, so recomputing it
    here gives the recipe's decision without passing anything); when the compiled model
    disagrees with that decision the reason says so, and why where Keras turned XLA off
    (`_xla_refused`); without a recorded `xla` setting it is None.

    `precision` is Keras' global dtype policy, and `precision_reason` why `set_precision` chose
    it (`precision_decision`'s reason: the recipe's call knew the model's width, so it is kept
    rather than recomputed); None for a policy set otherwise.
    """
    from tfpretrain.distribute import XLA_MODES, machine, precision_reason, xla_decision
    from tfpretrain.training.xla import replica_xla_steps

    per_replica = replica_xla_steps(model) is not None
    xla = not model.run_eagerly and (bool(model.jit_compile) or per_replica)
    reason = None
    if mode in XLA_MODES:
        decided, reason = xla_decision(mode)
        if decided != xla:
            reason += f"; but the model was compiled with XLA {'on' if xla else 'off'}"
            cause = None if xla else _xla_refused(model)
            if cause:
                reason += f": {cause}"
    strategy = model.distribute_strategy
    return {
        "xla": xla,
        "xla_per_replica": per_replica,
        "xla_reason": reason,
        "precision": keras.mixed_precision.global_policy().name,
        "precision_reason": precision_reason(),
        "strategy": {
            "name": _strategy_name(strategy),
            "replicas": int(strategy.num_replicas_in_sync),
        },
        "devices": _devices(strategy),
        "machine": machine(),
    }


def _describe_execution(execution: dict) -> str:
    """The one log line of `execution`."""
    xla = "XLA " + ("on" if execution["xla"] else "off")
    if execution["xla_per_replica"]:
        xla += " per replica"
    about = execution["machine"]
    strategy = execution["strategy"]
    name = "default strategy" if strategy["name"] == "default" else strategy["name"]
    replicas = f"{strategy['replicas']} replica" + ("s" if strategy["replicas"] != 1 else "")
    return (
        f"Execution: {xla} ({execution['xla_reason'] or 'the run records no --xla'}), "
        f"policy {execution['precision']} "
        f"({execution['precision_reason'] or 'not set by --precision'}), {name} with {replicas} on "
        f"{', '.join(execution['devices'])}, CPU: {about['cpu']} "
        f"({about['vendor'] or 'unknown vendor'}), oneDNN {'on' if about['onednn'] else 'off'}"
    )


def record_execution(model: keras.Model, out_dir) -> None:
    """Records how `model` trains in its run directory's `config.json` (`execution`, replaced by
    each run start, so after a resume it describes the latest process) and says it in the log;
    only inside a run directory. `fit` calls it in the chief process only."""
    from tfpretrain.training.rundir import record_config

    found = _run_directory(out_dir)
    if found is None:
        return
    directory, record = found
    execution = _execution(model, record["run"].get("xla"))
    record_config(directory, execution=execution)
    print(_describe_execution(execution))
