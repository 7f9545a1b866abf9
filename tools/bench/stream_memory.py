"""Peak memory of `tfpretrain mlm` and `clm` on a streamed corpus, at two corpus sizes.

Writes synthetic corpora of random words (Zipf-distributed over 5,000 made-up words, lines of
8 to 24 words) of each size to a temporary folder, as a TFDS text data set prepared offline
(`tfds:bench_corpus_<MB>`, documents of 100 lines; the default) or as a text file (`--text`),
then trains each command for a few steps on each corpus in a subprocess of its own and reports
the child's peak resident memory (`ru_maxrss` from `os.wait4`) and wall time. Peak memory that
does not grow with the corpus is what streaming promises; a corpus read whole grows it by a
multiple of the corpus' size.

    python tools/bench/stream_memory.py [--sizes 20 200] [--text] [--steps 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LINES_PER_DOCUMENT = 100


def _words(count: int, rng) -> list[str]:
    letters = list("abcdefghijklmnopqrstuvwxyz")
    return ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(count)]


def documents(megabytes: int, seed: int = 0):
    """Documents of `LINES_PER_DOCUMENT` lines until `megabytes` MB of text, generated lazily."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = np.array(_words(5000, rng))
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    written, target = 0, megabytes * 1_000_000
    while written < target:
        lengths = rng.integers(8, 25, size=LINES_PER_DOCUMENT)
        picks = rng.choice(words, size=int(lengths.sum()), p=weights)
        cuts = np.cumsum(lengths)[:-1]
        text = "".join(" ".join(line) + " .\n" for line in np.split(picks, cuts))
        written += len(text)
        yield text


def write_text(folder: Path, megabytes: int) -> str:
    path = folder / f"corpus_{megabytes}mb.txt"
    with open(path, "w", encoding="utf-8") as f:
        for text in documents(megabytes):
            f.write(text)
    return str(path)


def write_tfds(folder: Path, megabytes: int) -> str:
    """A TFDS text data set (one `text` feature, a `train` split) prepared from the generator."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    name = f"bench_corpus_{megabytes}"
    texts = tf.data.Dataset.from_generator(
        lambda: documents(megabytes), output_signature=tf.TensorSpec([], tf.string)
    )
    tfds.dataset_builders.TfDataBuilder(
        name=name,
        version="1.0.0",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
        split_datasets={"train": texts.map(lambda t: {"text": t})},
        data_dir=str(folder),
        disable_shuffling=True,
    ).download_and_prepare()
    return f"tfds:{name}"


def command(kind: str, corpus: str, out: Path, data_dir: Path, steps: int) -> list[str]:
    common = ["--corpus", corpus, "--data-dir", str(data_dir), "--out", str(out), "--no-export"]
    common += ["--steps", str(steps)]
    if kind == "mlm":
        flags = ["--preset", "tiny", "--vocab-size", "4000", "--vocab-lines", "5000"]
        flags += ["--epochs", "1", "--seq-len", "128", "--batch-size", "32"]
    else:
        flags = ["--preset", "nano", "--eval-interval", str(steps), "--num-samples", "0"]
    return [sys.executable, "-m", "tfpretrain.cli.main", kind, *common, *flags]


def peak_rss(argv: list[str]) -> tuple[float, float]:
    """`(peak resident memory in MB, wall seconds)` of one child process running `argv`."""
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        # This child's own use (RUSAGE_CHILDREN would give the largest child's so far).
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            error = log.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(argv)} failed:\n{error[-3000:]}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200], help="corpus MB")
    parser.add_argument("--text", action="store_true", help="text files instead of TFDS sets")
    parser.add_argument("--steps", type=int, default=2, help="training steps per run")
    parser.add_argument("--commands", nargs="+", default=["mlm", "clm"])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for megabytes in args.sizes:
            start = time.perf_counter()
            write = write_text if args.text else write_tfds
            corpus = write(folder, megabytes)
            print(f"{corpus}: written in {time.perf_counter() - start:.0f} s", flush=True)
            row = {"corpus": f"{megabytes} MB"}
            for kind in args.commands:
                argv = command(kind, corpus, folder / f"{kind}_{megabytes}", folder, args.steps)
                row[kind] = peak_rss(argv)
                print(f"  {kind}: {row[kind][0]:.0f} MB peak, {row[kind][1]:.0f} s", flush=True)
            rows.append(row)
    form = "text file" if args.text else "TFDS text set"
    print(f"\n| corpus ({form}) | " + " | ".join(f"`{k}` peak RSS" for k in args.commands) + " |")
    print("|---|" + "---:|" * len(args.commands))
    for row in rows:
        cells = [f"{row[k][0]:,.0f} MB ({row[k][1]:.0f} s)" for k in args.commands]
        print(f"| {row['corpus']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
