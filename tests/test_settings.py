"""The settings core: one declaration per setting gives the flag, its help, its checks and its
place in the run directory's contract."""

import argparse
import dataclasses

import pytest

from tfpretrain.settings import (
    Settings,
    TrainingSettings,
    add_arguments,
    at_least,
    from_dict,
    in_range,
    non_negative,
    positive,
    setting,
)


@dataclasses.dataclass(kw_only=True)
class ToyRun(TrainingSettings):
    corpus: str = setting(help="text to read")
    seq_len: int | None = setting(
        None, aliases=("--block-size",), check=positive, help="tokens per example"
    )
    learning_rate: float = setting(1e-3, check=positive, help="peak learning rate")
    dropout: float = setting(0.0, check=in_range(0, 1, high_open=True), help="dropout rate")
    bias: bool = setting(True, help="biases in projections")
    conv: bool = setting(False, aliases=("--convolutional",), help="convolutional variant")
    steps: int = setting(100, check=positive, resumable=True, help="training steps")
    warmup_steps: int = setting(10, check=non_negative, help="warm-up steps")
    labels: list[int] = setting(default_factory=lambda: [100], check=positive, help="label counts")
    accumulate: int | None = setting(None, check=at_least(2), help="micro-batches per update")
    python_only: int = 7

    def check(self) -> None:
        if self.warmup_steps >= self.steps:
            raise ValueError(
                f"--warmup-steps ({self.warmup_steps}) must be below --steps ({self.steps})."
            )


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser, ToyRun)
    return parser, ToyRun.from_args(parser.parse_args(argv))


def test_flags_come_from_fields_with_their_defaults():
    _, run = _parse(["--corpus", "c.txt", "--out", "o"])
    assert run == ToyRun(corpus="c.txt", out_dir="o")
    assert run.xla == "auto" and run.steps == 100 and run.labels == [100] and run.bias
    _, run = _parse(
        [
            "--corpus",
            "c",
            "--out",
            "o",
            "--seq-len",
            "32",
            "--no-bias",
            "--conv",
            "--labels",
            "1",
            "2",
            "--xla",
            "off",
            "--learning-rate",
            "0.5",
        ]
    )
    assert (run.seq_len, run.bias, run.conv, run.labels, run.xla, run.learning_rate) == (
        32,
        False,
        True,
        [1, 2],
        "off",
        0.5,
    )


def test_precision_is_auto_unless_given_and_its_choices_are_set_precisions():
    from tfpretrain import distribute
    from tfpretrain.settings import PRECISIONS

    _, run = _parse(["--corpus", "c", "--out", "o"])
    assert run.precision == "auto"
    for precision in PRECISIONS:
        assert _parse(["--corpus", "c", "--out", "o", "--precision", precision])[1].precision == (
            precision
        )
    # The flag offers what `set_precision` takes (settings load no TensorFlow, so both list them).
    assert PRECISIONS == distribute.PRECISION_CHOICES


def test_python_only_fields_are_not_flags():
    parser, _ = _parse(["--corpus", "c", "--out", "o"])
    assert "--python-only" not in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--corpus", "c", "--out", "o", "--python-only", "3"])


def test_required_fields_are_required_flags(capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser, ToyRun)
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "o"])
    assert "--corpus" in capsys.readouterr().err


def test_old_spellings_work_and_say_so(capsys):
    _, run = _parse(["--corpus", "c", "--out", "o", "--block-size", "16", "--convolutional"])
    assert run.seq_len == 16 and run.conv
    err = capsys.readouterr().err
    assert "--block-size is deprecated; use --seq-len" in err
    assert "--convolutional is deprecated; use --conv" in err
    _, run = _parse(["--corpus", "c", "--out", "o", "--no-convolutional"])
    assert not run.conv and "use --no-conv" in capsys.readouterr().err


@pytest.mark.parametrize(
    "values, message",
    [
        ({"learning_rate": -0.001}, "--learning-rate must be > 0; got -0.001"),
        ({"seq_len": 0}, "--seq-len must be > 0; got 0"),
        ({"dropout": 1.0}, "--dropout must be in [0, 1)"),
        ({"steps": 1.5}, "--steps must be a whole number; got 1.5"),
        ({"steps": True}, "--steps must be a whole number"),
        ({"learning_rate": float("nan")}, "--learning-rate must be a finite number"),
        ({"precision": "fp8"}, "--precision must be one of auto, fp32, bf16, fp16; got 'fp8'"),
        ({"labels": [100, 0]}, "--labels must be > 0; got 0"),
        ({"accumulate": 1}, "--accumulate must be >= 2; got 1"),
        ({"checkpoint_every": 0}, "--checkpoint-every must be > 0"),
        ({"warmup_steps": 100}, "--warmup-steps (100) must be below --steps (100)"),
    ],
)
def test_every_field_is_checked_when_constructed(values, message):
    with pytest.raises(ValueError) as error:
        ToyRun(corpus="c", out_dir="o", **values)
    assert message in str(error.value)


def test_all_bad_fields_are_named_at_once():
    with pytest.raises(ValueError) as error:
        ToyRun(corpus="c", out_dir="o", learning_rate=0.0, steps=-1)
    assert "--learning-rate" in str(error.value) and "--steps" in str(error.value)


def test_defining_settings_leave_out_what_may_change_on_resume():
    run = ToyRun(corpus="c", out_dir="o")
    defining = run.defining()
    assert "learning_rate" in defining and "seed" in defining and "precision" in defining
    for name in ("steps", "out_dir", "xla", "strategy", "tensorboard", "verbose"):
        assert name not in defining


def test_from_dict_names_unknown_keys_and_restores_tuples():
    @dataclasses.dataclass
    class Config:
        widths: tuple = (4, 2)
        depth: int = 1

    assert from_dict(Config, {"widths": [8, 4], "depth": 2}, "toy") == Config((8, 4), 2)
    with pytest.raises(ValueError, match=r"Unknown toy config keys \['width'\]"):
        from_dict(Config, {"width": 3}, "toy")


def test_a_plain_settings_class_validates_too():
    @dataclasses.dataclass(kw_only=True)
    class Ask(Settings):
        max_length: int = setting(50, check=positive, help="tokens per answer")

    assert Ask().max_length == 50
    with pytest.raises(ValueError, match="--max-length must be > 0; got 0"):
        Ask(max_length=0)


def test_positional_and_repeated_settings():
    @dataclasses.dataclass(kw_only=True)
    class Compare(Settings):
        runs: list[str] = setting(positional=True, help="run directories")
        encoders: list[str] = setting(
            default_factory=lambda: ["a"], flag="--encoder", repeat=True, help="encoders"
        )

    parser = argparse.ArgumentParser()
    add_arguments(parser, Compare)
    parsed = Compare.from_args(parser.parse_args(["r1", "r2", "--encoder", "x", "--encoder", "y"]))
    assert parsed.runs == ["r1", "r2"] and parsed.encoders == ["x", "y"]
    assert Compare.from_args(parser.parse_args(["r1"])).encoders == ["a"]
    assert "RUNS" in parser.format_help()
