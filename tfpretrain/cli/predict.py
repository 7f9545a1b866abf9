"""`tfpretrain predict`: run any exported model on texts or images, print JSON lines."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, run_recipe
from tfpretrain.settings.predict import PredictRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "predict",
        PredictRun,
        run=run,
        help="run an exported model on texts or images",
        description=(
            "Load a SavedModel (from a run directory or on its own), find its kind from its "
            "signatures and print one JSON object per input: label and probabilities "
            "(classifiers), completions (GPT), outputs (T5), pooled features or the top tokens of "
            "each [MASK] (masked LMs), codes and a reconstruction "
            "summary (autoencoders), features (encoders, GAN discriminators)."
        ),
    )


def run(args: argparse.Namespace) -> int:
    run_recipe(args, "tfpretrain.export.predict:run")
    return 0
