"""Distil a fine-tuned text classifier (a `tfpretrain finetune` run) into a smaller student;
with `--corpus` instead of `--task`, a pre-trained encoder on unlabelled text
(`distill_corpus.py`).

Writes the student (`classifier.keras`, `vocab.txt`, and `saved_model/` serving raw strings,
or string pairs for a sentence-pair task, unless `export` is off) and `metrics.json` with the
teacher's and the student's dev metrics, both encoders' parameter counts, the same student
fine-tuned on the labels alone (`baseline_student_*`), and the teacher/student latency ratio
per batch.

Without hidden-state alignment the frozen teacher labels the training set once, before the
first epoch (`teacher_labelling_seconds`), instead of running beside the student at every step.
Those labels are kept in `teacher_logits.npz`; a later run with the same teacher, training set and
sequence length reuses them through `teacher_logits=` (a sweep over student settings then labels
once).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.distribute import get_strategy, set_precision, xla_for_training
from tfpretrain.metrics import class_report, classification_metrics
from tfpretrain.models.bert import BertConfig, BertEncoder
from tfpretrain.models.classifier import TextClassifier
from tfpretrain.models.distill import (
    Distiller,
    half_depth_encoder,
    half_depth_student,
    init_embeddings_from_teacher,
    student_config,
    teacher_logits,
)
from tfpretrain.recipes.finetune import _dataset, load_task
from tfpretrain.recipes.load import model_width
from tfpretrain.settings.distill import DistillRun
from tfpretrain.text.wordpiece import WordPieceTokenizer, read_vocab
from tfpretrain.training import WarmupSchedule, adamw, fit, record_config, run_directory, write_json
from tfpretrain.training.checkpoint import load_keras_model


def load_teacher(directory) -> tuple[TextClassifier, Path, dict, list[str] | None]:
    """The classifier, vocab path, run settings and class names (None when the run predates
    them) of a `tfpretrain finetune` run directory."""
    directory = Path(directory)
    needed = [directory / n for n in ("classifier.keras", "vocab.txt")]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"--teacher {directory} lacks {missing}: give the run directory of `tfpretrain "
            "finetune` (it holds classifier.keras and vocab.txt)."
        )
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    teacher = load_keras_model(needed[0])
    if not isinstance(teacher, TextClassifier) or not isinstance(teacher.encoder, BertEncoder):
        raise ValueError(f"{needed[0]} is a {type(teacher).__name__}, not a BERT TextClassifier.")
    return teacher, needed[1], config.get("run", {}), config.get("class_names")


def check_teacher_classes(
    teacher_classes: list[str] | None, task_classes: list[str], teacher: str
) -> None:
    """The task's classes must be the teacher's, in its order: its logits are read by class id."""
    if teacher_classes is not None and list(teacher_classes) != list(task_classes):
        raise ValueError(
            f"--teacher {teacher} was trained on the classes {teacher_classes}, but the task has "
            f"{task_classes}; pass --label-names in the teacher's order (or distil on the "
            "teacher's task)."
        )


def _latency(model: keras.Model, batch: dict, repeats: int) -> float:
    """Median seconds of one compiled inference call on `batch`."""
    fn = tf.function(lambda x: model(x, training=False), jit_compile=True)
    fn(batch)  # compile
    times = []
    for _ in range(max(3, repeats)):
        start = time.perf_counter()
        np.asarray(fn(batch))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _labels_key(teacher_dir, sentences, sequence_length: int, pairs=None) -> str:
    """Fingerprint of what the teacher's labels depend on: its weights, the sentences, the
    length."""
    digest = hashlib.sha256()
    with open(Path(teacher_dir) / "classifier.keras", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(f"{sequence_length}\n".encode())
    for sentence in sentences:
        digest.update(sentence.encode() + b"\n")
    for sentence in pairs or []:  # none for single sentences: their keys stay as they were
        digest.update(b"\t" + sentence.encode() + b"\n")
    return digest.hexdigest()


def _teacher_labels(
    cfg: DistillRun, teacher, tokenizer, sentences, seq_len: int, metrics: dict, pairs=None
) -> np.ndarray:
    """The teacher's logits on the training sentences: from `cfg.teacher_logits` when it was written
    for this teacher and training set, else computed and saved to `out_dir/teacher_logits.npz`."""
    key = _labels_key(cfg.teacher, sentences, seq_len, pairs)
    if cfg.teacher_logits:
        path = Path(cfg.teacher_logits)
        try:
            with np.load(path) as saved:
                logits, saved_key, seconds = (
                    saved["logits"],
                    str(saved["key"]),
                    float(saved["seconds"]),
                )
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(
                f"--teacher-logits {path} is not a teacher_logits.npz written by `tfpretrain "
                f"distill` ({e}); drop the flag to label the training set again."
            ) from e
        if saved_key != key:
            raise ValueError(
                f"--teacher-logits {path} holds the labels of another teacher, training set or "
                "sequence length; drop the flag to label the training set again."
            )
        # The labelling pass still belongs to the cost of this student.
        metrics.update(teacher_labelling_seconds=seconds, teacher_logits_from=str(path))
        return logits
    start = time.perf_counter()
    logits = teacher_logits(
        teacher, tokenizer.pack, sentences, seq_len, progress=cfg.verbose != 0, pairs=pairs
    )
    seconds = time.perf_counter() - start
    np.savez(Path(cfg.out_dir) / "teacher_logits.npz", logits=logits, key=key, seconds=seconds)
    metrics["teacher_labelling_seconds"] = seconds
    return logits


def _dev_metrics(model, dev_ds, dev_y, num_classes):
    return classification_metrics(
        dev_y, np.argmax(model.predict(dev_ds, verbose=0), -1), num_classes
    )


def _schedule(cfg: DistillRun, n_train: int):
    steps = max(1, (n_train // cfg.batch_size) * cfg.epochs)
    warmup = int(cfg.warmup_fraction * steps)
    return WarmupSchedule(cfg.learning_rate, steps, warmup, decay="linear")


def student_encoder(cfg: DistillRun, teacher: BertEncoder) -> BertEncoder:
    """The student's encoder: `half` of the teacher (its every other layer), or a BERT preset
    over the teacher's vocabulary whose embeddings start from the teacher's unless
    `--student-embeddings random`."""
    if cfg.student_preset == "half":
        return half_depth_encoder(teacher)
    config = student_config(
        cfg.student_preset,
        teacher.config.vocabulary_size,
        teacher.config.max_sequence_length,
        teacher.config.dropout,
    )
    student = BertEncoder(config, name="student_encoder")
    if cfg.student_embeddings == "teacher":
        init_embeddings_from_teacher(student, teacher)
    return student


def _build_student(cfg: DistillRun, teacher: TextClassifier) -> TextClassifier:
    if cfg.student_preset == "half":  # the teacher's head too
        return half_depth_student(teacher)
    return TextClassifier(
        student_encoder(cfg, teacher.encoder),
        teacher.num_classes,
        pooling=teacher.pooling,
        dropout=teacher.dropout,
        name="student",
    )


def student_width(cfg: DistillRun) -> int | None:
    """The student's hidden width before any model is built (what `--precision auto` judges
    by): a preset's, or for `half` the teacher's as its folder records it."""
    preset = BertConfig.PRESETS.get(cfg.student_preset)
    return preset["hidden_dim"] if preset else model_width(cfg.teacher)


def check_vocabulary(cfg: DistillRun, vocabulary: list[str], source) -> None:
    """`--vocab`, when given, must be the teacher's vocabulary (read from `source`)."""
    if cfg.vocab is not None and read_vocab(cfg.vocab) != vocabulary:
        raise ValueError(
            f"The student's vocabulary {cfg.vocab} ({len(read_vocab(cfg.vocab))} tokens) differs "
            f"from the teacher's {source} ({len(vocabulary)} tokens): teacher and student "
            "must read the same token ids. Drop --vocab to use the teacher's."
        )


