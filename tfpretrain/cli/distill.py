"""`tfpretrain distill`: distil a fine-tuned text classifier, or a pre-trained encoder, into a
smaller student."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.distill import DistillRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "distill",
        DistillRun,
        run=run,
        help="distil a fine-tuned text classifier or a pre-trained encoder into a smaller student",
        description=(
            "With --task: train a student TextClassifier on the task with the teacher's "
            "softened predictions (temperature T, T^2-scaled KL) plus the labels, optionally "
            "aligning the last hidden states (DistilBERT). Writes the student (classifier.keras, "
            "vocab.txt, saved_model/1/ with signature 'serve': strings -> probabilities) and "
            "metrics.json: teacher and student dev accuracy/F1, encoder parameter counts, the "
            "same student trained without the teacher (baseline_student_*), and the "
            "teacher/student latency per batch (speedup). "
            "With --corpus instead: task-agnostic distillation of a pre-trained encoder (a "
            "Hugging Face BERT / DistilBERT folder or an mlm run) on unlabelled text, as "
            "DistilBERT pre-trains its student: for --steps steps the student matches the "
            "teacher's last hidden states at every real token of the corpus' lines (cosine "
            "distance, plus --mse-weight x their mean squared error). Writes the student as an "
            "encoder run that finetune --init reads (encoder.keras, vocab.txt, "
            "tokenizer_config.json; no saved_model) and metrics.json: the held-out distance "
            "before and after, steps, training time, both parameter counts."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.distill:run")
    print_metrics(metrics)
    if args.corpus is not None:
        written = "encoder.keras, vocab.txt"
    else:
        written = "classifier.keras, vocab.txt" + (" and saved_model/1/" if args.export else "")
    print_written(metrics, f"Wrote {args.out_dir}/metrics.json, {written}")
    return 0
