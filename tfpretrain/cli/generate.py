"""`tfpretrain generate`: continue a prompt with a model trained by `tfpretrain clm`."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate text with a trained causal language model",
        description=(
            "Load the model and tokenizer of a `tfpretrain clm` run and print completions of --prompt "
            "(prompt included), separated by lines of dashes. Sampling uses a key/value cache and XLA."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", required=True, help="the --out folder of a `tfpretrain clm` run")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per completion, prompt included (default: the model's context)")
    p.add_argument("--num-return-sequences", type=int, default=1, help="completions to print")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0: greedy)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling threshold in (0, 1]")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--stop", default=None, help="stop a completion at this token (e.g. a newline)")
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same text)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.models.gpt import TextGenerator
    from tfpretrain.recipes.clm import load_run

    model, tokenizer = load_run(args.model)
    generator = TextGenerator(model, tokenizer)
    stop = args.stop.encode().decode("unicode_escape") if args.stop else None
    completions = generator.generate(
        args.prompt, max_length=args.max_length or generator.context_length,
        num_return_sequences=args.num_return_sequences, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, greedy=args.greedy, seed=args.seed, stop_token=stop,
    )
    print("\n----\n".join(completions))
    return 0
