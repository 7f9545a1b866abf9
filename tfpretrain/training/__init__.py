"""Training helpers shared by every family: the fit wrapper, callbacks, run-directory files."""

from tfpretrain.training.callbacks import EpochTimer, NanGuard, NonFiniteLossError
from tfpretrain.training.fit import fit
from tfpretrain.training.optimizers import adamw
from tfpretrain.training.rundir import record_config, run_directory, write_json
from tfpretrain.training.schedules import WarmupSchedule, warmup_steps

__all__ = [
    "EpochTimer",
    "NanGuard",
    "NonFiniteLossError",
    "WarmupSchedule",
    "adamw",
    "fit",
    "record_config",
    "run_directory",
    "warmup_steps",
    "write_json",
]
