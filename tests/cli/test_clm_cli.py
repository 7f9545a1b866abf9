import json
import math
import os
import subprocess
import sys

import pytest

from tfpretrain.cli.main import build_parser, main
from tfpretrain.data import DataNotFoundError
from tfpretrain.recipes.clm import CLMRun, run
from tfpretrain.settings.clm import GPT_PRESETS
from tfpretrain.settings.generate import GenerateRun
from tfpretrain.training import warmup_steps


def _cli(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "tfpretrain.cli.main", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_help_lists_every_flag():
    out = _cli("clm", "--help").stdout
    for flag in (
        "--corpus",
        "--preset",
        "--tokenizer",
        "--seq-len",
        "--batch-size",
        "--steps",
        "--learning-rate",
        "--dropout",
        "--out",
        "--strategy",
        "--precision",
    ):
        assert flag in out
    out = _cli("generate", "--help").stdout
    for flag in (
        "--model",
        "--prompt",
        "--max-length",
        "--num-return-sequences",
        "--top-k",
        "--top-p",
        "--temperature",
        "--seed",
    ):
        assert flag in out


@pytest.mark.slow
def test_clm_trains_then_generate_prints_completions(tmp_path, data_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:30000])
    out = tmp_path / "run"
    printed = _cli(
        "clm",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--preset",
        "nano",
        "--seq-len",
        "32",
        "--batch-size",
        "8",
        "--steps",
        "60",
        "--eval-interval",
        "30",
        "--warmup-fraction",
        "0.1",
        "--learning-rate",
        "3e-3",
        "--num-samples",
        "0",
        "--no-export",
    ).stdout
    assert "saved_model" not in printed and not (out / "saved_model").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    evaluations = metrics["evaluations"]
    assert [e["step"] for e in evaluations] == [30, 60]
    assert metrics["val_loss"] == evaluations[-1]["val_loss"]
    # Below the uniform guess over the vocabulary, and falling.
    assert (
        evaluations[-1]["val_loss"]
        < evaluations[0]["val_loss"]
        < math.log(metrics["vocabulary_size"])
    )
    # The training loss too (measured 3.40 then 2.88, against log 58 = 4.06).
    train = [e["train_loss"] for e in evaluations]
    assert train[-1] < train[0] < math.log(metrics["vocabulary_size"])
    assert (
        json.loads((out / "config.json").read_text())["run"]["weight_decay"] == 0.01
    )  # nano's default
    for name in (
        "model.keras",
        "tokenizer/char_vocabulary.json",
        "config.json",
        "checkpoints/best.weights.h5",
    ):
        assert (out / name).exists(), name

    result = _cli(
        "generate",
        "--model",
        str(out),
        "--prompt",
        "ROMEO:",
        "--max-length",
        "24",
        "--num-return-sequences",
        "2",
        "--top-p",
        "0.9",
        "--top-k",
        "10",
        "--seed",
        "3",
    )
    completions = result.stdout.split("\n----\n")
    assert len(completions) == 2
    assert all(c.startswith("ROMEO:") and len(c.rstrip("\n")) <= 24 for c in completions)


@pytest.mark.parametrize(
    "min_width, policy, reason",
    [
        (
            384,
            "float32",
            "auto: float32, width 128 is below 384, where bfloat16 on AMX starts to pay",
        ),
        # The bar lowered to nano's width: the bf16 path without training a wide model.
        (128, "mixed_bfloat16", "auto: bfloat16 on a CPU with AMX, width 128 >= 128"),
    ],
)
def test_clm_records_the_precision_auto_chose(
    tmp_path, data_dir, monkeypatch, min_width, policy, reason
):
    from tfpretrain import distribute

    # A CPU-only machine with AMX, whatever this one is.
    monkeypatch.setattr(distribute, "_has_accelerator", lambda: False)
    monkeypatch.setattr(distribute, "_cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    monkeypatch.setattr(distribute, "_onednn_on", lambda: True)
    monkeypatch.setattr(distribute, "BF16_MIN_WIDTH", min_width)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:6000])
    out = tmp_path / "run"
    cfg = CLMRun(
        corpus=str(corpus),
        out_dir=str(out),
        seq_len=16,
        batch_size=4,
        steps=2,
        eval_interval=2,
        warmup_steps=1,
        num_samples=0,
        export=False,
        verbose=0,
    )
    assert cfg.precision == "auto" and cfg.preset == "nano"  # the defaults
    run(cfg)
    record = json.loads((out / "config.json").read_text())
    assert record["run"]["precision"] == "auto"  # the setting, as given
    execution = record["execution"]
    assert (execution["precision"], execution["precision_reason"]) == (policy, reason)
    assert execution["xla"] is (policy == "float32")  # --xla auto: no XLA for bf16 on a CPU


def test_weight_decay_is_the_presets_unless_given():
    from tfpretrain.models.gpt import GPTConfig, build_gpt
    from tfpretrain.recipes.clm import compile_gpt

    assert CLMRun(corpus="c.txt", out_dir="o").weight_decay == 0.01
    assert CLMRun(corpus="c.txt", out_dir="o", preset="shakespeare").weight_decay == 0.1
    assert (
        CLMRun(corpus="c.txt", out_dir="o", preset="shakespeare", weight_decay=0.0).weight_decay
        == 0.0
    )
    with pytest.raises(ValueError, match="--weight-decay must be >= 0"):
        CLMRun(corpus="c.txt", out_dir="o", weight_decay=-0.1)
    model = build_gpt(
        GPTConfig(
            vocabulary_size=11,
            sequence_length=8,
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
        )
    )
    compile_gpt(model, CLMRun(corpus="c.txt", out_dir="o"), total_steps=200, steps_per_execution=1)
    assert float(model.optimizer.weight_decay) == pytest.approx(0.01)


