"""`tfpretrain autoencoder`: pre-train, evaluate, export and plot an MNIST autoencoder."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.autoencoder import AutoencoderRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "autoencoder",
        AutoencoderRun,
        run=run,
        help="pre-train an image autoencoder",
        description=(
            "Train the dense (784-128-64-64-784) or convolutional autoencoder with Adam and binary "
            "cross-entropy, evaluate it on the test set, and write metrics.json, "
            "reconstructions.png, loss.png, model.keras and saved_model/1/ (signatures 'encode' "
            "and 'reconstruct') to --out."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.autoencoder:run")
    print_metrics(metrics)
    written = (
        "reconstructions.png, loss.png and saved_model/1/"
        if args.export
        else ("reconstructions.png and loss.png")
    )
    print_written(metrics, f"Wrote {args.out_dir}/metrics.json, {written}")
    return 0
