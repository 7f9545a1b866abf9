"""`tfpretrain distill --corpus`: task-agnostic distillation of an encoder on unlabelled text."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.hf_folders import _perturb, bert_folder, data_path
from tfpretrain.models.distill import cosine_distance, squared_error
from tfpretrain.settings.distill import DistillRun


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A random 4-layer `BertModel` folder (an encoder without heads, as sentence-transformers
    ships all-MiniLM-L6-v2), its weights moved off their initializer: fresh layers barely turn
    the embeddings, so a student missing half of them would match the teacher from the start."""
    import torch

    folder = tmp_path_factory.mktemp("teacher")
    model = bert_folder(folder, head="Model", layers=4)
    _perturb(model, torch)
    model.save_pretrained(folder)
    return folder


def _sst2_rows(start: int, count: int) -> list[str]:
    rows = data_path("sst2", "train.tsv").read_text().splitlines()[1:]
    return rows[start : start + count]


def _corpus(tmp_path, lines: int = 400):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(row.split("\t")[0] for row in _sst2_rows(0, lines)) + "\n")
    return path


def _settings(teacher, corpus, out, **kwargs) -> DistillRun:
    values = dict(
        teacher=str(teacher),
        corpus=str(corpus),
        out_dir=str(out),
        steps=40,
        batch_size=16,
        seq_len=32,
        learning_rate=1e-3,
        warmup_fraction=0.1,
        steps_per_execution=8,
        verbose=0,
    )
    return DistillRun(**{**values, **kwargs})


def test_hidden_state_distances_ignore_padding():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 2, 5, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], "int32")
    moved = student.copy()
    moved[mask == 0] += 100.0  # padding positions only
    for distance in (cosine_distance, squared_error):
        assert float(distance(moved, teacher, mask)) == pytest.approx(
            float(distance(student, teacher, mask)), abs=1e-6
        )
    real = mask.astype(bool)
    cosine = (student * teacher).sum(-1) / (
        np.linalg.norm(student, axis=-1) * np.linalg.norm(teacher, axis=-1)
    )
    assert float(cosine_distance(student, teacher, mask)) == pytest.approx(
        np.mean(1 - cosine[real]), abs=1e-5
    )
    assert float(squared_error(student, teacher, mask)) == pytest.approx(
        np.mean(((student - teacher) ** 2).mean(-1)[real]), abs=1e-5
    )
    assert float(cosine_distance(teacher, teacher, mask)) == pytest.approx(0.0, abs=1e-6)


def test_half_student_starts_from_every_other_teacher_layer(teacher):
    from tfpretrain.recipes.distill import student_encoder
    from tfpretrain.recipes.distill_corpus import load_encoder_teacher

    encoder, tokenizer = load_encoder_teacher(teacher, 32)
    assert encoder.config.num_layers == 4 and tokenizer.sequence_length == 32
    student = student_encoder(_settings(teacher, "corpus.txt", "out"), encoder)
    assert student.config.num_layers == 2
    assert student.config.hidden_dim == encoder.config.hidden_dim
    pairs = [(student.transformer_layers[i], encoder.transformer_layers[2 * i]) for i in (0, 1)]
    pairs += [(student.get_layer("embeddings"), encoder.get_layer("embeddings"))]
    for copy, original in pairs:
        for a, b in zip(copy.get_weights(), original.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    # A start from the teacher: on real text the student's hidden states already point its way.
    x = tokenizer.pack(tf.constant(["a gorgeous , witty film", "the story is too long"]))
    before = cosine_distance(
        student(x)["sequence_output"], encoder(x)["sequence_output"], x["padding_mask"]
    )
    assert 0.0 < float(before) < 1.0


def test_distils_on_a_corpus_into_an_encoder_that_finetune_reads(teacher, tmp_path):
    from tfpretrain.recipes.distill import run
    from tfpretrain.recipes.finetune import run as finetune
    from tfpretrain.settings.finetune import FinetuneRun

    out = tmp_path / "student"
    metrics = run(_settings(teacher, _corpus(tmp_path), out))
    assert metrics["held_out_lines"] == 20  # every 20th of 400 lines
    assert (
        metrics["held_out_cosine_distance_after"] < 0.8 * metrics["held_out_cosine_distance_before"]
    )
    assert metrics["held_out_loss_before"] == pytest.approx(
        metrics["held_out_cosine_distance_before"]
    )
    assert metrics["steps"] == 40 and metrics["train_seconds"] > 0
    assert (metrics["teacher_layers"], metrics["student_layers"]) == (4, 2)
    assert metrics["student_params"] < metrics["teacher_params"]
    for name in ("encoder.keras", "vocab.txt", "tokenizer_config.json", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "vocab.txt").read_text() == (teacher / "vocab.txt").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["corpus"] and config["run"]["seq_len"] == 32
    assert config["model"]["num_layers"] == 2
    assert json.loads((out / "metrics.json").read_text()) == metrics

    table = tmp_path / "task.tsv"
    table.write_text("sentence\tlabel\n" + "\n".join(_sst2_rows(1000, 48)) + "\n")
    tuned = finetune(
        FinetuneRun(
            init=str(out),
            task=str(table),
            out_dir=str(tmp_path / "tuned"),
            epochs=1,
            batch_size=8,
            seq_len=32,
            export=False,
            verbose=0,
        )
    )
    assert tuned["init"] == "mlm" and 0.0 <= tuned["accuracy"] <= 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "sst2", "--corpus", "wikitext-2"], "one of --task and --corpus, not both"),
        (["--corpus", "c.txt", "--teacher-logits", "l.npz"], "Drop --teacher-logits"),
    ],
)
def test_task_and_corpus_exclude_each_other(argv, message, tmp_path, monkeypatch, capsys):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import distill

    monkeypatch.setattr(distill, "run", lambda cfg: pytest.fail(f"the recipe ran with {cfg}"))
    args = ["distill", "--teacher", str(tmp_path), *argv, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_without_corpus_the_task_is_sst2_as_before():
    assert DistillRun(teacher="t", out_dir="o").task == "sst2"
    assert DistillRun(teacher="t", out_dir="o", corpus="c.txt").task is None


def test_corpus_and_teacher_errors_are_clear(teacher, tmp_path):
    from tfpretrain.recipes.distill import run

    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n")
    with pytest.raises(ValueError, match="is empty"):
        run(_settings(teacher, blank, tmp_path / "a"))
    short = tmp_path / "short.txt"
    short.write_text("one line\nand another\n")
    with pytest.raises(ValueError, match="too short to hold out"):
        run(_settings(teacher, short, tmp_path / "b"))
    corpus = _corpus(tmp_path, 60)
    with pytest.raises(FileNotFoundError, match="neither a Hugging Face BERT"):
        run(_settings(tmp_path, corpus, tmp_path / "c"))
    with pytest.raises(ValueError, match="32-wide hidden states; --student-preset tiny is 128"):
        run(_settings(teacher, corpus, tmp_path / "d", student_preset="tiny"))
