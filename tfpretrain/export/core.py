"""The generic SavedModel writer every family's export goes through."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import tensorflow as tf


def export_saved_model(
    path,
    endpoints: dict[str, tuple[Callable, Sequence[tf.TensorSpec]]],
    track: Sequence[object],
) -> Path:
    """Writes a SavedModel with one serving signature per endpoint, atomically.

    Args:
        path: destination folder; replaced only once the new export is complete.
        endpoints: signature name -> `(function, input_signature)`. Functions should return a
            dict of named tensors, which become the signature's output names.
        track: the Keras layers/models whose variables the functions use.

    Returns:
        The destination path.
    """
    path = Path(path)
    archive = keras.export.ExportArchive()
    for obj in track:
        archive.track(obj)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=list(signature))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        archive.write_out(str(staging / "export"), verbose=False)
        if path.exists():
            shutil.rmtree(path)
        (staging / "export").rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
