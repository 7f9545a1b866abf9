"""`tfpretrain gan`: train a DCGAN, score its samples, probe its discriminator, export it."""

from __future__ import annotations

import argparse
import json

from tfpretrain.cli.common import add_runtime_flags


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "gan",
        help="pre-train a DCGAN and probe its discriminator's features",
        description=(
            "Train a DCGAN on 28x28 images with model.fit (XLA-compiled train_step), write "
            "samples_EPOCH.png every epoch, the Fréchet distance of --fd-samples generated images to "
            "the test images (features of a classifier trained on the real data, cached in --out), "
            "loss.png, frechet_distance.png, generator.keras, discriminator.keras, saved_model/ "
            "(signatures 'sample'(seed, count) and 'features'(images)) and metrics.json with the "
            "linear-probe accuracy of the trained and of the untrained discriminator. Stops with an "
            "error naming the epoch when the discriminator loss falls to ~0, a loss becomes NaN or "
            "the generator collapses onto few classes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist", help="image data set")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="steps per epoch over the repeated data (default: one pass over the data)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch size (real images per step)")
    p.add_argument("--preset", default="dcgan_mnist", choices=["dcgan_mnist", "dcgan_small", "dcgan_tiny"],
                   help="generator/discriminator widths")
    p.add_argument("--loss", default="non_saturating", choices=["non_saturating", "minimax"],
                   help="generator loss: maximise log D(G(z)), or minimise log(1 - D(G(z))) (original)")
    p.add_argument("--d-learning-rate", type=float, default=2e-4, help="discriminator Adam learning rate")
    p.add_argument("--g-learning-rate", type=float, default=2e-4, help="generator Adam learning rate")
    p.add_argument("--fd-samples", type=int, default=10_000, help="generated images scored per epoch")
    p.add_argument("--classifier-epochs", type=int, default=2,
                   help="epochs of the feature classifier behind the Fréchet distance")
    p.add_argument("--probe-epochs", type=int, default=30, help="epochs of each linear probe")
    p.add_argument("--fine-tune-labels", type=int, nargs="*", default=[100, 1000], metavar="N",
                   help="fine-tune the discriminator's trunk with N labelled images each (none: skip)")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training images")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test images")
    p.add_argument("--d-loss-floor", type=float, default=1e-3,
                   help="an epoch's mean discriminator loss below this stops the run as diverged")
    p.add_argument("--collapse-check-from", type=int, default=3, metavar="EPOCH",
                   help="first epoch at which mode collapse is checked")
    p.add_argument("--steps-per-execution", type=int, default=16, help="training steps per compiled call")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_runtime_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfpretrain.recipes.gan import GanRun
    from tfpretrain.recipes.gan import run as run_recipe

    metrics = run_recipe(
        GanRun(
            out_dir=args.out, dataset=args.dataset, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
            preset=args.preset, loss=args.loss, d_learning_rate=args.d_learning_rate,
            g_learning_rate=args.g_learning_rate, fd_samples=args.fd_samples,
            classifier_epochs=args.classifier_epochs, probe_epochs=args.probe_epochs, fine_tune_labels=tuple(args.fine_tune_labels),
            limit_train=args.limit_train, limit_test=args.limit_test,
            collapse_check_from_epoch=args.collapse_check_from, d_loss_floor=args.d_loss_floor, steps_per_execution=args.steps_per_execution,
            seed=args.seed, strategy=args.strategy, precision=args.precision,
        )
    )
    print(json.dumps(metrics, indent=2))
    print(f"Wrote {args.out}/metrics.json, samples_*.png, loss.png, frechet_distance.png and saved_model/")
    return 0
