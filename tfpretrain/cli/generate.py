"""`tfpretrain generate`: continue a prompt (GPT) or answer it (T5) with a trained model."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command
from tfpretrain.settings.generate import GenerateRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers, "generate", GenerateRun, run=run,
        help="generate text with a trained GPT or T5 run",
        description=(
            "Load the model and tokenizer of a `tfpretrain clm` run and print completions of "
            "--prompt (prompt included), or of a `tfpretrain seq2seq` or text-to-text "
            "`tfpretrain finetune` run and print its outputs for --prompt, separated by lines "
            "of dashes. Greedy, sampling or beam search (--num-beams), with a key/value cache "
            "and XLA."
        ),
    )


def run(args: argparse.Namespace) -> int:
    cfg = GenerateRun.from_args(args)  # checks every flag before the model loads
    from tfpretrain.models.gpt import TextGenerator
    from tfpretrain.recipes.clm import load_run

    generator = load_run(cfg.model)
    stop = cfg.stop.encode().decode("unicode_escape") if cfg.stop else None
    options = dict(num_return_sequences=cfg.num_return_sequences, num_beams=cfg.num_beams,
                   temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                   greedy=cfg.greedy, seed=cfg.seed, stop_token=stop)
    if isinstance(generator, TextGenerator):
        outputs = generator.generate(cfg.prompt, cfg.max_length or generator.context_length,
                                     **options)
    else:  # an encoder-decoder: max_length counts output tokens only
        most = generator.config.decoder_length - 1
        outputs = generator.generate(cfg.prompt, cfg.max_length or most, **options)[0]
    print("\n----\n".join(outputs))
    return 0
