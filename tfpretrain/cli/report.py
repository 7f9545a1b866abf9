"""`tfpretrain report`: one comparison table (and bar plot) of every run's metrics."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="compare runs: markdown tables and a bar plot from their metrics.json",
        description=(
            "Read metrics.json of the given run directories (or of every run below given folders): "
            "image encoders (tfpretrain evaluate, gan, simclr) by linear probe and 100 / 1,000 / all "
            "labels, text models (finetune with any --init including vsm, distill) by SST-2 dev "
            "accuracy against the vector-space baseline, with pre-training and fine-tuning times. "
            "Writes OUT/report.md, OUT/report.json and OUT/comparison.png."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories, or folders holding run directories")
    p.add_argument("--out", required=True, help="where report.md, report.json and comparison.png go")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.report import ReportRun, markdown
    from tfpretrain.recipes.report import run as run_recipe

    report = run_recipe(ReportRun(runs=args.runs, out_dir=args.out))
    print(markdown(report))
    print(f"Wrote {args.out}/report.md, report.json and comparison.png")
    return 0
