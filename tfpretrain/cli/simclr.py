"""`tfpretrain simclr`: contrastive pre-training of an image encoder, probed, exported and drawn."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.simclr import SimCLRRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "simclr",
        SimCLRRun,
        run=run,
        help="pre-train an image encoder by contrastive learning (SimCLR)",
        description=(
            "Pre-train a small CNN encoder with SimCLR (two augmented views per image, NT-Xent "
            "loss, LARS or AdamW with warm-up and cosine decay), track k-NN accuracy, train a "
            "linear probe on the frozen features, and write metrics.json "
            "(linear_probe_accuracy), views.png, embeddings.png (PCA of test features), "
            "loss.png, model.keras, encoder.keras and saved_model/1/ (signature 'encode') to --out."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.simclr:run")
    print_metrics(metrics)
    exported = " and saved_model/1/" if args.export else ""
    print_written(
        metrics,
        f"Wrote {args.out_dir}/metrics.json, views.png, embeddings.png, loss.png, "
        f"encoder.keras{exported}",
    )
    return 0
