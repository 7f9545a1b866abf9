"""`tfpretrain mlm`: learn a WordPiece vocabulary and pre-train a BERT encoder with masked-LM."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.mlm import MlmRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "mlm",
        MlmRun,
        run=run,
        help="pre-train a BERT encoder with masked-language modelling",
        description=(
            "Learn a WordPiece vocabulary from the first lines of --corpus (or use --vocab), "
            "stream the corpus packed into [CLS] ... [SEP] sequences (lines spread through it "
            "held out for validation), and pre-train a BERT preset with dynamic 80/10/10 masking "
            "(and next-sentence prediction with --nsp); --init continues a Hugging Face BERT "
            "masked LM with its vocabulary. Writes vocab.txt, encoder.keras, mlm.keras, "
            "checkpoints/, history.json, loss.png, metrics.json and saved_model/1/ (signatures "
            "'encode': strings -> pooled and per-token features, and 'fill_mask': texts with "
            "[MASK] -> the likeliest tokens; unless --no-export) to --out."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.mlm:run")
    print_metrics(metrics)
    exported = ", loss.png and saved_model/1/" if args.export else " and loss.png"
    print_written(metrics, f"Wrote {args.out_dir}/metrics.json, vocab.txt, encoder.keras{exported}")
    return 0
