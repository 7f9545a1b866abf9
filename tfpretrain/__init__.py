"""tfpretrain: Keras 3 / TensorFlow-native pre-training and fine-tuning.

Submodules load on first use (`tfpretrain.layers`, `tfpretrain.data`, ...), so that the command
line can choose TensorFlow's runtime settings before TensorFlow is imported.
"""

import importlib

from tfpretrain._backend import check_backend

__version__ = "0.1.0"

check_backend()

_SUBMODULES = {
    "data",
    "distribute",
    "export",
    "layers",
    "losses",
    "metrics",
    "models",
    "plots",
    "recipes",
    "training",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"tfpretrain.{name}")
    raise AttributeError(f"module 'tfpretrain' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES) + ["__version__"]