def _default_seq_len(cfg: DistillRun) -> int:
    """64 tokens with --corpus; with --task the teacher run's sequence length (else 64)."""
    config_file = Path(cfg.teacher) / "config.json"
    if cfg.corpus is not None or not config_file.is_file():
        return 64
    return int(json.loads(config_file.read_text()).get("run", {}).get("seq_len") or 64)


def run(cfg: DistillRun) -> dict:
    """Distils the teacher into a student, as `--task` or `--corpus` says, and writes the run
    directory; returns the metrics written to `out_dir/metrics.json`."""
    if cfg.seq_len is None:  # resolved before the run directory records the settings
        cfg = dataclasses.replace(cfg, seq_len=_default_seq_len(cfg))
    if cfg.corpus is not None:
        from tfpretrain.recipes.distill_corpus import run_corpus

        return run_corpus(cfg)
    return _run_task(cfg)


@run_directory
def _run_task(cfg: DistillRun) -> dict:
    """Distils on `--task`, evaluates, times and saves."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    strategy = get_strategy(cfg.strategy)
    set_precision(cfg.precision, width=student_width(cfg))
    keras.utils.set_random_seed(cfg.seed)

    teacher, vocab_path, _, teacher_classes = load_teacher(cfg.teacher)
    check_vocabulary(cfg, read_vocab(vocab_path), vocab_path)
    seq_len = cfg.seq_len
    tokenizer = WordPieceTokenizer.from_pretrained(vocab_path, sequence_length=seq_len)
    data = load_task(cfg, teacher.num_classes)
    (train_x, train_y), (dev_x, dev_y) = data["train"], data["dev"]
    train_pair, dev_pair = data["train_pair"], data["dev_pair"]
    check_teacher_classes(teacher_classes, data["class_names"], cfg.teacher)
    if len(train_x) < cfg.batch_size:
        raise ValueError(
            f"{len(train_x)} training examples are fewer than one batch of "
            f"{cfg.batch_size}; lower --batch-size."
        )
    train = _dataset(
        tokenizer,
        train_x,
        train_y,
        cfg.batch_size,
        seq_len,
        shuffle=True,
        seed=cfg.seed,
        pairs=train_pair,
    )
    dev = _dataset(tokenizer, dev_x, dev_y, 256, seq_len, shuffle=False, pairs=dev_pair)
    num_classes = data["num_classes"]
    metrics: dict = {
        "student_preset": cfg.student_preset,
        "student_embeddings": cfg.student_embeddings,
        "temperature": cfg.temperature,
        "alpha": cfg.alpha,
        "hidden_weight": cfg.hidden_weight,
    }

    distill_train = train
    if not cfg.hidden_weight:  # the frozen teacher labels the training set once, not every epoch
        cached = _teacher_labels(
            cfg, teacher, tokenizer, list(train_x), seq_len, metrics, train_pair
        )
        distill_train = _dataset(
            tokenizer,
            train_x,
            train_y,
            cfg.batch_size,
            seq_len,
            shuffle=True,
            seed=cfg.seed,
            extra={"teacher_logits": cached},
            pairs=train_pair,
        )

    with strategy.scope():
        student = _build_student(cfg, teacher)
        distiller = Distiller(
            student,
            teacher,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            hidden_weight=cfg.hidden_weight,
            name="distiller",
        )
        distiller.compile(
            optimizer=adamw(student, _schedule(cfg, len(train_x))),
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=cfg.steps_per_execution,
        )
    history = fit(
        distiller,
        distill_train,
        epochs=cfg.epochs,
        validation_data=dev,
        out_dir=out / "distill",
        verbose=cfg.verbose,
        tensorboard=cfg.tensorboard,
        checkpoint_every=cfg.checkpoint_every,
    )
    metrics["distill_seconds"] = history.training_seconds
    teacher_scores = _dev_metrics(teacher, dev, dev_y, num_classes)
    student_predictions = np.argmax(student.predict(dev, verbose=0), -1)
    student_scores = classification_metrics(dev_y, student_predictions, num_classes)
    for prefix, scores in (("teacher", teacher_scores), ("student", student_scores)):
        metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
    # The student is this run's classifier: its class names, per-class scores, confusion matrix.
    metrics.update(class_report(dev_y, student_predictions, data["class_names"]))
    metrics["teacher_params"] = teacher.encoder.count_params()
    metrics["student_params"] = student.encoder.count_params()
    metrics["param_ratio"] = metrics["student_params"] / metrics["teacher_params"]
    metrics["accuracy_retained"] = metrics["student_accuracy"] / max(
        metrics["teacher_accuracy"], 1e-12
    )

    if cfg.baseline:  # the same student (same start), trained on the labels alone
        keras.utils.set_random_seed(cfg.seed)
        with strategy.scope():
            baseline = _build_student(cfg, teacher)
            baseline.compile(
                optimizer=adamw(baseline, _schedule(cfg, len(train_x))),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=xla_for_training(cfg.xla),
                steps_per_execution=cfg.steps_per_execution,
            )
        history = fit(
            baseline,
            train,
            epochs=cfg.epochs,
            validation_data=dev,
            out_dir=out / "baseline",
            verbose=cfg.verbose,
            tensorboard=cfg.tensorboard,
            checkpoint_every=cfg.checkpoint_every,
        )
        metrics["baseline_seconds"] = history.training_seconds
        metrics.update(
            {
                f"baseline_student_{k}": v
                for k, v in _dev_metrics(baseline, dev, dev_y, num_classes).items()
            }
        )

    batch = next(iter(dev.take(1)))[0]
    batch = {k: v[: cfg.batch_size] for k, v in batch.items()}
    metrics["teacher_latency_seconds"] = _latency(teacher, batch, cfg.latency_batches)
    metrics["student_latency_seconds"] = _latency(student, batch, cfg.latency_batches)
    metrics["speedup"] = metrics["teacher_latency_seconds"] / metrics["student_latency_seconds"]

    student.save(out / "classifier.keras")
    tokenizer.save(out)
    if cfg.export:
        from tfpretrain.export.text import export_text_classifier, task_label_names

        export_text_classifier(
            student,
            tokenizer,
            out / "saved_model",
            seq_len,
            label_names=task_label_names(data, student.output_shape[-1]),
            pairs=train_pair is not None,
        )
    record_config(out, class_names=data["class_names"])
    write_json(out / "metrics.json", metrics)
    return metrics
