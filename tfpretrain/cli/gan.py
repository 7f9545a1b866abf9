"""`tfpretrain gan`: train a DCGAN, score its samples, probe its discriminator, export it."""

from __future__ import annotations

import argparse

from tfpretrain.cli.common import add_command, print_metrics, print_written, run_recipe
from tfpretrain.settings.gan import GanRun


def add_parser(subparsers) -> None:
    add_command(
        subparsers,
        "gan",
        GanRun,
        run=run,
        help="pre-train a DCGAN and probe its discriminator's features",
        description=(
            "Train a DCGAN on 28x28 images with model.fit (XLA-compiled train_step), write "
            "samples_EPOCH.png every epoch, the Fréchet distance of --fd-samples generated images "
            "to the test images (features of a classifier trained on the real data, cached in "
            "--out), loss.png, frechet_distance.png, generator.keras, discriminator.keras, "
            "saved_model/1/ (signatures 'sample'(seed, count) and 'features'(images)) and "
            "metrics.json with the linear-probe accuracy of the trained and of the untrained "
            "discriminator. Stops with an error naming the epoch when the discriminator loss "
            "falls to ~0, a loss becomes NaN or the generator collapses onto few classes."
        ),
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_recipe(args, "tfpretrain.recipes.gan:run")
    print_metrics(metrics)
    exported = " and saved_model/1/" if args.export else ""
    print_written(
        metrics,
        f"Wrote {args.out_dir}/metrics.json, samples_*.png, loss.png, "
        f"frechet_distance.png{exported}",
    )
    return 0
