"""Which execution path a run takes, and why: `precision_decision`, `xla_decision`, `machine()`,
and the `execution` part that `fit` records in the run directory's `config.json` and says in the
log."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfpretrain import distribute
from tfpretrain.distribute import (
    machine,
    precision_decision,
    precision_reason,
    set_precision,
    xla_decision,
    xla_for_training,
)
from tfpretrain.training import fit
from tfpretrain.training.rundir import open_run

CPU_BF16 = (
    "auto: bfloat16 on a CPU-only machine: TensorFlow's oneDNN kernels use the CPU's bfloat16 "
    "instructions, XLA's CPU backend does not"
)
WIDE = "auto: bfloat16 on a CPU with AMX, width 512 >= 384"


@dataclasses.dataclass
class TinyRun:
    """The settings of a tiny run (the run directory records them, `xla` among them)."""

    out_dir: str
    xla: str = "auto"
    epochs: int = 1


def _fake_machine(
    monkeypatch,
    *,
    accelerator=False,
    flags=("avx512f", "avx512_bf16", "amx_bf16"),
    onednn=True,
):
    """Makes `precision_decision` see a machine with (or without) a GPU, these CPU flags and
    oneDNN on or off."""
    monkeypatch.setattr(distribute, "_has_accelerator", lambda: accelerator)
    monkeypatch.setattr(distribute, "_cpu_flags", lambda: set(flags))
    monkeypatch.setattr(distribute, "_onednn_on", lambda: onednn)


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
        "precision_reason",
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
        "Execution: XLA on (auto: float32 trains fastest under XLA), policy float32 (not set by "
        "--precision), default strategy with 1 replica on "
    )
    assert f"CPU: {execution['machine']['cpu']}" in log[0]


def test_fit_records_xla_off(tmp_path, capsys):
    execution = _train(tmp_path, "off", jit_compile=xla_for_training("off"))["execution"]
    _check_common(execution)
    assert execution["xla"] is False
    assert execution["xla_reason"] == "--xla off"
    assert "Execution: XLA off (--xla off), policy float32 (" in capsys.readouterr().out


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


def test_fit_records_the_precision_and_why(tmp_path, capsys, monkeypatch):
    _fake_machine(monkeypatch)
    assert set_precision("auto", width=512) == "mixed_bfloat16"
    execution = _train(tmp_path, "auto", jit_compile=xla_for_training("auto"))["execution"]
    assert execution["precision"] == "mixed_bfloat16"
    assert execution["precision_reason"] == WIDE
    assert execution["xla"] is False and execution["xla_reason"] == CPU_BF16
    assert f"policy mixed_bfloat16 ({WIDE}), default strategy" in capsys.readouterr().out


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


def test_precision_auto_is_bf16_only_for_wide_models_on_a_cpu_with_amx(monkeypatch):
    _fake_machine(monkeypatch)
    assert precision_decision("auto", 512) == ("bf16", WIDE)
    assert precision_decision("auto", 384)[0] == "bf16"  # `shakespeare`'s width
    assert precision_decision("auto", 128) == (  # `nano`'s
        "fp32",
        "auto: float32, width 128 is below 384, where bfloat16 on AMX starts to pay",
    )
    assert precision_decision("auto", 383)[0] == "fp32"
    assert precision_decision("auto") == ("fp32", "auto: float32, no model width given")


def test_precision_auto_takes_avx512_bf16_without_amx_at_the_same_width(monkeypatch):
    # AMD EPYC (AVX512-BF16, no AMX): bf16 through oneDNN 1.40x float32 XLA at 384, 0.65x at 128.
    _fake_machine(monkeypatch, flags=("avx2", "avx512f", "avx512_bf16"))
    assert precision_decision("auto", 384) == (
        "bf16",
        "auto: bfloat16 on a CPU with AVX512-BF16, width 384 >= 384",
    )
    assert precision_decision("auto", 128) == (
        "fp32",
        "auto: float32, width 128 is below 384, where bfloat16 on AVX512-BF16 starts to pay",
    )


def test_precision_auto_is_fp32_without_a_bf16_unit_without_onednn_or_with_a_gpu(monkeypatch):
    _fake_machine(monkeypatch, flags=("avx2", "avx512f"))
    assert precision_decision("auto", 768) == (
        "fp32",
        "auto: float32, the CPU has no bfloat16 unit (amx_bf16 or avx512_bf16)",
    )
    _fake_machine(monkeypatch, onednn=False)  # AMX, but TF_ENABLE_ONEDNN_OPTS=0
    assert precision_decision("auto", 768) == (
        "fp32",
        "auto: float32, oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0) and without it bfloat16 "
        "products are no faster",
    )
    _fake_machine(monkeypatch, accelerator=True)  # AMX too, but a GPU
    assert precision_decision("auto", 768) == (
        "fp32",
        "auto: float32 with a GPU or TPU (--precision bf16 or fp16 to mix there)",
    )


@pytest.mark.parametrize("accelerator", [False, True])
def test_explicit_precisions_are_kept_and_unknown_ones_refused(monkeypatch, accelerator):
    _fake_machine(monkeypatch, accelerator=accelerator)
    for precision in ("fp32", "bf16", "fp16"):
        for width in (None, 128, 768):
            assert precision_decision(precision, width) == (precision, "as requested")
    for bad in ("fp8", "float32", "AUTO"):
        with pytest.raises(ValueError, match=f"Unknown precision '{bad}'; choose one of auto, "):
            precision_decision(bad, 768)
    with pytest.raises(ValueError, match="choose one of auto, fp32, bf16, fp16"):
        set_precision("fp8")
    assert keras.mixed_precision.global_policy().name == "float32"  # left as it was


def test_set_precision_resolves_auto_and_keeps_the_reason(monkeypatch):
    _fake_machine(monkeypatch)
    assert set_precision("auto", width=512) == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert precision_reason() == WIDE
    assert set_precision("auto") == "float32"  # no width: float32, never "auto" given to Keras
    assert precision_reason() == "auto: float32, no model width given"
    assert set_precision("fp16") == "mixed_float16" and precision_reason() == "as requested"
    keras.mixed_precision.set_global_policy("float32")  # set otherwise: no reason to give
    assert precision_reason() is None


def test_machine_describes_the_cpu_and_onednn():
    about = machine()
    assert set(about) == {"cpu", "vendor", "isa", "onednn", "TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS"}
    assert isinstance(about["cpu"], str) and about["cpu"]
    assert set(about["isa"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert isinstance(about["onednn"], bool)
