"""`tfpretrain distill --corpus`: task-agnostic distillation of a pre-trained encoder.

The student (by default `half`: the teacher's widths, vocabulary and embeddings, every other
teacher layer as its start) learns the teacher's last hidden states at every real token of the
corpus' lines (`HiddenStateDistiller`), as DistilBERT pre-trains its student: no labels are
seen, so the student is a start for `finetune --init` like any pre-trained encoder.

Writes `encoder.keras`, `vocab.txt` and `tokenizer_config.json` (what `finetune --init` reads of
an mlm run), `checkpoints/`, `config.json` and `metrics.json`: the hidden-state distance on
held-out lines before and after, steps, training time, both encoders' parameter counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import tensorflow as tf

from tfpretrain.data.pipeline import shard_by_element
from tfpretrain.distribute import get_strategy, set_precision, xla_for_training
from tfpretrain.models.bert import BertEncoder
from tfpretrain.models.distill import HiddenStateDistiller
from tfpretrain.recipes.distill import check_vocabulary, student_encoder, student_width
from tfpretrain.recipes.mlm import corpus_lines
from tfpretrain.settings.distill import DistillRun
from tfpretrain.text.mlm import SHUFFLE_BUFFER
from tfpretrain.text.wordpiece import WordPieceTokenizer
from tfpretrain.training import (
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    warmup_steps,
    write_json,
)
from tfpretrain.training.checkpoint import load_keras_model

# Held-out lines measured before and after training: each measure runs both encoders over them.
HELD_OUT_LINES = 2048


def load_encoder_teacher(path, seq_len: int) -> tuple[BertEncoder, WordPieceTokenizer]:
    """The `BertEncoder` and WordPiece tokenizer (packing `seq_len` tokens) of a Hugging Face
    BERT / DistilBERT folder or of an encoder run (`mlm`, `electra`, `distill --corpus`).

    Raises:
        FileNotFoundError: neither kind of folder.
        ValueError: another model, or `seq_len` beyond its positions.
    """
    from tfpretrain.checkpoints.bert import load_bert
    from tfpretrain.recipes.load import hf_encoder_folder, hf_model_type

    path = Path(path)
    if (path / "encoder.keras").is_file():
        encoder = load_keras_model(path / "encoder.keras", compile=False)
        if not isinstance(encoder, BertEncoder):
            raise ValueError(f"{path / 'encoder.keras'} is a {type(encoder).__name__}, not a BERT.")
        positions = encoder.config.max_sequence_length
        if seq_len > positions:
            raise ValueError(
                f"--seq-len {seq_len} is longer than the {positions} positions of the teacher in "
                f"{path}; pass --seq-len {positions} or less."
            )
        return encoder, WordPieceTokenizer.from_pretrained(path, sequence_length=seq_len)
    if hf_model_type(path) is None:
        raise FileNotFoundError(
            f"--teacher {path} is neither a Hugging Face BERT or DistilBERT folder (config.json, "
            "weights, vocab.txt) nor a `tfpretrain mlm` or `electra` run (encoder.keras, "
            "vocab.txt)."
        )
    tokenizer, _ = hf_encoder_folder(path, seq_len, kinds=("bert", "distilbert"))
    return load_bert(path, head="encoder"), tokenizer


def _batches(lines: tf.data.Dataset, tokenizer, seq_len: int, batch_size: int, drop_remainder):
    """Batches of lines packed one per row as `[CLS] line [SEP]`, cut or padded to `seq_len`:
    the padding mask then says where the hidden states are compared."""
    auto = tf.data.AUTOTUNE
    batches = lines.batch(batch_size, drop_remainder=drop_remainder)
    packed = batches.map(lambda b: tokenizer.pack(b, seq_len), num_parallel_calls=auto)
    return shard_by_element(packed.prefetch(auto))


@run_directory
def run_corpus(cfg: DistillRun) -> dict:
    """Distils the teacher encoder on `--corpus`, measures the held-out lines before and after,
    and saves the student as an encoder run."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    strategy = get_strategy(cfg.strategy)
    wanted = student_width(cfg)  # a preset's, or the teacher's for `half`
    set_precision(cfg.precision, width=wanted)
    keras.utils.set_random_seed(cfg.seed)

    train_lines, held_lines = corpus_lines(cfg)
    if not held_lines:
        raise ValueError(
            f"The corpus {cfg.corpus!r} is too short to hold out one line in "
            f"{round(1 / cfg.validation_fraction)}; give more text or raise "
            "--validation-fraction."
        )
    held_lines = held_lines[:HELD_OUT_LINES]

    with strategy.scope():
        teacher, tokenizer = load_encoder_teacher(cfg.teacher, cfg.seq_len)
        check_vocabulary(cfg, tokenizer.vocabulary, cfg.teacher)
        width = teacher.config.hidden_dim
        if cfg.student_preset != "half" and wanted != width:
            raise ValueError(
                f"--corpus distillation matches the teacher's {width}-wide hidden states; "
                f"--student-preset {cfg.student_preset} is {wanted} wide. Use "
                "--student-preset half (the teacher's widths, half its layers)."
            )
        student = student_encoder(cfg, teacher)
        distiller = HiddenStateDistiller(student, teacher, mse_weight=cfg.mse_weight)
        warmup = warmup_steps(cfg.steps, cfg.warmup_fraction)
        distiller.compile(
            optimizer=adamw(
                student, WarmupSchedule(cfg.learning_rate, cfg.steps, warmup, decay="linear")
            ),
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=min(cfg.steps_per_execution, cfg.steps),
        )

    held = _batches(
        tf.data.Dataset.from_tensor_slices(held_lines), tokenizer, cfg.seq_len, 256, False
    )
    before = distiller.evaluate(held, verbose=0, return_dict=True)

    def train() -> tf.data.Dataset:  # a function: a resumed run rebuilds the same seeded order
        lines = train_lines.shuffle(SHUFFLE_BUFFER, seed=cfg.seed).repeat()
        return _batches(lines, tokenizer, cfg.seq_len, cfg.batch_size, True)

    history = fit(
        distiller,
        train,
        epochs=1,
        steps_per_epoch=cfg.steps,
        out_dir=out,
        verbose=cfg.verbose,
        tensorboard=cfg.tensorboard,
        checkpoint_every=cfg.checkpoint_every,
    )
    after = distiller.evaluate(held, verbose=0, return_dict=True)

    student.save(out / "encoder.keras")
    tokenizer.save(out)
    record_config(out, model=dataclasses.asdict(student.config))
    metrics = {
        **{f"held_out_{k}_before": float(v) for k, v in before.items()},
        **{f"held_out_{k}_after": float(v) for k, v in after.items()},
        "held_out_lines": len(held_lines),
        "steps": cfg.steps,
        "train_seconds": history.training_seconds,
        "seconds_per_step": history.training_seconds / cfg.steps,
        "final_loss": float(history.history["loss"][-1]),
        "student_preset": cfg.student_preset,
        "teacher_layers": teacher.config.num_layers,
        "student_layers": student.config.num_layers,
        "teacher_params": teacher.count_params(),
        "student_params": student.count_params(),
    }
    metrics["param_ratio"] = metrics["student_params"] / metrics["teacher_params"]
    write_json(out / "metrics.json", metrics)
    return metrics
