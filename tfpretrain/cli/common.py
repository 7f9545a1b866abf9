"""Flags every training command shares."""

from __future__ import annotations

import argparse


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """Adds `--strategy` and `--precision` (see `tfpretrain.distribute`)."""
    parser.add_argument("--strategy", default="auto",
                        choices=["auto", "default", "mirrored", "multiworker", "tpu"],
                        help="tf.distribute strategy (auto: TPU, TF_CONFIG cluster, several GPUs, else one device)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="numeric precision; bf16/fp16 are mixed precision with float32 weights and losses")
