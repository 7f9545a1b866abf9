"""`tfpretrain simclr`: contrastive pre-training of an image encoder, probed, exported and drawn."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "simclr",
        help="pre-train an image encoder by contrastive learning (SimCLR)",
        description=(
            "Pre-train a small CNN encoder with SimCLR (two augmented views per image, NT-Xent loss, "
            "LARS or AdamW with warm-up and cosine decay), track k-NN accuracy, train a linear probe "
            "on the frozen features, and write metrics.json (linear_probe_accuracy), views.png, "
            "embeddings.png (PCA of test features), loss.png, model.keras, encoder.keras and "
            "saved_model/ (signature 'encode') to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="run directory for checkpoints, metrics, plots and exports")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist", help="image data set")
    p.add_argument("--epochs", type=int, default=20, help="pre-training epochs")
    p.add_argument("--batch-size", type=int, default=256, help="global batch of image pairs (>= 2)")
    p.add_argument("--temperature", type=float, default=0.5, help="NT-Xent temperature (> 0)")
    p.add_argument("--optimizer", choices=["lars", "adamw"], default="lars", help="optimizer")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate (default: 0.3 x batch/256 for LARS, 1e-3 x batch/256 for AdamW)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="weight decay (default: 1e-6 for LARS, 1e-4 for AdamW)")
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="epochs of linear learning-rate warm-up")
    p.add_argument("--preset", choices=["mnist", "small", "tiny"], default="mnist", help="encoder size")
    p.add_argument("--knn-every", type=int, default=1, help="k-NN accuracy every N epochs (0: never)")
    p.add_argument("--probe-epochs", type=int, default=30, help="epochs of the linear probe")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--steps-per-execution", type=int, default=16, help="training steps per compiled call")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.simclr import SimCLRRun
    from tfpretrain.recipes.simclr import run as run_recipe

    metrics = run_recipe(
        SimCLRRun(
            out_dir=args.out, dataset=args.dataset, preset=args.preset, epochs=args.epochs,
            batch_size=args.batch_size, temperature=args.temperature, optimizer=args.optimizer,
            learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
            knn_every=args.knn_every, probe_epochs=args.probe_epochs, limit_train=args.limit_train,
            steps_per_execution=args.steps_per_execution, tensorboard=args.tensorboard,
            strategy=args.strategy, precision=args.precision, seed=args.seed,
        )
    )
    print(json.dumps(metrics, indent=2))
    print(f"Wrote {args.out}/metrics.json, views.png, embeddings.png, loss.png, encoder.keras and saved_model/")
    return 0
