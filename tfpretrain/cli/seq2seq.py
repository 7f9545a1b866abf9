"""`tfpretrain seq2seq`: span-corruption pre-training of a T5-style encoder-decoder."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.seq2seq import Seq2SeqRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "seq2seq",
        Seq2SeqRun,
        run=run,
        help="pre-train an encoder-decoder (T5) by span corruption",
        description=(
            "Train a cased SentencePiece vocabulary on the corpus (first 90%), then a T5-style "
            "encoder-decoder on span corruption (15% of tokens dropped in spans of mean length "
            "3, new spans every epoch; with --objective reconstruct the target is the whole text) "
            "with model.fit and XLA. Writes checkpoints/, model.keras, "
            "the tokenizer, config.json, metrics.json (loss and token accuracy on the held-out "
            "10%) and saved_model/1/ (signatures 'generate' and 'beam_search': strings -> "
            "strings; unless --no-export) to --out; fine-tune it with "
            "`tfpretrain finetune --init OUT`. With --init a Hugging Face T5 folder, its "
            "weights and vocabulary continue instead."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.seq2seq:run")
    print_metrics(metrics, skip=tuple(k for k, v in metrics.items() if isinstance(v, list)))
    exported = ", the tokenizer and saved_model/1/" if args.export else " and the tokenizer"
    print_written(metrics, f"Wrote {args.out_dir}/model.keras, metrics.json{exported}")
    return 0
