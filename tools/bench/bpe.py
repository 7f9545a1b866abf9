"""GPT-2 tokenization speed: tfpretrain's `BytePairTokenizer` against KerasHub and tiktoken.

Tokenizes every line of Tiny Shakespeare, WikiText-2 valid + test and the SST-2 sentences
(about 118,000 lines, 7.3 MB) from `$TFPRETRAIN_DATA_DIR`, in batches, with:

- tfpretrain: `BytePairTokenizer.from_tiktoken(gpt2/gpt2.tiktoken)`, in a `tf.function`;
- KerasHub: `keras_hub.tokenizers.GPT2Tokenizer` built from the same table written as
  `vocab.json` + `merges.txt`, in a `tf.function`. It keeps a cache of the words it has seen, so
  it is timed twice: "cold" (a fresh tokenizer every round) and "warm" (one tokenizer reused, so
  after the first round every word is a cache hit);
- tiktoken (the reference, Rust, not in a graph): `encode_ordinary_batch`.

Rounds alternate the order of the peers; the table gives each peer's median over rounds, lines/s,
tokens/s and the count of lines whose ids differ from tiktoken's. KerasHub and tiktoken are
benchmark-only installs (`pip install tiktoken keras-hub`).

    python tools/bench/bpe.py [--rounds 3] [--batch-size 1024] [--limit 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def corpus_lines(data_dir: Path) -> list[str]:
    """Every line of Tiny Shakespeare and WikiText-2 valid + test, every SST-2 sentence."""
    lines = (data_dir / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n")
    for split in ("valid", "test"):
        lines += (data_dir / "wikitext-2" / f"{split}.txt").read_text(encoding="utf-8").split("\n")
    for split, column in (("train", 0), ("dev", 0), ("test", 1)):
        rows = (data_dir / "sst2" / f"{split}.tsv").read_text(encoding="utf-8").split("\n")[1:]
        lines += [row.split("\t")[column] for row in rows if row]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N lines (0: all)")
    parser.add_argument("--threads", type=int, default=2, help="tiktoken's batch threads")
    args = parser.parse_args()

    import keras_hub
    import tensorflow as tf
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from tfpretrain.text.bpe import (
        ENDOFTEXT,
        GPT2_PATTERN,
        BytePairTokenizer,
        read_tiktoken_ranks,
        write_hf_files,
    )

    data_dir = Path(os.environ.get("TFPRETRAIN_DATA_DIR", "data"))
    ranks_path = data_dir / "gpt2" / "gpt2.tiktoken"
    lines = corpus_lines(data_dir)
    if args.limit:
        lines = lines[: args.limit]
    batches = [lines[i : i + args.batch_size] for i in range(0, len(lines), args.batch_size)]
    tensors = [tf.constant(b) for b in batches]

    reference = tiktoken.Encoding(
        name="gpt2_offline",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(ranks_path)),
        special_tokens={ENDOFTEXT: 50256},
    )
    expected = reference.encode_ordinary_batch(lines, num_threads=args.threads)
    hf_dir = Path(tempfile.mkdtemp()) / "gpt2"
    write_hf_files(read_tiktoken_ranks(ranks_path), hf_dir, {ENDOFTEXT: 50256})

    spec = tf.TensorSpec([None], tf.string)  # one trace for every batch size

    def keras_hub_tokenizer():
        tok = keras_hub.tokenizers.GPT2Tokenizer(
            vocabulary=str(hf_dir / "vocab.json"), merges=str(hf_dir / "merges.txt")
        )
        fn = tf.function(tok.tokenize, input_signature=[spec])
        fn(tf.constant(["warm up"]))  # traces; caches two words
        return fn

    ours = tf.function(BytePairTokenizer.from_tiktoken(ranks_path).tokenize, input_signature=[spec])
    ours(tf.constant(["warm up"]))
    warm_keras_hub = keras_hub_tokenizer()

    peers = {
        "tfpretrain BytePairTokenizer": lambda: ours,
        "KerasHub GPT2Tokenizer, cold": keras_hub_tokenizer,
        "KerasHub GPT2Tokenizer, warm": lambda: warm_keras_hub,
    }
    times = {name: [] for name in [*peers, "tiktoken (reference)"]}
    mismatches = {}
    for round_ in range(args.rounds):
        names = list(times)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            if name == "tiktoken (reference)":
                start = time.perf_counter()
                reference.encode_ordinary_batch(lines, num_threads=args.threads)
                times[name].append(time.perf_counter() - start)
                mismatches[name] = 0
                continue
            fn = peers[name]()  # built outside the clock
            start = time.perf_counter()
            outputs = [fn(t) for t in tensors]
            times[name].append(time.perf_counter() - start)
            rows = [row for out in outputs for row in out.to_list()]
            mismatches[name] = sum(a != b for a, b in zip(rows, expected, strict=True))

    tokens = sum(len(e) for e in expected)
    mb = sum(len(s.encode("utf-8")) for s in lines) / 1e6
    print(
        f"{len(lines):,} lines, {mb:.1f} MB, {tokens:,} tokens; batches of {args.batch_size}; "
        f"median of {args.rounds} alternating rounds"
    )
    print(
        f"{'peer':32s} {'seconds':>8s} {'lines/s':>10s} {'tokens/s':>11s} {'vs ours':>8s} "
        f"{'lines != tiktoken':>18s}"
    )
    ours_time = statistics.median(times["tfpretrain BytePairTokenizer"])
    for name, values in times.items():
        t = statistics.median(values)
        print(
            f"{name:32s} {t:8.2f} {len(lines) / t:10,.0f} {tokens / t:11,.0f} "
            f"{ours_time / t:7.2f}x {mismatches[name]:18,d}"
        )


if __name__ == "__main__":
    main()
