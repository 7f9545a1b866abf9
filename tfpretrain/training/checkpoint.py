"""Crash-safe training state: model and optimizer variables, step, data position and RNG state.

Why not `keras.callbacks.BackupAndRestore`: in this Keras version it writes
`latest.weights.h5` in place (a kill during the write leaves a half-written file that the next run
fails on), writes the epoch number to a separate JSON file afterwards (a kill in between pairs new
weights with an old position), records only the epoch, so a run killed mid-epoch replays that
epoch's batches on weights that have already seen them, and keeps no data-pipeline position.

Here one checkpoint is one `.npz` file `step-000000123.npz` holding every model variable (weights
and the layers' random-seed states, i.e. the dropout RNG), every optimizer variable (moments, the
iteration count, loss scale, gradient accumulators) and a JSON header: the global step, the
epoch, the number of batches drawn from the training stream (the data position), the
per-epoch logs so far and the name/shape/dtype of every variable. It is written to a temporary
name, flushed to disk and renamed into place, so a checkpoint either exists whole or not at all;
a reader never sees a partial file. The newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

FORMAT = "tfpretrain-training-state-1"
_NAME = re.compile(r"^step-(\d{9,})\.npz$")


class CheckpointError(ValueError):
    """A training checkpoint cannot be used (corrupt, or from a different model)."""


def _is_local(path: str) -> bool:
    return "://" not in path


def _optimizers(model: keras.Model) -> list:
    """`model.optimizer`, or the optimizers a several-player model (a GAN) lists in
    `training_optimizers`."""
    several = getattr(model, "training_optimizers", None)
    if several:
        return list(several)
    return [model.optimizer] if model.optimizer is not None else []


def first_non_finite(variables, values=None) -> str | None:
    """The path of the first float variable holding NaN or Inf, or None; `values` are the
    variables' numpy values when the caller already has them."""
    if values is None:
        values = [keras.ops.convert_to_numpy(v) for v in variables]
    for variable, value in zip(variables, values, strict=True):
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            return variable.path
    return None


def _state_variables(model: keras.Model) -> tuple[list, list]:
    optimizer_vars = [v for optimizer in _optimizers(model) for v in optimizer.variables]
    return list(model.variables), optimizer_vars


def _spec(variables) -> list[list]:
    return [
        [v.path if hasattr(v, "path") else v.name, list(v.shape), str(np.dtype(v.dtype))]
        for v in variables
    ]


def build_optimizer(model: keras.Model) -> None:
    """Creates the optimizer's variables (under the model's strategy) so they can be saved or
    loaded."""
    optimizer = model.optimizer
    if getattr(model, "training_optimizers", None):
        return  # such models build their own optimizers, each on its own variables
    if optimizer is not None and not optimizer.built:
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)


def checkpoints(directory) -> list[Path]:
    """The complete checkpoints in `directory`, oldest first (temporary files are ignored)."""
    directory = str(directory)
    if not tf.io.gfile.isdir(directory):
        return []
    found = []
    for name in tf.io.gfile.listdir(directory):
        match = _NAME.match(name.rstrip("/"))
        if match:
            found.append((int(match.group(1)), Path(directory) / name))
    return [p for _, p in sorted(found)]


