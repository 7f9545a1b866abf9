"""The generic SavedModel writer every family's export goes through.

Layout: `export_saved_model(base, ...)` writes `base/<version>/` (version 1 unless asked), the
layout TF Serving's `model_base_path` expects: it serves the highest numeric folder and
hot-swaps to a newer one when it appears. `find_saved_model(base)` gives the folder a loader
should open, for a base path, a version folder or an old flat export alike.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import keras
import tensorflow as tf

SERVING_DEFAULT = "serving_default"
# Suffixes of the variants `xla_variants` adds next to an endpoint.
XLA_SUFFIX = "_xla"
NO_XLA_SUFFIX = "_no_xla"

EndpointSpec = tuple[Callable, Sequence[tf.TensorSpec]]


def _is_saved_model(path: Path) -> bool:
    return (path / "saved_model.pb").is_file()


def _versions(base: Path) -> list[int]:
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if re.fullmatch(r"\d+", p.name) and _is_saved_model(p)
    )


def find_saved_model(path) -> Path:
    """The SavedModel folder to load for `path`.

    Args:
        path: a versioned base (`OUT/saved_model`: its highest numeric version), a version
            folder, a flat SavedModel (exports from before the versioned layout), or a run
            directory (its `saved_model/`).

    Returns:
        The folder holding `saved_model.pb`.

    Raises:
        FileNotFoundError: naming the places looked in.

    Example:

    >>> tf.saved_model.load(str(find_saved_model("out/saved_model")))  # doctest: +SKIP
    """
    path = Path(path)
    for base in (path, path / "saved_model"):
        if _is_saved_model(base):
            return base
        versions = _versions(base)
        if versions:
            return base / str(versions[-1])
    raise FileNotFoundError(
        f"No SavedModel at {path}: looked for {path}/saved_model.pb, {path}/<version>/"
        f"saved_model.pb and {path}/saved_model/<version>/saved_model.pb."
    )


def xla_variants(
    name: str,
    build: Callable[[bool], Callable],
    signature: Sequence[tf.TensorSpec],
    *,
    xla: bool = False,
) -> dict[str, EndpointSpec]:
    """An endpoint and its twin compiled the other way, for servers with and without XLA.

    TF Serving runs XLA-compiled functions on CPU only when started with
    `--xla_cpu_compilation_enabled`, so every kind keeps a signature without XLA; where XLA is
    faster (measured by `tools/bench/serving.py`) it is offered too.

    Args:
        name: the endpoint's name; it is compiled as `xla` says.
        build: `build(jit_compile)` returns the endpoint's function, putting the part that XLA
            can compile (the model, not string ops) in a `tf.function(jit_compile=jit_compile)`.
        signature: the input signature, shared by both.
        xla: whether `name` itself is the XLA variant; the twin is `name + "_no_xla"` when
            True, else `name + "_xla"`.

    Returns:
        `{name: (fn, signature), twin: (fn, signature)}`, to merge into the endpoints of
        `export_saved_model`.

    Example:

    >>> endpoints = xla_variants("serve", make_serve, spec)  # serve and serve_xla
    ... # doctest: +SKIP
    """
    twin = name + (NO_XLA_SUFFIX if xla else XLA_SUFFIX)
    return {name: (build(xla), signature), twin: (build(not xla), signature)}


def jit(fn: Callable, jit_compile: bool) -> Callable:
    """`fn` as a `tf.function`, XLA-compiled or not (helper for `xla_variants` builders)."""
    return tf.function(fn, jit_compile=bool(jit_compile), autograph=False)


def export_saved_model(
    path,
    endpoints: dict[str, EndpointSpec],
    track: Sequence[object],
    *,
    default: str | None = None,
    version: int | Literal["next"] = 1,
) -> Path:
    """Writes a SavedModel with one serving signature per endpoint to `path/<version>/`.

    The version folder appears complete or not at all: the export is written beside it under a
    dot-name (which TF Serving ignores) and renamed into place. An existing folder of the same
    version is replaced; a flat export at `path` from before the versioned layout is removed.

    Args:
        path: the base folder (TF Serving's `model_base_path`).
        endpoints: signature name -> `(function, input_signature)`. Functions return a dict of
            named tensors, which become the signature's output names.
        track: the Keras layers/models (and lookup-table holders) the functions use.
        default: the endpoint also published as `serving_default`, the signature TF Serving
            uses when a request names none. None: the first endpoint (Keras' rule).
        version: a positive integer, or "next" for one above the highest version present
            (TF Serving then hot-swaps to it).

    Returns:
        The version folder written, e.g. `path/1`.

    Example:

    >>> export_saved_model("out/saved_model", {"encode": (encode, spec)}, [model],
    ...                    default="encode")  # doctest: +SKIP
    PosixPath('out/saved_model/1')
    """
    path = Path(path)
    if not endpoints:
        raise ValueError("Give at least one endpoint.")
    if SERVING_DEFAULT in endpoints:
        raise ValueError(f"Name the default endpoint with `default=`, not '{SERVING_DEFAULT}'.")
    default = next(iter(endpoints)) if default is None else default
    if default not in endpoints:
        raise ValueError(f"default={default!r} is not an endpoint; endpoints: {list(endpoints)}.")
    if version == "next":
        version = (_versions(path) or [0])[-1] + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be an integer >= 1 or 'next'; got {version!r}.")

    archive = keras.export.ExportArchive()
    for obj in track:
        archive.track(obj)
    for name, (fn, signature) in endpoints.items():
        decorated = archive.add_endpoint(name, fn, input_signature=list(signature))
        if name == default:
            # The same traced function under a second key: no second copy of the graph.
            decorated.get_concrete_function()
            archive.add_endpoint(SERVING_DEFAULT, decorated)

    if _is_saved_model(path):
        shutil.rmtree(path)  # a flat export from before the versioned layout
    path.mkdir(parents=True, exist_ok=True)
    target = path / str(version)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=path))
    try:
        archive.write_out(str(staging / "export"), verbose=False)
        if target.exists():
            target.rename(staging / "old")
        (staging / "export").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