def test_bad_corpus_and_settings(tmp_path):
    missing = _cli(
        "clm", "--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o"), check=False
    )
    assert missing.returncode == 2 and "not found" in missing.stderr
    with pytest.raises(DataNotFoundError):
        run(CLMRun(corpus=str(tmp_path / "none.txt"), out_dir=str(tmp_path / "o")))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        run(CLMRun(corpus=str(empty), out_dir=str(tmp_path / "o")))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"abc\xff\xfe")
    with pytest.raises(ValueError, match=r"binary.txt, line 1, column 4 \(byte 3\): invalid UTF-8"):
        run(CLMRun(corpus=str(binary), out_dir=str(tmp_path / "o")))
    short = tmp_path / "short.txt"
    short.write_text("tiny corpus")
    with pytest.raises(ValueError, match="--seq-len"):
        run(CLMRun(corpus=str(short), out_dir=str(tmp_path / "o"), verbose=0))
    with pytest.raises(FileNotFoundError, match="model.keras"):
        from tfpretrain.recipes.clm import load_run

        load_run(tmp_path)


def _settings(*argv):
    args = build_parser().parse_args(list(argv))
    return args.settings_class.from_args(args)


def test_old_flag_spellings_still_work_with_a_deprecation_message(capsys):
    cfg = _settings("clm", "--corpus", "c.txt", "--out", "o", "--block-size", "32")
    assert cfg.seq_len == 32
    assert "--block-size is deprecated; use --seq-len" in capsys.readouterr().err
    cfg = _settings(
        "clm", "--corpus", "c.txt", "--out", "o", "--steps", "500", "--warmup-steps", "50"
    )
    assert cfg.warmup_fraction == 0.1 and cfg.warmup_steps is None
    assert warmup_steps(500, cfg.warmup_fraction) == 50
    assert "--warmup-steps is deprecated; use --warmup-fraction" in capsys.readouterr().err


def test_defaults_warm_up_for_the_same_steps_as_before():
    # Before warm-up became a share of the steps, the default run warmed up for 100 of 2000.
    cfg = CLMRun(corpus="c.txt", out_dir="o")
    assert (cfg.steps, warmup_steps(cfg.steps, cfg.warmup_fraction)) == (2000, 100)


def test_presets_are_the_models():
    from tfpretrain.models.gpt import PRESETS

    assert GPT_PRESETS == tuple(PRESETS)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"steps": 0}, "--steps must be > 0"),
        ({"batch_size": -2}, "--batch-size must be > 0"),
        ({"dropout": 1.0}, r"--dropout must be in \[0, 1\)"),
        ({"warmup_fraction": 1.5}, "--warmup-fraction must be in"),
        ({"warmup_steps": 2000}, "--warmup-steps must be below --steps"),
        ({"preset": "huge"}, "--preset must be one of nano, shakespeare, gpt2-small"),
        ({"tokenizer": "bpe"}, "--tokenizer must be one of char, sentencepiece"),
        ({"steps": 300}, "--steps 300 is not a multiple of --eval-interval 250"),
    ],
)
def test_bad_settings_are_refused_when_constructed(values, message):
    with pytest.raises(ValueError, match=message):
        CLMRun(corpus="c.txt", out_dir="o", **values)


def test_steps_are_trained_exactly_or_refused_before_any_work(tmp_path, capsys):
    # An interval that divides the steps (or exceeds them: one evaluation at the end) is fine.
    assert CLMRun(corpus="c.txt", out_dir="o", steps=300, eval_interval=100).steps == 300
    assert CLMRun(corpus="c.txt", out_dir="o", steps=60).eval_interval == 250
    # Refused before the corpus is read: a missing one would otherwise be the error.
    argv = ["clm", "--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--steps", "300", "--eval-interval", "250"]) == 2
    err = capsys.readouterr().err
    assert "--steps 300 is not a multiple of --eval-interval 250" in err
    assert "--steps 250 or 500" in err
    assert main([*argv, "--vocab-size", "0"]) == 2
    assert "--vocab-size must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("export", [True, False])
def test_clm_says_saved_model_only_when_exported(tmp_path, monkeypatch, capsys, export):
    from tfpretrain.recipes import clm

    seen = []
    monkeypatch.setattr(clm, "run", lambda cfg: seen.append(cfg) or {"val_loss": 1.0})
    flags = ["--tensorboard", "--checkpoint-every", "7", "--xla", "off"]
    flags += [] if export else ["--no-export"]
    assert main(["clm", "--corpus", "c.txt", "--out", str(tmp_path), *flags]) == 0
    assert seen[0].export is export and seen[0].tensorboard and seen[0].checkpoint_every == 7
    assert seen[0].xla == "off"
    assert ("saved_model/" in capsys.readouterr().out) is export


def test_generate_refuses_bad_settings_before_loading_the_model(tmp_path, capsys):
    with pytest.raises(ValueError, match="--max-length must be > 0"):
        GenerateRun(model="m", prompt="a", max_length=0)
    with pytest.raises(ValueError, match=r"--top-p must be in \(0, 1\]"):
        GenerateRun(model="m", prompt="a", top_p=0.0)
    # The model folder is empty, so loading would fail with "No model.keras"; the flag is first.
    assert main(["generate", "--model", str(tmp_path), "--prompt", "a", "--max-length", "0"]) == 2
    assert "--max-length must be > 0" in capsys.readouterr().err
