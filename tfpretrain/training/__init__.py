"""Training helpers shared by every family: the fit wrapper, callbacks, run-directory files."""

from tfpretrain.training.callbacks import EpochTimer, NanGuard, NonFiniteLossError
from tfpretrain.training.fit import fit, write_json

__all__ = ["EpochTimer", "NanGuard", "NonFiniteLossError", "fit", "write_json"]