def save_state(model: keras.Model, directory, meta: dict, keep: int = 2) -> Path:
    """Writes the model's training state plus `meta` (must hold `step`) atomically; returns the
    path.

    Raises:
        FloatingPointError: a variable holds NaN or Inf (nothing is written then, so the last
            checkpoint stays a good one).
    """
    build_optimizer(model)
    model_vars, optimizer_vars = _state_variables(model)
    arrays = {}
    for prefix, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
        values = [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]
        bad = first_non_finite(variables, values)
        if bad is not None:
            raise FloatingPointError(
                f"Variable {bad} holds NaN/Inf at step {meta['step']}; not checkpointing it. "
                "The last checkpoint written before stays intact."
            )
        arrays.update({f"{prefix}/{i:05d}": value for i, value in enumerate(values)})
    header = dict(
        meta,
        format=FORMAT,
        model_name=model.name,
        model_variables=_spec(model_vars),
        optimizer_variables=_spec(optimizer_vars),
    )
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)

    directory = str(directory)
    tf.io.gfile.makedirs(directory)
    final = f"{directory}/step-{int(meta['step']):09d}.npz"
    tmp = f"{final}.tmp-{os.getpid()}"
    if _is_local(directory):
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)  # atomic on POSIX: readers see the old set or the new file whole
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the rename itself durable
        finally:
            os.close(fd)
    else:  # object stores: the object appears whole on close; rename is copy + delete
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(buffer.getvalue())
        tf.io.gfile.rename(tmp, final, overwrite=True)
    for old in checkpoints(directory)[:-keep]:
        tf.io.gfile.remove(str(old))
    return Path(final)


def read_state(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Reads a checkpoint file; returns `(header, arrays)`.

    Raises:
        CheckpointError: the file is truncated, corrupt or not a tfpretrain training checkpoint.
    """
    path = str(path)
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reading checks every member's CRC
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"The training checkpoint {path} is corrupt or unreadable "
            f"({type(err).__name__}: {err}). Move it away to resume from an older checkpoint in "
            "the same folder, or start afresh with a new output directory (or resume=False / "
            "--no-resume)."
        ) from err
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a tfpretrain training checkpoint (format {header.get('format')!r})."
        )
    return header, arrays


def restore_state(model: keras.Model, path) -> dict:
    """Loads a checkpoint into `model` and its optimizer; returns the checkpoint's header.

    Every variable's name, shape and dtype is checked before any is assigned, so a mismatch
    leaves the model untouched.

    Raises:
        CheckpointError: corrupt file, or a checkpoint of a different model or optimizer.
    """
    header, arrays = read_state(path)
    build_optimizer(model)
    model_vars, optimizer_vars = _state_variables(model)
    for prefix, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
        saved = header[f"{prefix}_variables"]
        current = _spec(variables)
        if len(saved) != len(current):
            raise CheckpointError(
                f"The checkpoint {path} has {len(saved)} {prefix} variables but the {prefix} being "
                f"trained has {len(current)}: it comes from a different model or optimizer "
                "configuration. Use a new output directory, or the configuration it was written "
                "with."
            )
        for (name, shape, dtype), (cur_name, cur_shape, cur_dtype) in zip(
            saved, current, strict=True
        ):
            if shape != cur_shape or dtype != cur_dtype:
                raise CheckpointError(
                    f"The checkpoint {path} stores {prefix} variable {name} with shape {shape} "
                    f"({dtype}) but the model being trained has {cur_name} with shape {cur_shape} "
                    f"({cur_dtype}): it comes from a different model configuration. Use a new "
                    "output directory, or the configuration it was written with."
                )
    for prefix, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
        for i, v in enumerate(variables):
            v.assign(arrays[f"{prefix}/{i:05d}"])
    return header


def latest_state(directory) -> Path | None:
    """The newest checkpoint in `directory`, or None."""
    found = checkpoints(directory)
    return found[-1] if found else None


def remove_temporary_files(directory) -> None:
    """Deletes temporary files left by a process killed while writing a checkpoint."""
    directory = str(directory)
    if tf.io.gfile.isdir(directory):
        for name in tf.io.gfile.listdir(directory):
            if ".npz.tmp-" in name:
                tf.io.gfile.remove(f"{directory}/{name}")


def load_keras_model(path, **kwargs) -> keras.Model:
    """`keras.models.load_model` with errors that say what is wrong with the file.

    Keras reports a truncated or corrupt `.keras` file as "File not found"; this names the file,
    says whether it is missing or not a `.keras` archive, and how to get a good one back.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; rerun the command that writes it.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a readable .keras file (truncated or corrupt: "
            f"{path.stat().st_size} bytes, not a zip archive). Rerun the command that wrote it."
        )
    return keras.models.load_model(path, **kwargs)
