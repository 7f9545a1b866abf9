"""The run-directory contract every recipe keeps, through one decorator: `@run_directory`.

* One writer at a time: the run holds `OUT/run.lock` (created with O_CREAT|O_EXCL, naming the
  holder's pid, host and start time). A lock whose process is gone from this host is stale: it
  is reported and taken over. A live one (or one held on another host) refuses the run.
* Nothing is written before the run is accepted. A run directory is accepted when it is new
  (empty, or created now), when `--overwrite` is given (its contents are deleted first), or when
  the settings that define the run equal those recorded in `config.json`; otherwise the run is
  refused before anything is touched, naming each differing setting and the fix.
* Settings that may change on resume (`resumable`: more epochs or steps) may only grow; each
  change starts a new segment in `config.json`'s `segments`.
* A finished run (its `metrics.json` written, nothing changed) rerun says so and returns the
  recorded metrics without training or writing anything.
* `config.json` is written atomically, here only: the run settings and segments on acceptance;
  recipes add their model's part with `record_config`.
* Under a multi-worker job only the chief takes the lock and writes; the other workers read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

LOCK = "run.lock"
CONFIG = "config.json"
METRICS = "metrics.json"
# Settings of dataclasses that do not (yet) mark `defines_run` that never define what is trained.
_NOT_DEFINING = frozenset(
    {
        "out_dir",
        "verbose",
        "tensorboard",
        "strategy",
        "xla",
        "overwrite",
        "checkpoint_every",
        "steps_per_execution",
        "export",
    }
)

_held: set[Path] = set()  # run directories this process holds (a recipe calling another)


class FinishedRun(dict):
    """The recorded metrics of a finished run, returned when it is run again with nothing to do
    (the command line then says so instead of listing files it did not write)."""


class RunDirectoryError(ValueError):
    """The run directory cannot be used for this run (busy, other settings, not writable)."""


def _plain(value: Any) -> Any:
    """`value` with NumPy/TensorFlow numbers and arrays as Python ones, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if hasattr(value, "numpy"):
        return _plain(value.numpy())
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(path, values: dict) -> Path:
    """Writes `values` as pretty JSON atomically (floats from NumPy/TensorFlow converted): a
    reader sees the old file or the new one whole, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(json.dumps(_plain(values), indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_json(path) -> dict | None:
    """The JSON object in `path`, or None when there is none."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def _flag(name: str) -> str:
    return "--" + ("out" if name == "out_dir" else name.replace("_", "-"))


def settings_record(cfg) -> dict:
    """Every field of the settings, as `config.json` records them."""
    return _plain(cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg))


def defining(cfg) -> dict:
    """The settings that must equal the recorded ones to resume. Settings dataclasses have
    `defining()`; for others every field but those that only say where and how it runs."""
    if hasattr(cfg, "defining"):
        return _plain(cfg.defining())
    return {k: v for k, v in settings_record(cfg).items() if k not in _NOT_DEFINING}


def _defaults(cfg) -> dict:
    return _plain(
        {f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}
    )


def resumable(cfg) -> dict:
    """The settings that may grow when a run is continued (`resumable` metadata)."""
    return _plain(
        {
            f.name: getattr(cfg, f.name)
            for f in dataclasses.fields(cfg)
            if f.metadata.get("resumable")
        }
    )


def record_config(out_dir, *, derived: dict | None = None, **parts) -> Path:
    """Adds `parts` (e.g. `model=` the model's config) to the run's `config.json`, keeping the
    run settings and segments recorded when the run was accepted; `derived` values (fixed by
    the run, not set by a flag, e.g. a sequence length taken from a teacher) join the settings."""
    path = Path(out_dir) / CONFIG
    record = read_json(path) or {}
    reserved = {"run", "segments"} & set(parts)
    if reserved:
        raise ValueError(f"{sorted(reserved)} in config.json are written by the run directory.")
    run = record.get("run", {})
    clash = set(derived or {}) & set(run)
    if clash:
        raise ValueError(f"{sorted(clash)} are settings; `derived` may only add values.")
    return write_json(path, {**record, **parts, "run": {**run, **(derived or {})}})


def is_chief_process() -> bool:
    """Whether this process writes the run directory, from TF_CONFIG (no strategy needed)."""
    from tfpretrain.distribute import chief_task

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    if not task.get("type"):
        return True
    return chief_task(task["type"], int(task.get("index", 0)), set(config.get("cluster", {})))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _alive(holder: dict) -> bool:
    """Whether the lock's holder may still run (one on another host cannot be checked)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {}  # created, its record not yet written
    return holder if isinstance(holder, dict) else {}


@contextlib.contextmanager
def _exclusive(path: Path, what: str) -> Iterator[None]:
    """Holds the file `path` (O_CREAT|O_EXCL), waiting up to 5 s for another holder."""
    for _ in range(50):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            time.sleep(0.1)
    else:
        raise RunDirectoryError(
            f"{path} has been there for 5 s ({what}); if no tfpretrain run "
            "uses this directory, delete that file and run again."
        )
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that has not yet written its name into it"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


def acquire_lock(out: Path) -> dict:
    """Takes `out/run.lock` for this process; a stale lock (its process gone from this host) is
    reported and taken over. Raises RunDirectoryError when a live run holds it."""
    path = out / LOCK
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None:
                continue  # released meanwhile
            if not holder or _alive(holder):
                raise RunDirectoryError(
                    f"{out} is in use: {path} is held by {_describe(holder)}. Wait for that run "
                    "to end, or give a new --out; if that process is gone (e.g. its machine "
                    f"stopped), delete {path} and run again."
                ) from None
            with _exclusive(path.with_name(LOCK + ".takeover"), "a stale lock's take-over"):
                if _read_lock(path) == holder:  # not taken over by another process meanwhile
                    print(
                        f"tfpretrain: taking over the stale lock {path} of {_describe(holder)}, "
                        "which is no longer running."
                    )
                    path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        return record


def release_lock(out: Path, record: dict) -> None:
    path = out / LOCK
    if _read_lock(path) == record:
        path.unlink()


def _prepare(out: Path) -> bool:
    """Checks that `out` is (or can become) a writable directory; returns whether it was
    created now."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(
            f"--out {out} is a file, not a directory; give a directory (new "
            "or a run directory) instead."
        )
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirectoryError(
            f"--out {out} cannot be created ({err.strerror}); give a directory you can write to."
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"--out {out} is not writable; give a directory you can write to.")
    return created


