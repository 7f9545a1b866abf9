"""`tfpretrain distill`: distil a fine-tuned text classifier into a smaller student."""

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
        help="distil a fine-tuned text classifier into a smaller student",
        description=(
            "Train a student TextClassifier on --task with the teacher's softened predictions "
            "(temperature T, T^2-scaled KL) plus the labels, optionally aligning the last hidden "
            "states (DistilBERT). Writes the student (classifier.keras, vocab.txt, saved_model/1/ "
            "with signature 'serve': strings -> probabilities) and metrics.json: teacher and "
            "student dev accuracy/F1, encoder parameter counts, the same student trained without "
            "the teacher (baseline_student_*), and the teacher/student latency per batch "
            "(speedup)."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.distill:run")
    print_metrics(metrics)
    exported = " and saved_model/1/" if args.export else ""
    print_written(
        metrics, f"Wrote {args.out_dir}/metrics.json, classifier.keras, vocab.txt{exported}"
    )
    return 0
