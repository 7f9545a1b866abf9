"""Makes sure Keras will run on its TensorFlow backend, without importing TensorFlow yet."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def configured_backend() -> str:
    """The backend Keras uses or will use: the imported module's, else Keras' own lookup order."""
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "backend"):
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def check_backend() -> None:
    backend = configured_backend()
    if backend != "tensorflow":
        raise ImportError(
            f"tfpretrain needs Keras' TensorFlow backend, but Keras is configured for '{backend}'. "
            'Set the environment variable KERAS_BACKEND=tensorflow (or "backend": "tensorflow" '
            "in ~/.keras/keras.json) before importing keras or tfpretrain."
        )
    # Pin the choice so that a keras.json written later cannot switch it under us.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