def differences(recorded: dict, current: dict, defaults: dict) -> list[str]:
    """`--flag: old -> new` for each setting whose value differs from the recorded one (a setting
    the record predates counts as its default)."""
    changed = []
    for key, value in current.items():
        old = recorded[key] if key in recorded else defaults.get(key)
        if old != value:
            changed.append(f"{_flag(key)}: {old!r} -> {value!r}")
    return changed


def shrinking(recorded: dict, current: dict) -> list[str]:
    return [
        f"{_flag(k)}: {recorded[k]!r} -> {v!r}"
        for k, v in current.items()
        if isinstance(recorded.get(k), (int, float))
        and isinstance(v, (int, float))
        and v < recorded[k]
    ]


@dataclasses.dataclass
class RunDirectory:
    """The decision for one run in `out`: `finished` holds the recorded metrics of a finished
    run that needs nothing more, else the run goes ahead (`resumed`: it continues one)."""

    out: Path
    finished: dict | None = None
    resumed: bool = False


def _accept(out: Path, cfg, *, write: bool) -> RunDirectory:
    """Compares `cfg` with the run recorded in `out` and, if `write`, records the accepted run."""
    record = read_json(out / CONFIG)
    refuse = f"Give --overwrite to start afresh (deleting what {out} holds), or a new --out."
    if write and getattr(cfg, "overwrite", False):
        for child in out.iterdir():
            if child.name != LOCK:
                shutil.rmtree(
                    child
                ) if child.is_dir() and not child.is_symlink() else child.unlink()
        record = None
    elif record is None:
        if out.is_dir() and any(child.name != LOCK for child in out.iterdir()):
            raise RunDirectoryError(
                f"--out {out} holds files but no {CONFIG}: it is not a run "
                f"directory of this version. {refuse}"
            )
    elif "run" not in record:
        raise RunDirectoryError(f"{out / CONFIG} records no run settings. {refuse}")
    grows = resumable(cfg)
    segments = list((record or {}).get("segments") or [])
    if record is not None:
        changed = differences(record["run"], defining(cfg), _defaults(cfg))
        if changed:
            raise RunDirectoryError(
                f"{out} holds a run with other settings; nothing was changed. Differing: "
                f"{'; '.join(changed)}. {refuse}"
            )
        last = segments[-1] if segments else {k: record["run"].get(k) for k in grows}
        smaller = shrinking(last, grows)
        if smaller:
            raise RunDirectoryError(
                f"{out} holds a run that already went further ({'; '.join(smaller)}): a resumed "
                f"run may only grow these. {refuse}"
            )
        metrics = read_json(out / METRICS)
        unchanged = all(last.get(k) == v for k, v in grows.items())
        if unchanged and metrics is not None and not metrics.get("failed"):
            print(
                f"{out} holds a finished run with these settings ({out / METRICS}); nothing to "
                "do. Raise --epochs/--steps to continue it, or give --overwrite to train again."
            )
            return RunDirectory(out, finished=metrics)
        if not unchanged:
            segments.append({**grows, "started": _now()})
    else:
        segments = [{**grows, "started": _now()}]
    if write:
        # metrics.json marks a finished run: gone before the record says the run goes further.
        (out / METRICS).unlink(missing_ok=True)
        write_json(
            out / CONFIG, {**(record or {}), "run": settings_record(cfg), "segments": segments}
        )
    return RunDirectory(out, resumed=record is not None)


@contextlib.contextmanager
def open_run(cfg) -> Iterator[RunDirectory]:
    """Holds `cfg.out_dir` for one run (see the module's docstring): yields the decision."""
    out = Path(cfg.out_dir).absolute()
    if out in _held or not is_chief_process():
        # A recipe run inside another's (which holds the directory), or a non-chief worker.
        yield _accept(out, cfg, write=False) if out not in _held else RunDirectory(out)
        return
    created = _prepare(out)
    lock = acquire_lock(out)
    _held.add(out)
    new = False
    try:
        decision = _accept(out, cfg, write=True)
        new = not decision.resumed and decision.finished is None
        yield decision
    except BaseException:
        if new and {p.name for p in out.iterdir()} <= {LOCK, CONFIG}:
            # Failed before writing anything but its record: leave no trace.
            (out / CONFIG).unlink(missing_ok=True)
            release_lock(out, lock)
            lock = None
            if created:
                with contextlib.suppress(OSError):
                    out.rmdir()
        raise
    finally:
        _held.discard(out)
        if lock is not None:
            release_lock(out, lock)


def run_directory(recipe: Callable) -> Callable:
    """Makes a recipe's `run(cfg)` keep the run-directory contract: it runs only once `cfg.out_dir`
    is accepted, and a finished run returns its recorded metrics instead."""

    @functools.wraps(recipe)
    def run(cfg, *args, **kwargs):
        with open_run(cfg) as directory:
            if directory.finished is not None:
                return FinishedRun(directory.finished)
            return recipe(cfg, *args, **kwargs)

    return run
