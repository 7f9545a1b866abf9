"""`tfpretrain COMMAND ...`: parse flags, call one library function, print where results went.

Each command lives in its own module `tfpretrain/cli/<name>.py` with `add_parser(subparsers)`
(which sets `func` on its parser) and imports TensorFlow only when it runs, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# The commands; each is defined by the module of its name under tfpretrain.cli ("-" as "_").
COMMANDS = [
    "autoencoder",
    "mlm",
    "electra",
    "finetune",
    "clm",
    "generate",
    "simclr",
    "evaluate",
    "seq2seq",
    "gan",
    "distill",
    "report",
    "predict",
    "export-hf",
    "textbench",
]


def _runtime_defaults() -> None:
    """Chooses fast, quiet defaults before TensorFlow is imported; the user's environment wins."""
    # oneDNN's CPU kernels are off by default on some CPUs (AMD); they are faster on every CPU
    # measured (BENCHMARKS.md), so the CLI turns them on unless told otherwise.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfpretrain",
        description="Pre-train, fine-tune, evaluate and export Keras models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tfpretrain.cli.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _runtime_defaults()
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as err:
        print(f"tfpretrain {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
