"""`tfpretrain finetune`: fine-tune an encoder on a text classification task and evaluate it."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a text classifier (SST-2 or your TSV) and report accuracy/precision/recall/F1",
        description=(
            "Build a TextClassifier on the encoder given by --init (a `tfpretrain mlm` run directory, a "
            "Hugging Face BERT directory, or 'scratch' for random weights of --preset), train it with "
            "AdamW and linear warm-up/decay, and write dev-set accuracy, precision, recall and F1 to "
            "OUT/metrics.json, plus classifier.keras and saved_model/ (signature 'serve': strings -> "
            "probabilities). With a `tfpretrain seq2seq` directory (or scratch with a t5-* preset) the "
            "encoder-decoder is trained text to text instead: metrics.json then holds exact_match "
            "(and accuracy/precision/recall/F1 for sst2, cer for other tasks) and saved_model/ has "
            "signature 'generate' (strings -> strings)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", required=True,
                   help="'sst2' (data directory) or a sentence<TAB>label file (dev: X.dev.tsv or dev.tsv "
                        "beside it, else the last 10%% of lines); for an encoder-decoder also 'punctuation' "
                        "(restore casing and punctuation of Tiny Shakespeare) or an input<TAB>target file")
    p.add_argument("--init", required=True,
                   help="'scratch', an mlm run directory, a HF BERT directory, a `tfpretrain seq2seq` "
                        "directory, or 'vsm' (the count-based baseline: TF-IDF bag of words + logistic "
                        "regression; uses --epochs, --batch-size, --vocab-size, --limit-train)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", default="mini", choices=["tiny", "mini", "small", "base", "t5-tiny", "t5-small"],
                   help="model size for --init scratch (t5-*: an encoder-decoder trained text to text)")
    p.add_argument("--vocab", default=None, help="vocab.txt for --init scratch (default: learned from the task)")
    p.add_argument("--vocab-size", type=int, default=8000, help="learned vocabulary size for --init scratch")
    p.add_argument("--epochs", type=int, default=3, help="training epochs")
    p.add_argument("--batch-size", type=int, default=32, help="global batch size")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="peak AdamW learning rate")
    p.add_argument("--warmup-fraction", type=float, default=0.1, help="linear warm-up share of the steps")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--freeze", default="0",
                   help="freeze the embeddings and the lowest N transformer layers, or 'all' for the encoder")
    p.add_argument("--pooling", default="cls", choices=["cls", "mean"], help="sentence representation")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout rate")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sentence (longer ones are cut)")
    p.add_argument("--num-classes", type=int, default=None, help="number of classes (default: from labels)")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--steps-per-execution", type=int, default=16, help="steps per compiled call")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--num-beams", type=int, default=1,
                   help="encoder-decoder only: beams for generating the dev outputs (1: greedy)")
    p.add_argument("--limit-eval", type=int, default=None,
                   help="encoder-decoder only: score the first N dev examples")
    p.add_argument("--reinit", default="none", choices=["none", "encoder", "cross-attention", "decoder"],
                   help="encoder-decoder only: draw this part of the pre-trained --init anew before training "
                        "(cross-attention: each decoder block's), keeping the rest and the shared embedding")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.finetune import FinetuneRun
    from tfpretrain.recipes.finetune import run as run_recipe

    if args.freeze != "all" and not args.freeze.lstrip("-").isdigit():
        raise ValueError(f"--freeze must be a number of layers or 'all'; got {args.freeze!r}.")
    metrics = run_recipe(
        FinetuneRun(
            task=args.task, init=args.init, out_dir=args.out, preset=args.preset, vocab=args.vocab,
            vocab_size=args.vocab_size, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, warmup_fraction=args.warmup_fraction,
            weight_decay=args.weight_decay, freeze=args.freeze, pooling=args.pooling, dropout=args.dropout,
            seq_len=args.seq_len, num_classes=args.num_classes, limit_train=args.limit_train,
            steps_per_execution=args.steps_per_execution, tensorboard=args.tensorboard, seed=args.seed,
            strategy=args.strategy, precision=args.precision, num_beams=args.num_beams,
            limit_eval=args.limit_eval, reinit=args.reinit,
        )
    )
    print(json.dumps(metrics, indent=2))
    written = "vocab.txt and classifier.weights.h5" if args.init == "vsm" else "saved_model/"
    print(f"Wrote {args.out}/metrics.json and {written}")
    return 0
