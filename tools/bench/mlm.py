"""Masked-LM pre-training speed: tfpretrain's BertMaskedLM vs KerasHub's, same shape, same batches.

Also tokenization throughput of `tfpretrain.text.WordPieceTokenizer` vs KerasHub's
`WordPieceTokenizer` on the same sentences and vocabulary. Needs keras-hub (a separate
environment is fine):

    pip install keras-hub
    TFPRETRAIN_DATA_DIR=... python tools/bench/mlm.py --preset mini --rounds 5

Both models are compiled with AdamW and the same masked cross-entropy, and trained on one fixed
list of batches from `tfpretrain.text.mlm_dataset` (WikiText-2). KerasHub's model runs twice:
with `jit_compile=True` (`keras_hub`, its best) and with Keras' default `jit_compile="auto"`
(`keras_hub_default`), which turns XLA off on machines without an accelerator. Timed rounds
alternate between the models so that machine load affects all alike; the first round
(compilation) is not counted; `clock.timed_fit` reads the clock inside the training loop. Prints
one JSON line per measurement and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from clock import timed_fit

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_batches(args):
    import tensorflow as tf

    from tfpretrain.data.text_files import read_corpus
    from tfpretrain.text import WordPieceTokenizer, learn_vocabulary, mlm_dataset

    lines = read_corpus(args.corpus)
    if args.vocab:
        tokenizer = WordPieceTokenizer(args.vocab)
    else:
        vocab = learn_vocabulary(
            tf.data.Dataset.from_tensor_slices(lines[: args.vocab_lines]), args.vocab_size
        )
        tokenizer = WordPieceTokenizer(vocab)
    ds = mlm_dataset(lines, tokenizer, args.seq_len, args.batch_size, shuffle=False)
    batches = list(ds.take(args.steps))
    if len(batches) < args.steps:
        raise SystemExit(f"The corpus gives only {len(batches)} batches; lower --steps.")
    return tokenizer, lines, batches


def make_models(args, vocab_size: int) -> dict:
    import keras
    import keras_hub

    from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
    from tfpretrain.recipes.mlm import compile_mlm

    config = BertConfig.preset(args.preset, vocabulary_size=vocab_size, max_sequence_length=512)
    ours = BertMaskedLM(BertEncoder(config))
    compile_mlm(ours, 1e-4, steps_per_execution=args.steps_per_execution)

    def keras_hub_model(jit_compile):
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=vocab_size,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            hidden_dim=config.hidden_dim,
            intermediate_dim=config.intermediate_dim,
            dropout=config.dropout,
            max_sequence_length=512,
        )
        model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01, epsilon=1e-6),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=jit_compile,
            steps_per_execution=args.steps_per_execution,
        )
        return model

    return {
        "tfpretrain": ours,
        "keras_hub": keras_hub_model(True),
        "keras_hub_default": keras_hub_model("auto"),
    }


def as_dataset(batches, nested: bool):
    """The same batches; KerasHub's model takes flat targets, ours a dict with `mlm`."""
    import tensorflow as tf

    xs = [b[0] for b in batches]
    ys = [b[1]["mlm"] for b in batches]
    ws = [b[2]["mlm"] for b in batches]
    x = {k: tf.stack([b[k] for b in xs]) for k in xs[0]}
    y, w = tf.stack(ys), tf.stack(ws)
    if nested:
        ds = tf.data.Dataset.from_tensor_slices((x, {"mlm": y}, {"mlm": w}))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    return ds.cache().repeat()


def bench_training(args, batches, vocab_size):
    data = {
        name: (model, as_dataset(batches, nested=name == "tfpretrain"))
        for name, model in make_models(args, vocab_size).items()
    }
    tokens = args.steps * args.batch_size * args.seq_len
    rates = {name: [] for name in data}
    for r in range(args.rounds + 1):
        for name, (model, ds) in data.items():
            seconds = timed_fit(model, ds, args.steps)
            if r:  # round 0 compiles
                rates[name].append(tokens / seconds)
                print(
                    json.dumps(
                        {
                            "what": "mlm_train",
                            "model": name,
                            "round": r,
                            "tokens_per_s": tokens / seconds,
                        }
                    )
                )
    med = {name: statistics.median(v) for name, v in rates.items()}
    return med


def bench_tokenizers(args, tokenizer, lines):
    import keras_hub
    import tensorflow as tf

    sentences = tf.constant(lines[: args.tokenize_sentences])
    theirs = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=tokenizer.vocabulary, lowercase=True, strip_accents=True, dtype="int32"
    )
    fns = {
        "tfpretrain": tf.function(lambda s: tokenizer.tokenize(s).flat_values),
        "keras_hub": tf.function(lambda s: theirs.tokenize(s).flat_values),
    }
    chunks = [
        sentences[i : i + 1024] for i in range(0, len(lines[: args.tokenize_sentences]), 1024)
    ]
    rates = {name: [] for name in fns}
    for r in range(args.rounds + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            for chunk in chunks:
                fn(chunk)
            seconds = time.perf_counter() - start
            if r:
                rates[name].append(int(sentences.shape[0]) / seconds)
                print(
                    json.dumps(
                        {
                            "what": "tokenize",
                            "model": name,
                            "round": r,
                            "sentences_per_s": int(sentences.shape[0]) / seconds,
                        }
                    )
                )
    return {name: statistics.median(v) for name, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--corpus", default="wikitext-2")
    parser.add_argument(
        "--vocab", default=None, help="vocab.txt (default: learned from --vocab-lines lines)"
    )
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--vocab-lines", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32, help="timed steps per round and model")
    parser.add_argument("--steps-per-execution", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokenize-sentences", type=int, default=20000)
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()

    import keras
    import keras_hub
    import tensorflow as tf

    tokenizer, lines, batches = build_batches(args)
    summary = {
        "preset": args.preset,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "vocabulary_size": tokenizer.vocabulary_size,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }
    if not args.skip_training:
        train = bench_training(args, batches, tokenizer.vocabulary_size)
        summary.update({f"{k}_tokens_per_s": v for k, v in train.items()})
        summary["train_speedup"] = train["tfpretrain"] / train["keras_hub"]
        summary["train_speedup_vs_default"] = train["tfpretrain"] / train["keras_hub_default"]
    if not args.skip_tokenizer:
        from tfpretrain.data.text_files import read_corpus

        sst2 = read_corpus("sst2")
        tok = bench_tokenizers(args, tokenizer, sst2)
        summary.update({f"{k}_sentences_per_s": v for k, v in tok.items()})
        summary["tokenize_speedup"] = tok["tfpretrain"] / tok["keras_hub"]
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
