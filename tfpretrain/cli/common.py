"""The shape every command shares: a parser built from the command's settings dataclass, and a
run that builds the settings (checking every flag) before the recipe touches data or models."""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Callable

from tfpretrain.settings import add_arguments


def add_command(
    subparsers,
    name: str,
    settings: type,
    *,
    help: str,  # noqa: A002
    description: str,
    run: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Adds the subcommand `name` with one flag per field of `settings`; `run` receives the
    parsed flags."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser, settings)
    parser.set_defaults(func=run, settings_class=settings)
    return parser


def run_recipe(args: argparse.Namespace, recipe: str):
    """Builds the settings from `args` (validating them) and calls `recipe`
    ("module:function", imported only now, so TensorFlow loads only when a command runs)."""
    cfg = args.settings_class.from_args(args)
    module, function = recipe.split(":")
    return getattr(importlib.import_module(module), function)(cfg)


def print_metrics(metrics: dict, skip: tuple[str, ...] = ()) -> None:
    print(json.dumps({k: v for k, v in metrics.items() if k not in skip}, indent=2))


def print_written(result, line: str) -> None:
    """Prints `line` (what the run wrote) unless `result` is a finished run returned again,
    which wrote nothing now."""
    from tfpretrain.training.rundir import FinishedRun

    if not isinstance(result, FinishedRun):
        print(line)
