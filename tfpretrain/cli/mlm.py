"""`tfpretrain mlm`: learn a WordPiece vocabulary and pre-train a BERT encoder with masked-LM."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "mlm",
        help="pre-train a BERT encoder with masked-language modelling",
        description=(
            "Learn a WordPiece vocabulary from --corpus (or use --vocab), pack the text into "
            "[CLS] ... [SEP] sequences, and pre-train a BERT preset with dynamic 80/10/10 masking "
            "(and next-sentence prediction with --nsp). Writes vocab.txt, encoder.keras, mlm.keras, "
            "checkpoints/, history.json, loss.png and metrics.json to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--corpus", required=True,
                   help="text file, folder of .txt files, comma-separated list, or a name in the data "
                        "directory: wikitext-2, sst2, tinyshakespeare")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", default="mini", choices=["tiny", "mini", "small", "base"], help="model size")
    p.add_argument("--vocab", default=None, help="use this vocab.txt instead of learning one")
    p.add_argument("--vocab-size", type=int, default=8000, help="size of the learned vocabulary")
    p.add_argument("--vocab-lines", type=int, default=20000,
                   help="learn the vocabulary from the first N lines (0: all)")
    p.add_argument("--steps", type=int, default=2000, help="training steps in all")
    p.add_argument("--epochs", type=int, default=10, help="the steps are split into this many epochs (curves)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size (sequences)")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence, [CLS] and [SEP] included")
    p.add_argument("--nsp", action="store_true", help="add next-sentence prediction (pairs of lines)")
    p.add_argument("--mask-rate", type=float, default=0.15, help="fraction of tokens to predict")
    p.add_argument("--learning-rate", type=float, default=5e-4, help="peak AdamW learning rate")
    p.add_argument("--warmup-fraction", type=float, default=0.1, help="linear warm-up share of the steps")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout rate")
    p.add_argument("--validation-fraction", type=float, default=0.05, help="lines held out for validation")
    p.add_argument("--limit-lines", type=int, default=None, help="use only the first N corpus lines")
    p.add_argument("--steps-per-execution", type=int, default=16, help="steps per compiled call")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.mlm import MlmRun
    from tfpretrain.recipes.mlm import run as run_recipe

    metrics = run_recipe(
        MlmRun(
            corpus=args.corpus, out_dir=args.out, preset=args.preset, vocab=args.vocab,
            vocab_size=args.vocab_size, vocab_lines=args.vocab_lines or None, steps=args.steps,
            epochs=args.epochs, batch_size=args.batch_size,
            seq_len=args.seq_len, nsp=args.nsp, mask_rate=args.mask_rate, learning_rate=args.learning_rate,
            warmup_fraction=args.warmup_fraction, weight_decay=args.weight_decay, dropout=args.dropout,
            validation_fraction=args.validation_fraction, limit_lines=args.limit_lines,
            steps_per_execution=args.steps_per_execution, tensorboard=args.tensorboard, seed=args.seed,
            strategy=args.strategy, precision=args.precision,
        )
    )
    print(json.dumps(metrics, indent=2))
    print(f"Wrote {args.out}/metrics.json, vocab.txt, encoder.keras and loss.png")
    return 0
