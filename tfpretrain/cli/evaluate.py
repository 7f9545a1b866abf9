"""`tfpretrain evaluate`: fine-tune and probe pre-trained encoders with few labels, next to
scratch."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_command, print_written, run_recipe
from tfpretrain.settings.evaluate import EvaluateRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "evaluate",
        EvaluateRun,
        run=run,
        help="fine-tune / linear-probe pre-trained image encoders with few labels",
        description=(
            "Load the encoder of each --encoder run directory (tfpretrain simclr, gan or "
            "autoencoder, or a .keras file), fine-tune a copy with each --labels count (plus the "
            "same network from scratch), train a linear probe on frozen features, and write "
            "metrics.json (accuracy, precision, recall, F1 on the test set) and table.md to --out."
        ),
    )


def run(args: argparse.Namespace) -> int:
    from tfpretrain.evaluate import markdown_table

    rows = run_recipe(args, "tfpretrain.recipes.evaluate:run")
    print(
        json.dumps(
            {r: {c: round(m["accuracy"], 4) for c, m in row.items()} for r, row in rows.items()},
            indent=2,
        )
    )
    print(markdown_table(rows))
    print_written(rows, f"Wrote {args.out_dir}/metrics.json and table.md")
    return 0
