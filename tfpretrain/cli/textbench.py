"""`tfpretrain textbench`: the label-budget protocol for text starts."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_written, run_recipe
from tfpretrain.settings.textbench import TextbenchRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "textbench",
        TextbenchRun,
        run=run,
        help="fine-tune text starts on 100 ... all labels and compare them (table and curve)",
        description=(
            "For every --init and every --labels budget, fine-tune with `finetune`'s budget rule "
            "(class-balanced draws of the labels, steps and learning rate from their number and "
            "the start, early stopping on a held-out slice of them, never dev), once per seed "
            "(--seeds; budgets above --seeds-up-to use the first seed). Each cell is a finetune "
            "run directory under OUT/cells/, skipped when finished, so an interrupted benchmark "
            "resumes. Writes OUT/metrics.json (per start and budget: mean, std and per-seed dev "
            "accuracy and F1), table.md and curve.png."
        ),
    )


def run(args: argparse.Namespace) -> int:
    from tfpretrain.evaluate import markdown_table

    metrics = run_recipe(args, "tfpretrain.recipes.textbench:run")
    print(markdown_table(metrics["results"]))
    print_written(metrics, f"Wrote {args.out_dir}/metrics.json, table.md and curve.png")
    return 0
