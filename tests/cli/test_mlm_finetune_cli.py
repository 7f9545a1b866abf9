import json
import subprocess
import sys

import numpy as np
import pytest

from tfpretrain.cli.main import main

SUBJECTS = ["the cat", "a dog", "my bird", "the horse", "a fish", "the cow"]
VERBS = ["eats", "sees", "likes", "chases", "finds"]
OBJECTS = ["the grass", "a ball", "some seeds", "the river", "a stone", "the moon"]
GOOD = ["great", "wonderful", "good", "lovely", "superb"]
BAD = ["awful", "terrible", "bad", "boring", "dreadful"]


def cli(*args, timeout=600):
    result = subprocess.run([sys.executable, "-m", "tfpretrain.cli.main", *args],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("text")
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(600)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    rows = ["sentence\tlabel"]
    for i in range(160):
        label = i % 2
        word = rng.choice(GOOD if label else BAD)
        rows.append(f"{rng.choice(SUBJECTS)} is {word} and {rng.choice(OBJECTS)} is {word} .\t{label}")
    (root / "task.tsv").write_text("\n".join(rows) + "\n")
    (root / "bad_labels.tsv").write_text("a good one\t1\na bad one\t5\n")
    return root


@pytest.fixture(scope="module")
def mlm_run(corpus):
    out = corpus / "mlm"
    cli("mlm", "--corpus", str(corpus / "corpus.txt"), "--out", str(out), "--preset", "tiny",
        "--vocab-size", "200", "--steps", "45", "--epochs", "3", "--batch-size", "16", "--seq-len", "32",
        "--learning-rate", "2e-3", "--steps-per-execution", "15", "--validation-fraction", "0.2")
    return out


def test_mlm_writes_run_directory_and_its_loss_falls(mlm_run):
    metrics = json.loads((mlm_run / "metrics.json").read_text())
    history = json.loads((mlm_run / "history.json").read_text())
    for name in ("vocab.txt", "encoder.keras", "mlm.keras", "loss.png", "checkpoints/best.weights.h5"):
        assert (mlm_run / name).exists(), name
    assert metrics["steps"] == 45 and metrics["masked_accuracy"] == history["accuracy"][-1]
    # Guessing the commonest token ("the" or ".", 1 in 6) is right about 0.17 of the time;
    # the last epoch measured 0.45.
    assert metrics["masked_accuracy"] > 0.3
    assert history["loss"][-1] < history["loss"][0] - 0.5
    assert metrics["val_masked_accuracy"] > 0.2  # the corpus is highly predictable
    vocab = (mlm_run / "vocab.txt").read_text().split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_finetune_from_mlm_run_reports_metrics_and_exports(corpus, mlm_run):
    out = corpus / "ft"
    # In-process (the mlm run above covers the subprocess path) to save a TensorFlow start-up.
    assert main(["finetune", "--task", str(corpus / "task.tsv"), "--init", str(mlm_run), "--out", str(out),
                 "--epochs", "3", "--batch-size", "16", "--learning-rate", "2e-3", "--seq-len", "16",
                 "--freeze", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "precision", "recall", "f1"} <= set(metrics)
    assert metrics["init"] == "mlm" and metrics["dev_examples"] == 16
    history = json.loads((out / "history.json").read_text())
    assert history["loss"][-1] < history["loss"][0]
    assert (out / "saved_model" / "saved_model.pb").exists() and (out / "classifier.keras").exists()


def test_scratch_init_builds_a_fresh_preset_encoder_with_the_given_vocab(mlm_run):
    from tfpretrain.recipes.finetune import FinetuneRun, resolve_init

    cfg = FinetuneRun(task="unused", init="scratch", out_dir="unused", preset="tiny",
                      vocab=str(mlm_run / "vocab.txt"), seq_len=16)
    kind = resolve_init(cfg)
    tokenizer, encoder = kind.build(cfg, [])
    assert kind.name == "scratch" and encoder.config.num_layers == 2
    assert encoder.config.vocabulary_size == tokenizer.vocabulary_size
    assert resolve_init(FinetuneRun(task="x", init=str(mlm_run), out_dir="x")).name == "mlm"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["finetune", "--task", "{root}/bad_labels.tsv", "--num-classes", "2", "--init", "scratch"],
         "line 2: label 5 is out of range"),
        (["finetune", "--task", "{root}/task.tsv", "--init", "{root}/nowhere"], "is not 'scratch'"),
        (["finetune", "--task", "{root}/missing.tsv", "--init", "scratch"], "neither"),
        (["mlm", "--corpus", "{root}/empty.txt"], "is empty"),
        (["mlm", "--corpus", "{root}/latin1.txt"], "not valid UTF-8: byte 9 \\(line 2\\)"),
    ],
)
def test_user_errors_exit_2_with_a_message(corpus, capsys, argv, message):
    (corpus / "empty.txt").write_text("\n \n")
    (corpus / "latin1.txt").write_bytes("hello\ncaf\xe9\n".encode("latin-1"))
    argv = [a.format(root=corpus) for a in argv] + ["--out", str(corpus / "err")]
    assert main(argv) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
