import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_close
from tfpretrain.losses import distillation_loss
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.models.distill import (
    Distiller,
    half_depth_student,
    init_embeddings_from_teacher,
    init_from_every_other_layer,
    teacher_logits,
)
from tfpretrain.text.wordpiece import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(27)]


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_distillation_loss_matches_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3)) * 2
    y = rng.integers(0, 3, 6)
    temperature, alpha = 3.0, 0.7
    pt, ls = _log_softmax(t / temperature), _log_softmax(s / temperature)
    kl = (np.exp(pt) * (pt - ls)).sum(-1)
    ce = -_log_softmax(s)[np.arange(6), y]
    expected = np.mean(alpha * temperature**2 * kl + (1 - alpha) * ce)
    got = distillation_loss(y, s.astype("float32"), t.astype("float32"), temperature, alpha)
    assert_close(got, expected, atol=1e-5)
    assert_close(distillation_loss(y, s, t, 2.0, 0.0), ce.mean(), atol=1e-5)  # labels only
    assert float(distillation_loss(y, t, t, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # No gradient flows into the teacher.
    tt = tf.constant(t, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(tt)
        loss = distillation_loss(y, s, tt)
    assert tape.gradient(loss, tt) is None or not np.any(tape.gradient(loss, tt))
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(y, s, t, alpha=1.5)
    with pytest.raises(ValueError, match="same classes"):
        distillation_loss(y, s, t[:, :2])


def _classifier(layers=4, hidden=32, name=None, max_length=16):
    config = BertConfig(
        vocabulary_size=len(VOCAB),
        num_layers=layers,
        hidden_dim=hidden,
        num_heads=2,
        intermediate_dim=2 * hidden,
        max_sequence_length=max_length,
        dropout=0.0,
    )
    return TextClassifier(BertEncoder(config), 2, dropout=0.0, name=name)


def _batch(n=4, length=8, seed=0):
    ids = np.random.default_rng(seed).integers(5, len(VOCAB), (n, length)).astype("int32")
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}


def test_half_depth_student_copies_every_other_layer():
    teacher = _classifier(layers=4)
    student = half_depth_student(teacher)
    assert student.encoder.config.num_layers == 2
    for i, block in enumerate(student.encoder.transformer_layers):
        for a, b in zip(
            block.get_weights(),
            teacher.encoder.transformer_layers[2 * i].get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    assert student.encoder.count_params() < teacher.encoder.count_params()
    with pytest.raises(ValueError, match="equal widths"):
        init_from_every_other_layer(_classifier(layers=2, hidden=16), teacher)
    with pytest.raises(ValueError, match="every-other"):
        init_from_every_other_layer(_classifier(layers=3), teacher)


def test_narrow_student_embeddings_keep_the_teachers_geometry():
    teacher, student = _classifier(layers=2, hidden=32), _classifier(layers=1, hidden=16)
    rng = np.random.default_rng(4)
    # Teacher token vectors that span 16 of their 32 dimensions: the top 16 principal directions
    # hold all of their variance, so the 16-wide projection keeps every distance between them.
    basis = np.linalg.qr(rng.normal(size=(32, 16)))[0].T
    token = (rng.normal(size=(len(VOCAB), 16)) @ basis).astype("float32")
    position = (rng.normal(size=(16, 16)) @ basis).astype("float32")
    teacher.encoder.get_layer("embeddings").set_weights([token, position])
    init_embeddings_from_teacher(student, teacher)
    s_token, s_position = student.encoder.get_layer("embeddings").get_weights()
    assert s_token.shape == (len(VOCAB), 16)

    def distances(x):
        return np.linalg.norm(x[:, None] - x[None], axis=-1)

    assert_close(distances(s_token), distances(token), atol=1e-4)
    # The same projection maps every table: token + position sums keep their distances too.
    assert_close(distances(s_token[:16] + s_position), distances(token[:16] + position), atol=1e-4)
    with pytest.raises(ValueError, match="no wider"):
        init_embeddings_from_teacher(teacher, student)
    other = TextClassifier(
        BertEncoder(
            BertConfig(
                vocabulary_size=40,
                num_layers=1,
                hidden_dim=16,
                num_heads=2,
                intermediate_dim=32,
                max_sequence_length=16,
            )
        ),
        2,
    )
    with pytest.raises(ValueError, match="vocabulary"):
        init_embeddings_from_teacher(other, teacher)


def test_preset_students_start_from_the_teachers_embeddings_unless_told():
    from tfpretrain.recipes.distill import DistillRun, _build_student

    teacher = _classifier(layers=1, hidden=128)  # as wide as the `tiny` preset: a pure rotation
    token = teacher.encoder.get_layer("embeddings").get_weights()[0]

    def token_distances(model):
        x = model.encoder.get_layer("embeddings").get_weights()[0]
        return np.linalg.norm(x[:, None] - x[None], axis=-1)

    reference = np.linalg.norm(token[:, None] - token[None], axis=-1)
    settings = dict(teacher="", task="sst2", out_dir="", student_preset="tiny")
    built = _build_student(DistillRun(**settings), teacher)
    assert built.encoder.config.num_layers == 2
    assert_close(token_distances(built), reference, atol=1e-5)
    scratch = _build_student(DistillRun(**settings, student_embeddings="random"), teacher)
    assert not np.allclose(token_distances(scratch), reference, atol=1e-3)


def test_student_learns_to_imitate_the_teacher():
    teacher = _classifier(layers=2, name="teacher")
    x = _batch(256, seed=1)
    # A sharper head, its bias set so that the teacher splits the inputs about evenly.
    kernel, bias = teacher.get_layer("logits").get_weights()
    teacher.get_layer("logits").set_weights([kernel * 50, bias])
    logits = teacher.predict(x, verbose=0)
    teacher.get_layer("logits").set_weights(
        [kernel * 50, bias - [0.0, np.median(logits[:, 1] - logits[:, 0])]]
    )
    teacher_classes = np.argmax(teacher.predict(x, verbose=0), -1)
    assert 0.2 < teacher_classes.mean() < 0.8  # the teacher's function is not constant
    # Soft targets only (alpha = 1) with the labels set to noise: only the teacher can be learnt.
    noise = np.random.default_rng(2).integers(0, 2, 256)
    student = _classifier(layers=1, hidden=32, name="student")
    before = np.mean(np.argmax(student.predict(x, verbose=0), -1) == teacher_classes)
    distiller = Distiller(student, teacher, temperature=2.0, alpha=1.0, hidden_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    history = distiller.fit(
        tf.data.Dataset.from_tensor_slices((x, noise)).batch(32), epochs=6, verbose=0
    ).history
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert history["hidden_loss"][-1] < history["hidden_loss"][0]
    after = np.mean(np.argmax(student.predict(x, verbose=0), -1) == teacher_classes)
    assert after > max(0.85, before)
    for a, b in zip(teacher_weights, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the teacher is frozen


def test_teacher_logits_match_full_length_batches_and_feed_the_same_loss():
    teacher = _classifier(layers=2, name="teacher", max_length=40)
    tokenizer = WordPieceTokenizer(VOCAB, sequence_length=40)
    rng = np.random.default_rng(3)
    # Lengths from 1 to 36 words: several 16-wide cuts, and a last batch smaller than the others.
    sentences = [" ".join(rng.choice(VOCAB[5:], rng.integers(1, 37))) for _ in range(45)]
    full = teacher.predict(tokenizer.pack(tf.constant(sentences), 40), verbose=0)
    cached = teacher_logits(teacher, tokenizer.pack, sentences, 40, batch_size=8)
    assert cached.shape == (45, 2)
    assert_close(cached, full, atol=1e-4)
    with pytest.raises(ValueError, match="empty"):
        teacher_logits(teacher, tokenizer.pack, [], 40)
    # A step on cached logits is the step on the live teacher: same loss, same student update.
    x, y = tokenizer.pack(tf.constant(sentences[:16]), 40), np.arange(16) % 2
    losses, weights = [], []
    for extra in ({}, {"teacher_logits": cached[:16]}):
        keras.utils.set_random_seed(0)
        student = _classifier(layers=1, name="student", max_length=40)
        distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        losses.append(distiller.train_on_batch({**x, **extra}, y, return_dict=True)["loss"])
        weights.append(student.get_weights())
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)
    for a, b in zip(*weights, strict=True):
        assert_close(a, b, atol=1e-5)


def test_hidden_alignment_needs_equal_widths():
    with pytest.raises(ValueError, match="equal widths"):
        Distiller(_classifier(layers=1, hidden=16), _classifier(layers=2), hidden_weight=1.0)


def _teacher_dir(tmp_path):
    teacher = _classifier(layers=2, name="teacher")
    directory = tmp_path / "teacher"
    directory.mkdir()
    teacher.save(directory / "classifier.keras")
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (directory / "config.json").write_text(json.dumps({"run": {"seq_len": 12}}))
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(160):
        words = rng.choice(VOCAB[5:], 6)
        lines.append(f"{' '.join(words)}\t{int('w3' in words or 'w4' in words)}")
    task = tmp_path / "task.tsv"
    task.write_text("\n".join(lines) + "\n")
    return directory, task


def test_cli_distils_and_reports(tmp_path):
    teacher, task = _teacher_dir(tmp_path)
    out = tmp_path / "student"
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "tfpretrain.cli.main",
        "distill",
        "--teacher",
        str(teacher),
        "--task",
        str(task),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "16",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "teacher_accuracy",
        "student_accuracy",
        "student_f1",
        "teacher_params",
        "student_params",
        "baseline_student_accuracy",
        "speedup",
    ):
        assert key in metrics, key
    assert metrics["student_params"] < metrics["teacher_params"] and metrics["speedup"] > 0
    student = keras.models.load_model(out / "classifier.keras")
    assert student.encoder.config.num_layers == 1
    assert metrics["teacher_labelling_seconds"] > 0
    # fit() in the run's subfolders (distill/, baseline/) records in the run directory's config.
    execution = json.loads((out / "config.json").read_text())["execution"]
    assert execution["precision"] == "float32" and execution["machine"]["cpu"]
    assert execution["xla_reason"].startswith("auto: ")
    assert result.stdout.count("Execution: XLA ") == 2  # the distillation and the baseline
    assert (out / "saved_model" / "1" / "saved_model.pb").is_file()  # exported by default
    # The task's integer labels are the export's label names.
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    names = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["label_names"]()
    assert names["label_names"].numpy().tolist() == [b"0", b"1"]


def test_bad_teacher_and_vocabulary_are_clear_errors(tmp_path):
    from tfpretrain.recipes.distill import DistillRun, run

    teacher, task = _teacher_dir(tmp_path)
    other = tmp_path / "other_vocab.txt"
    other.write_text("\n".join(VOCAB[:-1]) + "\n")
    with pytest.raises(ValueError, match="differs from the teacher's"):
        run(
            DistillRun(
                teacher=str(teacher), task=str(task), out_dir=str(tmp_path / "x"), vocab=str(other)
            )
        )
    with pytest.raises(FileNotFoundError, match="classifier.keras"):
        run(DistillRun(teacher=str(tmp_path), task=str(task), out_dir=str(tmp_path / "y")))
    with pytest.raises(ValueError, match="--student-preset must be one of"):
        run(
            DistillRun(
                teacher=str(teacher),
                task=str(task),
                out_dir=str(tmp_path / "z"),
                student_preset="huge",
            )
        )


def test_a_second_run_reuses_the_teachers_labels_and_refuses_foreign_ones(tmp_path, monkeypatch):
    from tfpretrain.data.text_files import labelled_task
    from tfpretrain.recipes import distill as recipe

    teacher, task = _teacher_dir(tmp_path)
    settings = dict(
        teacher=str(teacher),
        task=str(task),
        epochs=1,
        batch_size=16,
        baseline=False,
        latency_batches=1,
        verbose=0,
        export=False,
    )
    first = recipe.run(recipe.DistillRun(out_dir=str(tmp_path / "first"), **settings))
    assert not (tmp_path / "first" / "saved_model").exists()
    saved = tmp_path / "first" / "teacher_logits.npz"
    with np.load(saved) as f:
        logits = f["logits"]
    model = keras.models.load_model(teacher / "classifier.keras")
    sentences = list(labelled_task(str(task), 2)["train"][0])
    expected = teacher_logits(
        model, WordPieceTokenizer(VOCAB, sequence_length=12).pack, sentences, 12
    )
    assert_close(logits, expected, atol=1e-5)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(recipe, "teacher_logits", must_not_run)
    second = recipe.run(
        recipe.DistillRun(out_dir=str(tmp_path / "second"), teacher_logits=str(saved), **settings)
    )
    assert second["teacher_logits_from"] == str(saved)
    assert second["teacher_labelling_seconds"] == pytest.approx(first["teacher_labelling_seconds"])
    assert second["student_accuracy"] == pytest.approx(first["student_accuracy"])

    with pytest.raises(ValueError, match="another teacher, training set"):
        recipe.run(
            recipe.DistillRun(
                out_dir=str(tmp_path / "x"),
                teacher_logits=str(saved),
                **{**settings, "limit_train": 100},
            )
        )
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="is not a teacher_logits.npz"):
        recipe.run(
            recipe.DistillRun(out_dir=str(tmp_path / "y"), teacher_logits=str(broken), **settings)
        )
    with pytest.raises(ValueError, match="hidden-state alignment"):
        recipe.run(
            recipe.DistillRun(
                out_dir=str(tmp_path / "z"),
                teacher_logits=str(saved),
                **{**settings, "hidden_weight": 1.0},
            )
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--temperature", "0"], "--temperature must be > 0; got 0.0"),
        (["--alpha", "1.5"], "--alpha must be in [0, 1]; got 1.5"),
        (["--warmup-fraction", "-0.1"], "--warmup-fraction must be in [0, 1]"),
        (["--epochs", "0"], "--epochs must be > 0"),
        (["--hidden-weight", "-1"], "--hidden-weight must be >= 0"),
        (["--teacher-logits", "labels.npz", "--hidden-weight", "1"], "drop --teacher-logits"),
    ],
)
def test_bad_settings_are_refused_before_the_teacher_runs(
    argv, message, tmp_path, monkeypatch, capsys
):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import distill

    monkeypatch.setattr(distill, "run", lambda cfg: pytest.fail(f"the recipe ran with {cfg}"))
    # The teacher and task do not exist: the settings error comes first.
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(tmp_path / "nowhere"),
                "--task",
                str(tmp_path / "no.tsv"),
                *argv,
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert message in err and "nowhere" not in err


def test_student_presets_are_half_and_the_bert_presets():
    from tfpretrain.recipes.distill import DistillRun
    from tfpretrain.settings.distill import STUDENT_PRESETS

    assert STUDENT_PRESETS == ("half", *BertConfig.PRESETS)
    with pytest.raises(ValueError, match="--student-embeddings must be one of teacher, random"):
        DistillRun(teacher="t", out_dir="o", student_embeddings="zeros")
