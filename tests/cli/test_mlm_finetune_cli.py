import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from tfpretrain.cli.main import build_parser, main
from tfpretrain.settings.finetune import FinetuneRun
from tfpretrain.settings.mlm import BERT_PRESETS, MlmRun

SUBJECTS = ["the cat", "a dog", "my bird", "the horse", "a fish", "the cow"]
VERBS = ["eats", "sees", "likes", "chases", "finds"]
OBJECTS = ["the grass", "a ball", "some seeds", "the river", "a stone", "the moon"]
GOOD = ["great", "wonderful", "good", "lovely", "superb"]
BAD = ["awful", "terrible", "bad", "boring", "dreadful"]


def cli(*args, timeout=600):
    result = subprocess.run(
        [sys.executable, "-m", "tfpretrain.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("text")
    lines = [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(600)
    ]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    rows = ["sentence\tlabel"]
    for i in range(160):
        label = i % 2
        word = rng.choice(GOOD if label else BAD)
        rows.append(
            f"{rng.choice(SUBJECTS)} is {word} and {rng.choice(OBJECTS)} is {word} .\t{label}"
        )
    (root / "task.tsv").write_text("\n".join(rows) + "\n")
    (root / "bad_labels.tsv").write_text("a good one\t1\na bad one\t5\n")
    return root


@pytest.fixture(scope="module")
def mlm_run(corpus):
    out = corpus / "mlm"
    cli(
        "mlm",
        "--corpus",
        str(corpus / "corpus.txt"),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--vocab-size",
        "200",
        "--steps",
        "45",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--seq-len",
        "32",
        "--learning-rate",
        "2e-3",
        "--steps-per-execution",
        "15",
        "--validation-fraction",
        "0.2",
    )
    return out


def test_mlm_writes_run_directory_and_its_loss_falls(mlm_run):
    metrics = json.loads((mlm_run / "metrics.json").read_text())
    history = json.loads((mlm_run / "history.json").read_text())
    for name in (
        "vocab.txt",
        "encoder.keras",
        "mlm.keras",
        "loss.png",
        "checkpoints/best.weights.h5",
        "saved_model/1/saved_model.pb",
    ):
        assert (mlm_run / name).exists(), name
    assert metrics["steps"] == 45 and metrics["masked_accuracy"] == history["accuracy"][-1]
    # Guessing the commonest token ("the" or ".", 1 in 6) is right about 0.17 of the time;
    # the last epoch measured 0.45.
    assert metrics["masked_accuracy"] > 0.3
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert metrics["val_masked_accuracy"] > 0.2  # the corpus is highly predictable
    vocab = (mlm_run / "vocab.txt").read_text().split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_finetune_from_mlm_run_reports_metrics_and_exports(corpus, mlm_run, capsys):
    out = corpus / "ft"
    # In-process (the mlm run above covers the subprocess path) to save a TensorFlow start-up.
    assert (
        main(
            [
                "finetune",
                "--task",
                str(corpus / "task.tsv"),
                "--init",
                str(mlm_run),
                "--out",
                str(out),
                "--epochs",
                "3",
                "--batch-size",
                "16",
                "--learning-rate",
                "2e-3",
                "--seq-len",
                "16",
                "--freeze",
                "1",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1"} <= set(metrics)
    assert metrics["init"] == "mlm" and metrics["dev_examples"] == 16
    history = json.loads((out / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert (out / "saved_model" / "1" / "saved_model.pb").exists()
    assert (out / "classifier.keras").exists()
    # The task's integer labels are the export's label names.
    (out / "texts.txt").write_text("the cat is great and a ball is great .\n")
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--input", str(out / "texts.txt")]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["label"] in ("0", "1") and set(row["probabilities"]) == {"0", "1"}


def test_scratch_init_builds_a_fresh_preset_encoder_with_the_given_vocab(mlm_run):
    from tfpretrain.recipes.finetune import FinetuneRun, resolve_init

    cfg = FinetuneRun(
        task="unused",
        init="scratch",
        out_dir="unused",
        preset="tiny",
        vocab=str(mlm_run / "vocab.txt"),
        seq_len=16,
    )
    kind = resolve_init(cfg)
    tokenizer, encoder = kind.build(cfg, [])
    assert kind.name == "scratch" and encoder.config.num_layers == 2
    assert encoder.config.vocabulary_size == tokenizer.vocabulary_size
    assert resolve_init(FinetuneRun(task="x", init=str(mlm_run), out_dir="x")).name == "mlm"


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            [
                "finetune",
                "--task",
                "{root}/bad_labels.tsv",
                "--num-classes",
                "2",
                "--init",
                "scratch",
            ],
            "bad_labels.tsv, line 2, column 1: label 5 is out of range",
        ),
        (["finetune", "--task", "{root}/task.tsv", "--init", "{root}/nowhere"], "is not 'scratch'"),
        (
            ["finetune", "--task", "{root}/missing.tsv", "--init", "scratch"],
            "missing.tsv' is none of these",
        ),
        # With --epochs the batch is as given (the budget rule shrinks it for small sets).
        (
            [
                "finetune",
                "--task",
                "{root}/task.tsv",
                "--init",
                "scratch",
                "--batch-size",
                "1000",
                "--epochs",
                "1",
            ],
            "fewer than one batch of 1000; lower --batch-size",
        ),
        (["mlm", "--corpus", "{root}/empty.txt"], "is empty"),
        (
            ["mlm", "--corpus", "{root}/latin1.txt"],
            "latin1.txt, line 2, column 4 \\(byte 9\\): invalid UTF-8",
        ),
    ],
)
def test_user_errors_exit_2_with_a_message(corpus, capsys, argv, message):
    (corpus / "empty.txt").write_text("\n \n")
    (corpus / "latin1.txt").write_bytes("hello\ncaf\xe9\n".encode("latin-1"))
    argv = [a.format(root=corpus) for a in argv] + ["--out", str(corpus / "err")]
    assert main(argv) == 2
    import re

    assert re.search(message, capsys.readouterr().err)


def test_limit_lines_is_the_old_spelling_of_limit_train(capsys):
    argv = ["mlm", "--corpus", "c.txt", "--out", "o", "--limit-lines", "40"]
    args = build_parser().parse_args(argv)
    assert MlmRun.from_args(args).limit_train == 40
    assert "--limit-lines is deprecated; use --limit-train" in capsys.readouterr().err


def test_presets_are_the_models_and_warm_up_is_unchanged():
    from tfpretrain.models.bert import BertConfig
    from tfpretrain.models.t5 import PRESETS as T5_PRESETS
    from tfpretrain.training import warmup_steps

    assert BERT_PRESETS == tuple(BertConfig.PRESETS)
    preset = next(f for f in dataclasses.fields(FinetuneRun) if f.name == "preset")
    assert preset.metadata["choices"] == (*BertConfig.PRESETS, *T5_PRESETS)
    cfg = MlmRun(corpus="c.txt", out_dir="o")
    assert warmup_steps(cfg.steps, cfg.warmup_fraction) == int(2000 * 0.1)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"steps": 0}, "--steps must be > 0"),
        ({"limit_train": 0}, "--limit-train must be > 0"),
        ({"limit_train": -5}, "--limit-train must be > 0"),
        ({"mask_rate": 0.0}, r"--mask-rate must be in \(0, 1\)"),
        ({"validation_fraction": 0.5}, r"--validation-fraction must be in \[0, 0.5\)"),
        ({"preset": "huge"}, "--preset must be one of tiny, mini, small, base"),
        ({"steps": 45, "epochs": 4}, r"--steps \(45\) must be a multiple of --epochs \(4\)"),
    ],
)
def test_bad_mlm_settings_are_refused_when_constructed(values, message):
    with pytest.raises(ValueError, match=message):
        MlmRun(corpus="c.txt", out_dir="o", **values)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epochs": 0}, "--epochs must be > 0"),
        ({"limit_train": 0}, "--limit-train must be > 0"),
        ({"warmup_fraction": 1.0}, r"--warmup-fraction must be in \[0, 1\)"),
        ({"pooling": "max"}, "--pooling must be one of cls, mean"),
        ({"freeze": "some"}, "--freeze must be a number of layers or 'all'"),
        ({"num_classes": 1}, "--num-classes must be >= 2"),
        ({"num_beams": 0}, "--num-beams must be > 0"),
        ({"reinit": "decoder"}, "--reinit decoder needs a pre-trained seq2seq directory"),
    ],
)
def test_bad_finetune_settings_are_refused_when_constructed(values, message):
    with pytest.raises(ValueError, match=message):
        FinetuneRun(task="t.tsv", init="scratch", out_dir="o", **values)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mlm", "--corpus", "{root}/none.txt", "--limit-train", "0"], "--limit-train must be > 0"),
        (
            ["finetune", "--task", "{root}/none.tsv", "--init", "scratch", "--limit-train", "-1"],
            "--limit-train must be > 0",
        ),
    ],
)
def test_settings_are_checked_before_the_data_loads(tmp_path, capsys, argv, message):
    argv = [a.format(root=tmp_path) for a in argv] + ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err  # not the missing file's error
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("export", [True, False])
def test_finetune_passes_run_flags_and_says_saved_model_only_when_exported(
    tmp_path, monkeypatch, capsys, export
):
    from tfpretrain.recipes import finetune

    seen = []
    monkeypatch.setattr(finetune, "run", lambda cfg: seen.append(cfg) or {"accuracy": 1.0})
    argv = [
        "finetune",
        "--task",
        "t.tsv",
        "--init",
        "scratch",
        "--out",
        str(tmp_path),
        "--checkpoint-every",
        "5",
        "--xla",
        "off",
        "--export" if export else "--no-export",
    ]
    assert main(argv) == 0
    assert seen[0].export is export and seen[0].checkpoint_every == 5 and seen[0].xla == "off"
    assert ("saved_model/" in capsys.readouterr().out) is export
