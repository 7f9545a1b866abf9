"""`tfpretrain generate`: continue a prompt with a model trained by `tfpretrain clm`."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command
from tfpretrain.settings.generate import GenerateRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers, "generate", GenerateRun, run=run,
        help="generate text with a trained causal language model",
        description=(
            "Load the model and tokenizer of a `tfpretrain clm` run and print completions of "
            "--prompt (prompt included), separated by lines of dashes. Sampling uses a key/value "
            "cache and XLA."
        ),
    )


def run(args: argparse.Namespace) -> int:
    cfg = GenerateRun.from_args(args)  # checks every flag before the model loads
    from tfpretrain.models.gpt import TextGenerator
    from tfpretrain.recipes.clm import load_run

    model, tokenizer = load_run(cfg.model)
    generator = TextGenerator(model, tokenizer)
    stop = cfg.stop.encode().decode("unicode_escape") if cfg.stop else None
    completions = generator.generate(
        cfg.prompt, max_length=cfg.max_length or generator.context_length,
        num_return_sequences=cfg.num_return_sequences, temperature=cfg.temperature,
        top_k=cfg.top_k, top_p=cfg.top_p, greedy=cfg.greedy, seed=cfg.seed, stop_token=stop,
    )
    print("\n----\n".join(completions))
    return 0
