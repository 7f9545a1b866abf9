"""`tfpretrain export-hf`: write a run's model as a Hugging Face folder."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, run_recipe
from tfpretrain.settings.export_hf import ExportHFRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "export-hf",
        ExportHFRun,
        run=run,
        help="write a run's model as a Hugging Face folder",
        description=(
            "Write the model of a `tfpretrain clm`, `seq2seq`, `mlm` or `finetune` run as a "
            "folder `transformers` loads (GPT-2, T5 or BERT layout: config.json, "
            "model.safetensors) with the run's tokenizer files, to --out."
        ),
    )


def run(args: argparse.Namespace) -> int:
    result = run_recipe(args, "tfpretrain.recipes.export_hf:run")
    print(f"Wrote a Hugging Face {result['model_type']} folder to {result['out']}")
    return 0
