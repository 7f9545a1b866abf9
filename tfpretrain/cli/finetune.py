"""`tfpretrain finetune`: fine-tune an encoder on a text classification task and evaluate it."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.finetune import FinetuneRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "finetune",
        FinetuneRun,
        run=run,
        help="fine-tune a text classifier (SST-2 or your TSV) and report "
        "accuracy/precision/recall/F1",
        description=(
            "Build a TextClassifier on the encoder given by --init (a `tfpretrain mlm` run "
            "directory, a Hugging Face BERT, DistilBERT or RoBERTa folder, or 'scratch' for "
            "random weights of "
            "--preset), train it with AdamW and linear warm-up/decay, and write dev-set accuracy, "
            "precision, recall and F1 to OUT/metrics.json, plus classifier.keras and "
            "saved_model/1/ (signature 'serve': strings -> probabilities). "
            "With a `tfpretrain seq2seq` directory "
            "(or scratch with a t5-* preset) the encoder-decoder is trained text to text instead: "
            "metrics.json then holds exact_match (and accuracy/precision/recall/F1 for sst2, cer "
            "for other tasks) and saved_model/1/ has signature 'generate' (strings -> strings)."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.finetune:run")
    print_metrics(metrics)
    if args.init == "vsm":
        written = "vocab.txt and classifier.weights.h5"
    else:
        written = "saved_model/1/" if args.export else "the model"
    print_written(metrics, f"Wrote {args.out_dir}/metrics.json and {written}")
    return 0
