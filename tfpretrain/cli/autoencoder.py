"""`tfpretrain autoencoder`: pre-train, evaluate, export and plot an MNIST autoencoder."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "autoencoder",
        help="pre-train an image autoencoder",
        description=(
            "Train the dense (784-128-64-64-784) or convolutional autoencoder with Adam and binary "
            "cross-entropy, evaluate it on the test set, and write metrics.json, reconstructions.png, "
            "loss.png, model.keras and saved_model/ (signatures 'encode' and 'reconstruct') to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="run directory for checkpoints, metrics, plots and exports")
    p.add_argument("--epochs", type=int, default=50, help="training epochs")
    p.add_argument("--batch-size", type=int, default=256, help="examples per batch")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--conv", action="store_true", help="use the convolutional autoencoder")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist", help="image data set")
    p.add_argument("--validation-size", type=int, default=5000,
                   help="training images held out for validation curves (0: none)")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to OUT/logs")
    p.add_argument("--steps-per-execution", type=int, default=32,
                   help="training steps run per compiled call (fewer Python round trips)")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="STEPS",
                   help="save the crash-safe training state every STEPS steps (and at every epoch end)")
    p.add_argument("--gradient-accumulation-steps", type=int, default=None, metavar="K",
                   help="apply the mean gradient of K batches at once (K >= 2)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (bit-identical reruns and resumes; slower)")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.autoencoder import AutoencoderRun
    from tfpretrain.recipes.autoencoder import run as run_recipe

    metrics = run_recipe(
        AutoencoderRun(
            out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate, conv=args.conv, dataset=args.dataset,
            validation_size=args.validation_size, early_stopping_patience=args.early_stopping,
            tensorboard=args.tensorboard, steps_per_execution=args.steps_per_execution,
            seed=args.seed, limit_train=args.limit_train, strategy=args.strategy,
            precision=args.precision, checkpoint_every=args.checkpoint_every,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            deterministic=args.deterministic,
        )
    )
    print(json.dumps(metrics, indent=2))
    print(f"Wrote {args.out}/metrics.json, reconstructions.png, loss.png and saved_model/")
    return 0
