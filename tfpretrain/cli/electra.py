"""`tfpretrain electra`: pre-train a BERT encoder by replaced-token detection (ELECTRA)."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.electra import ElectraRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "electra",
        ElectraRun,
        run=run,
        help="pre-train a BERT encoder with ELECTRA's replaced-token detection",
        description=(
            "Learn a WordPiece vocabulary from --corpus (or use --vocab), mask it as `tfpretrain "
            "mlm` does, let a small generator (--generator-layers) fill the masks with sampled "
            "tokens, and train the discriminator (a BERT --preset) to tell replaced tokens from "
            "original ones; the loss is the generator's masked-LM loss plus --rtd-weight times "
            "the detection loss. Writes vocab.txt, encoder.keras (the discriminator's encoder: "
            "`tfpretrain finetune --init OUT` reads it like an mlm run), electra.keras, "
            "checkpoints/, history.json, loss.png and metrics.json to --out (no SavedModel)."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.electra:run")
    print_metrics(metrics)
    print_written(
        metrics, f"Wrote {args.out_dir}/metrics.json, vocab.txt, encoder.keras and loss.png"
    )
    return 0
