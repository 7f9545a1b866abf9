"""Loading a GPT-2-small-shaped (124M) Hugging Face folder: tfpretrain vs transformers.

Writes a random-weight `GPT2LMHeadModel` of gpt2's shape with transformers (nothing is
downloaded), then loads it in a fresh process per library and run, and prints the load time
(config read to usable model), the peak resident memory of the process and that peak less
the memory after the imports. Needs `torch` and `transformers` (benchmark-only installs).

Usage:

    python tools/bench/checkpoints.py [--folder DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
library, folder = sys.argv[1], sys.argv[2]

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if library == "tfpretrain":
    import keras  # noqa: F401
    from tfpretrain.checkpoints.gpt2 import load_gpt2
    base = rss_mb()
    start = time.perf_counter()
    model = load_gpt2(folder)
    model(keras.ops.ones((1, 8), "int32"))  # usable: one forward pass
else:
    import torch
    from transformers import GPT2LMHeadModel
    base = rss_mb()
    start = time.perf_counter()
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    with torch.no_grad():
        model(torch.ones((1, 8), dtype=torch.long))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "after_imports_mb": base}))
"""


def write_checkpoint(folder: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config())  # gpt2: 12 layers, 768 wide, 50257 tokens, 1024 positions
    model.save_pretrained(folder)
    print(f"wrote {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters to {folder}")


def measure(library: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, library, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="an existing GPT-2 folder (default: write one)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "gpt2-random"
        if args.folder is None:
            write_checkpoint(folder)
        print(f"{'library':<12} {'load s':>8} {'peak RSS MB':>12} {'peak - imports MB':>18}")
        for library in ("tfpretrain", "transformers"):
            runs = [measure(library, folder) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            print(
                f"{library:<12} {best['seconds']:>8.2f} {best['peak_mb']:>12.0f} "
                f"{best['peak_mb'] - best['after_imports_mb']:>18.0f}"
            )


if __name__ == "__main__":
    main()
