"""`tfpretrain clm`: pre-train a GPT-style causal language model on a text corpus."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.clm import CLMRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "clm",
        CLMRun,
        run=run,
        help="pre-train a GPT-style causal language model",
        description=(
            "Train a GPT (pre-norm causal transformer, tied output head) on a UTF-8 text corpus, "
            "streamed (every tenth window of the token stream held out for validation), with "
            "AdamW, warm-up and cosine decay and gradient clipping, XLA-compiled. Writes "
            "checkpoints/, model.keras, tokenizer/, samples.txt, metrics.json (train and "
            "validation loss per evaluation, final val_loss) and saved_model/1/ (signature "
            "'generate') to --out. The defaults are nanoGPT's CPU recipe for character-level "
            "Tiny Shakespeare."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.clm:run")
    print_metrics(metrics, skip=("evaluations", "samples"))
    written = ["metrics.json", "model.keras", "tokenizer/"]
    if args.num_samples:
        written.append("samples.txt")
    if args.export:
        written.append("saved_model/1/")
    print_written(metrics, f"Wrote {args.out_dir}/{', '.join(written[:-1])} and {written[-1]}")
    return 0
