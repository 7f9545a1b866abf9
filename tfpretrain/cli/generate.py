"""`tfpretrain generate`: continue a prompt with a trained or downloaded model."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command
from tfpretrain.settings.generate import GenerateRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "generate",
        GenerateRun,
        run=run,
        help="generate text with a trained or downloaded language model",
        description=(
            "Load the model and tokenizer of a `tfpretrain clm`, `seq2seq` or text-to-text "
            "`finetune` run, or of a local Hugging Face GPT-2 or T5 folder, and print "
            "completions of --prompt (a GPT's include the prompt), separated by lines of dashes. "
            "Decoding uses a key/value cache and XLA."
        ),
    )


def run(args: argparse.Namespace) -> int:
    cfg = GenerateRun.from_args(args)  # checks every flag before the model loads
    from tfpretrain.recipes.load import generate_text, load_generator

    generator = load_generator(cfg.model)
    stop = cfg.stop.encode().decode("unicode_escape") if cfg.stop else None
    completions = generate_text(
        generator,
        cfg.prompt,
        cfg.max_length,
        cfg.num_return_sequences,
        stop=stop,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        greedy=cfg.greedy,
        seed=cfg.seed,
        num_beams=cfg.num_beams,
    )
    print("\n----\n".join(completions))
    return 0
