"""`tfpretrain seq2seq`: span-corruption pre-training of a T5-style encoder-decoder."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "seq2seq",
        help="pre-train an encoder-decoder (T5) by span corruption",
        description=(
            "Train a cased SentencePiece vocabulary on the corpus (first 90%), then a T5-style "
            "encoder-decoder on span corruption (15% of tokens dropped in spans of mean length 3, "
            "new spans every epoch) with model.fit and XLA. Writes checkpoints/, model.keras, the "
            "tokenizer, config.json and metrics.json (loss and token accuracy on the held-out 10%) "
            "to --out; fine-tune it with `tfpretrain finetune --init OUT`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--corpus", required=True, help="UTF-8 text file to pre-train on")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", default="t5-tiny", choices=["t5-tiny", "t5-small"], help="model shape")
    p.add_argument("--steps", type=int, default=2000, help="training steps")
    p.add_argument("--batch-size", type=int, default=16, help="global batch size (sequences)")
    p.add_argument("--length", type=int, default=128, help="corpus tokens per example before corruption")
    p.add_argument("--vocab-size", type=int, default=2000, help="SentencePiece vocabulary size")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="peak AdamW learning rate")
    p.add_argument("--warmup-steps", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate")
    p.add_argument("--noise-density", type=float, default=0.15, help="fraction of tokens corrupted")
    p.add_argument("--mean-span-length", type=float, default=3.0, help="mean corrupted span length")
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations")
    p.add_argument("--steps-per-execution", type=int, default=10, help="steps per compiled call")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.seq2seq import Seq2SeqRun
    from tfpretrain.recipes.seq2seq import run as run_recipe

    metrics = run_recipe(Seq2SeqRun(
        corpus=args.corpus, out_dir=args.out, preset=args.preset, steps=args.steps,
        batch_size=args.batch_size, length=args.length, vocab_size=args.vocab_size,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, dropout=args.dropout,
        noise_density=args.noise_density, mean_span_length=args.mean_span_length,
        eval_every=args.eval_every, steps_per_execution=args.steps_per_execution, seed=args.seed,
        strategy=args.strategy, precision=args.precision,
    ))
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    print(f"Wrote {args.out}/model.keras, metrics.json and the tokenizer")
    return 0
