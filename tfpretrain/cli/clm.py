"""`tfpretrain clm`: pre-train a GPT-style causal language model on a text corpus."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags

PRESET_NAMES = ("nano", "shakespeare", "gpt2-small")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "clm",
        help="pre-train a GPT-style causal language model",
        description=(
            "Train a GPT (pre-norm causal transformer, tied output head) on a UTF-8 text corpus "
            "(first 90% for training, last 10% for validation) with AdamW, warm-up and cosine "
            "decay and gradient clipping, XLA-compiled. Writes checkpoints/, model.keras, tokenizer/, "
            "samples.txt, metrics.json (train and validation loss per evaluation, final val_loss) "
            "and saved_model/ (signature 'generate') to --out. The defaults are nanoGPT's CPU recipe "
            "for character-level Tiny Shakespeare."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--corpus", required=True, help="UTF-8 text file to train on")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", choices=PRESET_NAMES, default="nano",
                   help="model size: nano (4 layers, 4 heads, 128), shakespeare (6, 6, 384), gpt2-small (12, 12, 768)")
    p.add_argument("--tokenizer", choices=["char", "sentencepiece"], default="char",
                   help="character vocabulary, or a BPE vocabulary trained on the corpus with sentencepiece")
    p.add_argument("--vocab-size", type=int, default=1000, help="sentencepiece vocabulary size")
    p.add_argument("--block-size", type=int, default=None, help="context length (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=12, help="global batch size")
    p.add_argument("--steps", type=int, default=2000, help="training steps")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-learning-rate", type=float, default=None,
                   help="learning rate at the end of the cosine decay (default: a tenth of the peak)")
    p.add_argument("--warmup-steps", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW weight decay of the weight matrices (default: 0.01 for nano, 0.1 for larger presets)")
    p.add_argument("--clipnorm", type=float, default=1.0, help="global gradient-norm clip")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout rate")
    p.add_argument("--no-bias", action="store_true",
                   help="no biases in projections and layer norms (nanoGPT's default)")
    p.add_argument("--eval-interval", type=int, default=250, help="steps between validation evaluations")
    p.add_argument("--steps-per-execution", type=int, default=50,
                   help="training steps per compiled call (fewer Python round trips)")
    p.add_argument("--num-samples", type=int, default=3, help="samples written to samples.txt")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.clm import CLMRun
    from tfpretrain.recipes.clm import run as run_recipe

    metrics = run_recipe(
        CLMRun(
            corpus=args.corpus, out_dir=args.out, preset=args.preset, tokenizer=args.tokenizer,
            vocab_size=args.vocab_size, block_size=args.block_size, batch_size=args.batch_size,
            steps=args.steps, learning_rate=args.learning_rate, min_learning_rate=args.min_learning_rate,
            warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, clipnorm=args.clipnorm,
            dropout=args.dropout, bias=not args.no_bias, eval_interval=args.eval_interval,
            steps_per_execution=args.steps_per_execution, num_samples=args.num_samples,
            export=not args.no_export, seed=args.seed, precision=args.precision, strategy=args.strategy,
        )
    )
    summary = {k: v for k, v in metrics.items() if k not in ("evaluations", "samples")}
    print(json.dumps(summary, indent=2))
    print(f"Wrote {args.out}/metrics.json, samples.txt, model.keras, tokenizer/ and saved_model/")
    return 0
