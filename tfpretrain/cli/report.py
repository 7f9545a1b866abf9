"""`tfpretrain report`: one comparison table (and bar plot) of every run's metrics."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_written, run_recipe
from tfpretrain.settings.report import ReportRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "report",
        ReportRun,
        run=run,
        help="compare runs: markdown tables and a bar plot from their metrics.json",
        description=(
            "Read metrics.json of the given run directories (or of every run below given "
            "folders): image encoders (tfpretrain evaluate, gan, simclr) by linear probe and 100 "
            "/ 1,000 / all labels, text models (finetune with any --init including vsm, distill) "
            "by SST-2 dev accuracy against the vector-space baseline, with pre-training and "
            "fine-tuning times. Writes OUT/report.md, OUT/report.json and OUT/comparison.png."
        ),
    )


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.report import markdown

    metrics = run_recipe(args, "tfpretrain.recipes.report:run")
    print(markdown(metrics))
    print_written(metrics, f"Wrote {args.out_dir}/report.md, report.json and comparison.png")
    return 0
