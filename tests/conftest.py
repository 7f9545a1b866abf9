"""Shared test set-up: offline data, quiet logs, small thread pools for the 2-core CI machine."""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
_shared = REPO.parent / "shared" / "data"
if "TFPRETRAIN_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["TFPRETRAIN_DATA_DIR"] = str(_shared)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts with float32 and a fixed seed, whatever the previous test set."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def data_dir() -> Path:
    value = os.environ.get("TFPRETRAIN_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.fail("TFPRETRAIN_DATA_DIR must point at the offline data sets (see README.md).")
    return Path(value)
