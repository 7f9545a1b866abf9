import json
import math
import os
import subprocess
import sys

import pytest

from tfpretrain.data import CorruptDataError, DataNotFoundError
from tfpretrain.recipes.clm import CLMRun, run


def _cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "tfpretrain.cli.main", *args], capture_output=True,
                            text=True, env=dict(os.environ))
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_help_lists_every_flag():
    out = _cli("clm", "--help").stdout
    for flag in ("--corpus", "--preset", "--tokenizer", "--block-size", "--batch-size", "--steps",
                 "--learning-rate", "--dropout", "--out", "--strategy", "--precision"):
        assert flag in out
    out = _cli("generate", "--help").stdout
    for flag in ("--model", "--prompt", "--max-length", "--num-return-sequences", "--top-k", "--top-p",
                 "--temperature", "--seed"):
        assert flag in out


@pytest.mark.slow
def test_clm_trains_then_generate_prints_completions(tmp_path, data_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:30000])
    out = tmp_path / "run"
    _cli("clm", "--corpus", str(corpus), "--out", str(out), "--preset", "nano", "--block-size", "32",
         "--batch-size", "8", "--steps", "60", "--eval-interval", "30", "--warmup-steps", "5",
         "--learning-rate", "3e-3", "--num-samples", "0", "--no-export")
    metrics = json.loads((out / "metrics.json").read_text())
    evaluations = metrics["evaluations"]
    assert [e["step"] for e in evaluations] == [30, 60]
    assert metrics["val_loss"] == evaluations[-1]["val_loss"]
    # Below the uniform guess over the vocabulary, and falling.
    assert evaluations[-1]["val_loss"] < evaluations[0]["val_loss"] < math.log(metrics["vocabulary_size"])
    # The training loss too (measured 3.40 then 2.88, against log 58 = 4.06).
    train = [e["train_loss"] for e in evaluations]
    assert train[-1] < train[0] < math.log(metrics["vocabulary_size"])
    assert json.loads((out / "config.json").read_text())["run"]["weight_decay"] == 0.01  # nano's default
    for name in ("model.keras", "tokenizer/char_vocabulary.json", "config.json",
                 "checkpoints/best.weights.h5"):
        assert (out / name).exists(), name

    result = _cli("generate", "--model", str(out), "--prompt", "ROMEO:", "--max-length", "24",
                  "--num-return-sequences", "2", "--top-p", "0.9", "--top-k", "10", "--seed", "3")
    completions = result.stdout.split("\n----\n")
    assert len(completions) == 2
    assert all(c.startswith("ROMEO:") and len(c.rstrip("\n")) <= 24 for c in completions)


def test_weight_decay_is_the_presets_unless_given():
    from tfpretrain.models.gpt import GPTConfig, build_gpt
    from tfpretrain.recipes.clm import compile_gpt

    assert CLMRun(corpus="c.txt", out_dir="o").weight_decay == 0.01
    assert CLMRun(corpus="c.txt", out_dir="o", preset="shakespeare").weight_decay == 0.1
    assert CLMRun(corpus="c.txt", out_dir="o", preset="shakespeare", weight_decay=0.0).weight_decay == 0.0
    with pytest.raises(ValueError, match="--weight-decay"):
        CLMRun(corpus="c.txt", out_dir="o", weight_decay=-0.1).validate()
    model = build_gpt(GPTConfig(vocabulary_size=11, sequence_length=8, num_layers=1, num_heads=2, hidden_dim=8,
                                intermediate_dim=16))
    compile_gpt(model, CLMRun(corpus="c.txt", out_dir="o"), total_steps=200, steps_per_execution=1)
    assert float(model.optimizer.weight_decay) == pytest.approx(0.01)


def test_bad_corpus_and_settings(tmp_path):
    missing = _cli("clm", "--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o"), check=False)
    assert missing.returncode == 2 and "not found" in missing.stderr
    with pytest.raises(DataNotFoundError):
        run(CLMRun(corpus=str(tmp_path / "none.txt"), out_dir=str(tmp_path / "o")))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        run(CLMRun(corpus=str(empty), out_dir=str(tmp_path / "o")))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"abc\xff\xfe")
    with pytest.raises(CorruptDataError, match="UTF-8"):
        run(CLMRun(corpus=str(binary), out_dir=str(tmp_path / "o")))
    short = tmp_path / "short.txt"
    short.write_text("tiny corpus")
    with pytest.raises(ValueError, match="block-size"):
        run(CLMRun(corpus=str(short), out_dir=str(tmp_path / "o"), verbose=0))
    with pytest.raises(ValueError, match="steps"):
        run(CLMRun(corpus=str(short), out_dir=str(tmp_path / "o"), steps=0))
    with pytest.raises(FileNotFoundError, match="model.keras"):
        from tfpretrain.recipes.clm import load_run

        load_run(tmp_path)
