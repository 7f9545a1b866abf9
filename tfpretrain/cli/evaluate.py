"""`tfpretrain evaluate`: fine-tune and probe pre-trained encoders with few labels, next to scratch."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def _label_count(value: str) -> int | None:
    if value.lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {value!r}") from None
    if count <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {value!r}")
    return count


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="fine-tune / linear-probe pre-trained image encoders with few labels",
        description=(
            "Load the encoder of each --encoder run directory (tfpretrain simclr or tfpretrain "
            "autoencoder, or a .keras file), fine-tune a copy with each --labels count (plus the same "
            "network from scratch), train a linear probe on frozen features, and write metrics.json "
            "(accuracy, precision, recall, F1 on the test set) and table.md to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--encoder", action="append", required=True, metavar="DIR",
                   help="run directory or .keras file of a pre-trained encoder (repeat to compare several)")
    p.add_argument("--labels", nargs="+", type=_label_count, default=[100], metavar="K",
                   help="labelled examples for fine-tuning, in total (or per class with --per-class); 'all' for all")
    p.add_argument("--per-class", action="store_true", help="count --labels per class")
    p.add_argument("--out", required=True, help="folder for metrics.json and table.md")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist", help="image data set")
    p.add_argument("--no-scratch", action="store_true", help="skip the from-scratch baseline")
    p.add_argument("--no-probe", action="store_true", help="skip the linear probe")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning passes over the labelled set (at least 300 steps)")
    p.add_argument("--steps", type=int, default=None, help="fine-tuning steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, default=128, help="fine-tuning batch size")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="fine-tuning peak learning rate (Adam, cosine)")
    p.add_argument("--random-head", action="store_true",
                   help="start the fine-tuned linear layer at random instead of from a linear probe of the labelled subset")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--seed", type=int, default=0, help="random seed (label subset, initialisation, order)")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.evaluate import markdown_table
    from tfpretrain.recipes.evaluate import EvaluateRun
    from tfpretrain.recipes.evaluate import run as run_recipe

    rows = run_recipe(
        EvaluateRun(
            encoders=args.encoder, out_dir=args.out, labels=args.labels, per_class=args.per_class,
            dataset=args.dataset, scratch=not args.no_scratch, probe=not args.no_probe, epochs=args.epochs,
            steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, probe_first=not args.random_head,
            limit_train=args.limit_train, limit_test=args.limit_test, strategy=args.strategy,
            precision=args.precision, seed=args.seed,
        )
    )
    print(json.dumps({r: {c: round(m["accuracy"], 4) for c, m in row.items()} for r, row in rows.items()}, indent=2))
    print(markdown_table(rows))
    print(f"Wrote {args.out}/metrics.json and table.md")
    return 0
