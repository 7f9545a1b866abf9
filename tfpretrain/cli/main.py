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


# XLA's CPU options the CLI adds unless XLA_FLAGS names them: the concurrency-optimised
# scheduler orders independent kernels so that the runtime can run them side by side, which
# shortened the `nano` GPT's XLA training step by 4-10% in three runs on a 2-core Intel CPU
# (decoding unchanged; BENCHMARKS.md); only the order of independent work moves.
XLA_CPU_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=true",)


def runtime_environment(environ: dict[str, str]) -> dict[str, str]:
    """The variables the CLI sets before TensorFlow is imported, given the user's environment,
    which wins: oneDNN on, TensorFlow's info logs off, `XLA_CPU_FLAGS` added to XLA_FLAGS."""
    # oneDNN's CPU kernels are off by default on some CPUs (AMD); they are faster on every CPU
    # measured (BENCHMARKS.md), so the CLI turns them on unless told otherwise.
    chosen = {
        "TF_ENABLE_ONEDNN_OPTS": environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
        "TF_CPP_MIN_LOG_LEVEL": environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    flags = environ.get("XLA_FLAGS", "").split()
    named = {flag.split("=")[0] for flag in flags}
    flags += [flag for flag in XLA_CPU_FLAGS if flag.split("=")[0] not in named]
    chosen["XLA_FLAGS"] = " ".join(flags)
    return chosen


def _runtime_defaults() -> None:
    """Chooses fast, quiet defaults before TensorFlow is imported; the user's environment wins."""
    os.environ.update(runtime_environment(dict(os.environ)))


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
