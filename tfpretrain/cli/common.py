"""Flags every training command shares."""

from __future__ import annotations

import argparse


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """Adds `--strategy`, `--precision` and `--xla` (see `tfpretrain.distribute`)."""
    parser.add_argument("--strategy", default="auto",
                        choices=["auto", "default", "mirrored", "multiworker", "tpu"],
                        help="tf.distribute strategy (auto: TPU, TF_CONFIG cluster, several GPUs, else one device)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="numeric precision; bf16/fp16 are mixed precision with float32 weights and losses")
    parser.add_argument("--xla", default=None, choices=["auto", "on", "off"],
                        help="XLA-compile the training step (auto, the default: on, except for bf16 "
                             "without a GPU or TPU, where TensorFlow's own bf16 kernels are faster)")
