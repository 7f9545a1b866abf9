"""`tfpretrain evaluate`: fine-tune and probe pre-trained encoders with few labels, next to
scratch."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_command, run_recipe
from tfpretrain.settings.evaluate import EvaluateRun


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers, "evaluate", EvaluateRun, run=run,
        help="fine-tune / linear-probe pre-trained image encoders with few labels",
        description=(
            "Load the encoder of each --encoder run directory (tfpretrain simclr, gan or "
            "autoencoder, or a .keras file), fine-tune a copy with each --labels count (plus the "
            "same network from scratch), train a linear probe on frozen features, and write "
            "metrics.json (accuracy, precision, recall, F1 on the test set) and table.md to --out."
        ),
    )
    _accumulate(parser, "encoders")


def _accumulate(parser: argparse.ArgumentParser, dest: str) -> None:
    """Makes a repeated list flag add up (`--encoder A --encoder B`, as the flag always allowed);
    argparse would keep the last one only."""
    action = next(a for a in parser._actions if a.dest == dest)

    class Accumulating(type(action)):
        def __call__(self, parser, namespace, values, option_string=None):
            before = list(getattr(namespace, self.dest, None) or [])
            super().__call__(parser, namespace, values, option_string)
            setattr(namespace, self.dest, [*before, *getattr(namespace, self.dest)])

    action.__class__ = Accumulating


def run(args: argparse.Namespace) -> int:
    from tfpretrain.evaluate import markdown_table

    rows = run_recipe(args, "tfpretrain.recipes.evaluate:run")
    print(json.dumps({r: {c: round(m["accuracy"], 4) for c, m in row.items()}
                      for r, row in rows.items()}, indent=2))
    print(markdown_table(rows))
    print(f"Wrote {args.out_dir}/metrics.json and table.md")
    return 0
