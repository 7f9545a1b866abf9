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
            "fine-tuning times, and label-budget curves (textbench). Writes OUT/report.md, "
            "OUT/report.json, OUT/comparison.png and OUT/label_curves.png (with curves)."
        ),
    )


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.report import markdown

    metrics = run_recipe(args, "tfpretrain.recipes.report:run")
    print(markdown(metrics))
    from pathlib import Path

    plots = [
        name
        for name in ("comparison.png", "label_curves.png")
        if (Path(args.out_dir) / name).is_file()
    ]
    print_written(
        metrics, f"Wrote {args.out_dir}/report.md, report.json" + "".join(f", {p}" for p in plots)
    )
    return 0
