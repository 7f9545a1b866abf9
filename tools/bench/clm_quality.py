"""Causal-LM quality: tfpretrain's GPT against a plain PyTorch GPT trained with nanoGPT's CPU
recipe.

Both train the `nano` shape (4 layers, 4 heads, width 128) on character-level Tiny Shakespeare,
split as `tfpretrain clm` splits it (windows of 65 characters, every tenth held out), with the
same recipe: block 64, batch 12 random windows, 2000 steps,
AdamW peak 1e-3 with 100 warm-up steps and cosine decay to 1e-4, betas (0.9, 0.99), weight decay
on matrices and embeddings (0.01, `tfpretrain clm`'s default for `nano`; nanoGPT's is 0.1), global
gradient clipping at 1.0, no dropout. Both are scored on the same validation set, the held-out
windows, for several seeds, so that the spread between seeds can be set against the gap between
the two. The PyTorch side draws its training windows at random offsets of the other windows
joined (nanoGPT's sampling) and also prints nanoGPT's own estimate (mean over 20 random batches
of 12 held-out windows).

tfpretrain trains through its `tfpretrain clm` command; PyTorch (CPU) must be installed beside it:
`python tools/bench/clm_quality.py [--seeds 0 1 2] [--peers torch tfpretrain] [--no-bias]
[--weight-decay X] [--json OUT]`
from the repository root, with `TFPRETRAIN_DATA_DIR` set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clm import REPO, VOCAB_TEXT, shakespeare_chars, torch_adamw, torch_gpt

LAYERS, HEADS, WIDTH, BLOCK, BATCH = 4, 4, 128, 64, 12
PEAK, FINAL, WARMUP = 1e-3, 1e-4, 100


def learning_rate(step: int, steps: int) -> float:
    """nanoGPT's schedule: linear warm-up, then half a cosine from PEAK down to FINAL at `steps`."""
    if step < WARMUP:
        return PEAK * (step + 1) / (WARMUP + 1)
    progress = min(1.0, (step - WARMUP) / (steps - WARMUP))
    return FINAL + 0.5 * (1.0 + math.cos(math.pi * progress)) * (PEAK - FINAL)


def clm_split(tokens):
    """`tfpretrain clm`'s split of the token stream: windows of BLOCK + 1 tokens, every tenth
    held out (at most 2^17 tokens of them, all of Tiny Shakespeare's), the others joined."""
    import numpy as np

    from tfpretrain.data.splits import is_held_out
    from tfpretrain.recipes.clm import VALIDATION_FRACTION, VALIDATION_TOKENS

    width = BLOCK + 1
    windows = tokens[: len(tokens) // width * width].reshape(-1, width)
    held = np.array([is_held_out(n, VALIDATION_FRACTION) for n in range(len(windows))])
    return windows[~held].ravel(), windows[held][: VALIDATION_TOKENS // width]


def train_torch(seed: int, steps: int, bias: bool, weight_decay: float) -> dict:
    import numpy as np
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    tokens, vocab = shakespeare_chars()
    train, val = clm_split(tokens)
    # Initialised as tfpretrain's `nano` preset is: N(0, 0.02) residual projections too.
    model = torch_gpt(LAYERS, HEADS, WIDTH, BLOCK, vocab, bias=bias, scaled_residual_init=False)
    optimizer = torch_adamw(model, PEAK, weight_decay)
    rng = np.random.default_rng(seed)

    def windows(stream, offsets):
        return pairs(np.stack([stream[o : o + BLOCK + 1] for o in offsets]))

    def pairs(rows):
        rows = rows.astype(np.int64)
        return torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, 1:])

    def loss_of(x, y):
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    start = time.perf_counter()
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps)
        x, y = windows(train, rng.integers(0, len(train) - BLOCK - 1, size=BATCH))
        loss = loss_of(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        total = 0.0
        for i in range(0, len(val), 64):
            x, y = pairs(val[i : i + 64])
            total += loss_of(x, y).item() * len(x)
        full = total / len(val)
        estimate = statistics.mean(
            loss_of(*pairs(val[rng.integers(0, len(val), size=BATCH)])).item() for _ in range(20)
        )
    return {"val_loss": full, "val_loss_nanogpt_estimate": estimate, "train_seconds": seconds}


def train_tfpretrain(seed: int, steps: int, bias: bool, weight_decay: float) -> dict:
    corpus = Path(os.environ["TFPRETRAIN_DATA_DIR"]) / VOCAB_TEXT
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable,
            "-m",
            "tfpretrain.cli.main",
            "clm",
            "--corpus",
            str(corpus),
            "--out",
            out,
            "--preset",
            "nano",
            "--tokenizer",
            "char",
            "--seq-len",
            str(BLOCK),
            "--batch-size",
            str(BATCH),
            "--steps",
            str(steps),
            "--learning-rate",
            str(PEAK),
            "--min-learning-rate",
            str(FINAL),
            "--warmup-fraction",
            str(WARMUP / steps),
            "--weight-decay",
            str(weight_decay),
            "--dropout",
            "0",
            "--seed",
            str(seed),
            "--no-export",
        ] + ([] if bias else ["--no-bias"])
        start = time.perf_counter()
        subprocess.run(
            command,
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO)),
        )
        seconds = time.perf_counter() - start
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"val_loss": metrics["val_loss"], "wall_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--peers", nargs="+", default=["torch", "tfpretrain"], choices=["torch", "tfpretrain"]
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--no-bias",
        action="store_true",
        help="no biases in projections and norms (nanoGPT's default)",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="AdamW decay of the matrices and embeddings (nanoGPT uses 0.1)",
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not os.environ.get("TFPRETRAIN_DATA_DIR"):
        sys.exit("Set TFPRETRAIN_DATA_DIR to the folder holding tinyshakespeare/input.txt.")
    train = {"torch": train_torch, "tfpretrain": train_tfpretrain}
    results: dict[str, list[dict]] = {peer: [] for peer in args.peers}
    for seed in args.seeds:  # alternate peers seed by seed, so a slow spell hits both
        for peer in args.peers:
            row = dict(
                seed=seed, **train[peer](seed, args.steps, not args.no_bias, args.weight_decay)
            )
            results[peer].append(row)
            print(
                f"{peer} seed {seed}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "seed"),
                flush=True,
            )
    print(
        f"\nval loss, {args.steps} steps, {'no ' if args.no_bias else ''}biases, weight decay "
        f"{args.weight_decay}; target <= 1.88"
    )
    for peer, rows in results.items():
        losses = [r["val_loss"] for r in rows]
        spread = statistics.stdev(losses) if len(losses) > 1 else float("nan")
        print(
            f"{peer:12s} mean {statistics.mean(losses):.4f}  sd {spread:.4f}  "
            f"min {min(losses):.4f}  "
            f"max {max(losses):.4f}  ({', '.join(f'{x:.3f}' for x in losses)})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
