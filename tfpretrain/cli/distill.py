"""`tfpretrain distill`: distil a fine-tuned text classifier into a smaller student."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "distill",
        help="distil a fine-tuned text classifier into a smaller student",
        description=(
            "Train a student TextClassifier on --task with the teacher's softened predictions "
            "(temperature T, T^2-scaled KL) plus the labels, optionally aligning the last hidden states "
            "(DistilBERT). Writes the student (classifier.keras, vocab.txt) and metrics.json: teacher and "
            "student dev accuracy/F1, encoder parameter counts, the same student trained without the "
            "teacher (baseline_student_*), and the teacher/student latency per batch (speedup)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--teacher", required=True, help="run directory of `tfpretrain finetune` (classifier.keras, vocab.txt)")
    p.add_argument("--student-preset", default="half", choices=["half", "tiny", "mini", "small", "base"],
                   help="'half': teacher widths, half the layers, initialised from every other teacher layer; "
                        "else a BERT preset trained from scratch over the teacher's vocabulary")
    p.add_argument("--student-embeddings", default="teacher", choices=["teacher", "random"],
                   help="start a preset student's embeddings from the teacher's, projected onto their top "
                        "principal directions, or at random ('half' students copy the teacher's anyway)")
    p.add_argument("--task", default="sst2", help="'sst2' or a sentence<TAB>label file (as for finetune)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--vocab", default=None, help="the student's vocab.txt; must equal the teacher's")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (distillation and baseline each)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=1e-4, help="peak AdamW learning rate of the student")
    p.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the soft targets")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft targets (1 - alpha: labels)")
    p.add_argument("--hidden-weight", type=float, default=0.0,
                   help="weight of the cosine alignment of last hidden states (needs equal widths)")
    p.add_argument("--teacher-logits", default=None,
                   help="teacher_logits.npz of an earlier distill run with the same teacher and training set: "
                        "reuse its labels instead of running the teacher again")
    p.add_argument("--no-baseline", action="store_true", help="skip the student trained without the teacher")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.distill import DistillRun
    from tfpretrain.recipes.distill import run as run_recipe

    metrics = run_recipe(DistillRun(
        teacher=args.teacher, out_dir=args.out, student_preset=args.student_preset,
        student_embeddings=args.student_embeddings, task=args.task,
        vocab=args.vocab, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        temperature=args.temperature, alpha=args.alpha, hidden_weight=args.hidden_weight,
        teacher_logits=args.teacher_logits, baseline=not args.no_baseline, limit_train=args.limit_train,
        seed=args.seed, strategy=args.strategy, precision=args.precision,
    ))
    print(json.dumps(metrics, indent=2))
    print(f"Wrote {args.out}/metrics.json, classifier.keras and vocab.txt")
    return 0
