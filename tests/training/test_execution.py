"""Which execution path a run takes, and why: `xla_decision`, `machine()`, and the `execution`
part that `fit` records in the run directory's `config.json` and says in the log."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain import distribute
from tfpretrain.distribute import machine, set_precision, xla_decision, xla_for_training
from tfpretrain.training import fit
from tfpretrain.training.rundir import open_run

CPU_BF16 = (
    "auto: bfloat16 on a CPU-only machine: TensorFlow's oneDNN kernels use the CPU's bfloat16 "
    "instructions, XLA's CPU backend does not"
)


@dataclasses.dataclass
class TinyRun:
    """The settings of a tiny run (the run directory records them, `xla` among them)."""

    out_dir: str
    xla: str = "auto"
    epochs: int = 1


def _model(jit_compile: bool) -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=jit_compile)
    return model


def _data() -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(-1, keepdims=True))).batch(4)


def _train(tmp_path, xla: str, jit_compile: bool) -> dict:
    """Trains the tiny model (3 steps) in a run directory; returns its `config.json`."""
    cfg = TinyRun(out_dir=str(tmp_path / "run"), xla=xla)
    with open_run(cfg) as directory:
        assert directory.finished is None
        fit(_model(jit_compile), _data(), epochs=cfg.epochs, out_dir=cfg.out_dir, verbose=0)
    return json.loads((tmp_path / "run" / "config.json").read_text())


def _check_common(execution: dict) -> None:
    assert set(execution) == {
        "xla",
        "xla_per_replica",
        "xla_reason",
        "precision",
        "strategy",
        "devices",
        "machine",
    }
    assert execution["xla_per_replica"] is False  # the default strategy: Keras' own XLA
    assert execution["precision"] == "float32"
    assert execution["strategy"] == {"name": "default", "replicas": 1}
    assert len(execution["devices"]) == 1 and "device:" in execution["devices"][0]
    assert execution["machine"]["cpu"]
    assert isinstance(execution["machine"]["onednn"], bool)


def test_fit_records_xla_on_and_why_in_config_and_log(tmp_path, capsys):
    record = _train(tmp_path, "auto", jit_compile=xla_for_training("auto"))
    execution = record["execution"]
    _check_common(execution)
    assert execution["xla"] is True
    assert execution["xla_reason"] == "auto: float32 trains fastest under XLA"
    assert record["run"]["xla"] == "auto"  # the run's settings are kept
    log = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Execution:")]
    assert len(log) == 1  # said once
    assert log[0].startswith(
        "Execution: XLA on (auto: float32 trains fastest under XLA), policy float32, default "
        "strategy with 1 replica on "
    )
    assert f"CPU: {execution['machine']['cpu']}" in log[0]


def test_fit_records_xla_off(tmp_path, capsys):
    execution = _train(tmp_path, "off", jit_compile=xla_for_training("off"))["execution"]
    _check_common(execution)
    assert execution["xla"] is False
    assert execution["xla_reason"] == "--xla off"
    assert "Execution: XLA off (--xla off), policy float32" in capsys.readouterr().out


def test_fit_reads_xla_from_the_compiled_model_not_the_setting(tmp_path):
    # A model compiled against the run's --xla setting: the record follows the model and says so.
    execution = _train(tmp_path, "off", jit_compile=True)["execution"]
    assert execution["xla"] is True
    assert execution["xla_reason"] == "--xla off; but the model was compiled with XLA on"


def test_fit_says_why_keras_turned_xla_off(tmp_path):
    # Keras compiles without XLA under op determinism (`--deterministic`), whatever --xla says.
    from tensorflow.python.framework.config import disable_op_determinism

    tf.config.experimental.enable_op_determinism()
    try:
        execution = _train(tmp_path, "auto", jit_compile=True)["execution"]
    finally:
        disable_op_determinism()
    assert execution["xla"] is False
    assert execution["xla_reason"] == (
        "auto: float32 trains fastest under XLA; but the model was compiled with XLA off: Keras "
        "turns XLA off while TensorFlow's op determinism is on (--deterministic)"
    )


def test_fit_outside_a_run_directory_records_nothing(tmp_path, capsys):
    fit(_model(False), _data(), epochs=1, out_dir=tmp_path, verbose=0)
    assert not (tmp_path / "config.json").exists()
    assert "Execution:" not in capsys.readouterr().out


def test_xla_decision_for_each_mode():
    set_precision("fp32")
    assert xla_decision("auto") == (True, "auto: float32 trains fastest under XLA")
    assert xla_decision("on") == (True, "--xla on")
    assert xla_decision("off") == (False, "--xla off")
    for mode in ("auto", "on", "off"):
        assert xla_for_training(mode) is xla_decision(mode)[0]
    with pytest.raises(ValueError, match="auto, on or off"):
        xla_decision("yes")


def test_xla_decision_for_bfloat16_with_and_without_accelerators(monkeypatch):
    set_precision("bf16")
    try:
        monkeypatch.setattr(distribute, "_has_accelerator", lambda: False)
        assert xla_decision("auto") == (False, CPU_BF16)
        assert xla_for_training("auto") is False
        assert xla_decision("on") == (True, "--xla on")  # --xla overrides
        monkeypatch.setattr(distribute, "_has_accelerator", lambda: True)
        assert xla_decision("auto") == (True, "auto: bfloat16 with a GPU or TPU trains under XLA")
    finally:
        set_precision("fp32")
    assert xla_decision("auto")[0] is True


def test_machine_describes_the_cpu_and_onednn():
    about = machine()
    assert set(about) == {"cpu", "vendor", "isa", "onednn", "TF_ENABLE_ONEDNN_OPTS"}
    assert isinstance(about["cpu"], str) and about["cpu"]
    assert set(about["isa"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert isinstance(about["onednn"], bool)
