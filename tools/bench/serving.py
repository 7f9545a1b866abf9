"""Serving speed and size: SavedModel signatures vs TFLite, and XLA vs non-XLA signatures.

For the autoencoder (dense and convolutional), SimCLR's default encoder and a BERT text
classifier (`--preset`, 128 tokens), untrained (speed does not depend on the weights): the size
on disk of the SavedModel version folder and of the `.tflite` file, and the median latency of a
call at batch 1 and 32 of

* the SavedModel signature (`encode`/`reconstruct`, input checks included; the classifier's
  `serve` with raw strings, tokenizer included, and `serve_xla`),
* the TFLite signature (`classify` takes token ids: tokenization not included),

each the median of `--calls` calls after warm-up, on this machine's CPU (threads as TF and
TFLite choose); then text generation per request, with and without XLA, at batch 1 and 32:
GPT `generate` / `generate_no_xla` (the `nano` preset, character vocabulary, 64 tokens
with the prompt) and T5 `generate` / `generate_no_xla` (`t5-tiny`, 1,100 ids, 32 output
tokens), greedy; and `tfpretrain predict` on 1,000 SST-2 training sentences with a tiny
classifier (sentences per second, loading included). Run from the repository root:
`python tools/bench/serving.py [--calls 30] [--preset mini] [--only text] [--json OUT]`
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfpretrain.export import export_autoencoder, export_encoder  # noqa: E402
from tfpretrain.export.text import export_text_classifier  # noqa: E402
from tfpretrain.export.tflite import (  # noqa: E402
    autoencoder_to_tflite,
    encoder_to_tflite,
    text_classifier_to_tflite,
)

BATCHES = (1, 32)
SEQUENCE_LENGTH = 128
TEXT = "a quiet film about a family whose plot unfolds slowly but rewards patience"


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _median_ms(fn, calls: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _tflite_runner(path: Path, signature: str):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_runner(signature)


def _images(batch: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)).astype("float32")


def bench_images(name: str, saved: Path, tflite: Path, signatures, calls: int) -> list[dict]:
    loaded = tf.saved_model.load(str(saved))
    rows = []
    for signature in signatures:
        runner = _tflite_runner(tflite, signature)
        for batch in BATCHES:
            x = _images(batch)
            graph = loaded.signatures[signature]
            rows.append(
                {
                    "model": name,
                    "signature": signature,
                    "batch": batch,
                    "saved_model_ms": _median_ms(
                        lambda g=graph, x=x: g(images=tf.constant(x)), calls
                    ),
                    "tflite_ms": _median_ms(lambda r=runner, x=x: r(images=x), calls),
                    "saved_model_mb": _size_mb(saved),
                    "tflite_mb": _size_mb(tflite),
                }
            )
    return rows


def bench_classifier(preset: str, folder: Path, calls: int) -> list[dict]:
    from tfpretrain.models.bert import BertConfig, BertEncoder
    from tfpretrain.models.classifier import TextClassifier
    from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

    words = sorted(set(TEXT.split()))
    vocab = list(RESERVED_TOKENS) + words + [f"w{i}" for i in range(8000)]
    tokenizer = WordPieceTokenizer(vocab)
    encoder = BertEncoder(
        BertConfig.preset(preset, vocabulary_size=len(vocab), max_sequence_length=SEQUENCE_LENGTH)
    )
    model = TextClassifier(encoder, num_classes=2)
    saved = export_text_classifier(model, tokenizer, folder / "classifier", SEQUENCE_LENGTH)
    tflite = text_classifier_to_tflite(model, folder / "classifier.tflite", SEQUENCE_LENGTH)
    loaded = tf.saved_model.load(str(saved))
    runner = _tflite_runner(tflite, "classify")
    rows = []
    for batch in BATCHES:
        texts = tf.constant([TEXT] * batch)
        packed = tokenizer.pack(texts, SEQUENCE_LENGTH)
        ids, mask = packed["token_ids"].numpy(), packed["padding_mask"].numpy()
        row = {
            "model": f"bert-{preset} classifier",
            "signature": "serve",
            "batch": batch,
            "saved_model_mb": _size_mb(saved),
            "tflite_mb": _size_mb(tflite),
        }
        for name in ("serve", "serve_xla"):
            graph = loaded.signatures[name]
            row[f"{name}_ms"] = _median_ms(lambda g=graph, t=texts: g(strings=t), calls)
        row["saved_model_ms"] = row["serve_ms"]
        row["tflite_ms"] = _median_ms(
            lambda i=ids, m=mask: runner(token_ids=i, padding_mask=m), calls
        )
        rows.append(row)
    return rows


def _generation_ms(signature, inputs: dict, calls: int) -> float:
    scalars = {k: tf.constant(v) for k, v in inputs.items() if not isinstance(v, list)}
    texts = {k: tf.constant(v) for k, v in inputs.items() if isinstance(v, list)}
    return _median_ms(lambda: signature(**texts, **scalars), calls)


def bench_generation(folder: Path, calls: int) -> list[dict]:
    import os

    import keras

    from tfpretrain.export.generate import export_generate
    from tfpretrain.export.seq2seq import export_seq2seq
    from tfpretrain.models.gpt import GPTConfig, build_gpt
    from tfpretrain.models.t5 import Seq2SeqConfig, build_seq2seq
    from tfpretrain.text import CharTokenizer, SentencePieceTokenizer
    from tfpretrain.text.seq2seq import Seq2SeqTokenizer

    text = (Path(os.environ["TFPRETRAIN_DATA_DIR"]) / "tinyshakespeare" / "input.txt").read_text()
    text = text[:200_000]
    char = CharTokenizer.from_text(text)
    gpt = build_gpt(GPTConfig.preset("nano", vocabulary_size=char.vocabulary_size))
    pieces = Seq2SeqTokenizer(SentencePieceTokenizer.train(text, 1000))
    config = Seq2SeqConfig.preset(
        "t5-tiny",
        vocabulary_size=pieces.vocabulary_size,
        pad_id=pieces.pad_id,
        eos_id=pieces.eos_id,
    )
    t5 = build_seq2seq(config)
    # Untrained: zero the end token's (tied) output row so greedy decoding runs to max_length.
    table = t5.get_layer("token_embedding").weights[0]
    values = np.random.default_rng(0).normal(size=table.shape).astype("float32")
    values[[config.pad_id, config.eos_id]] = 0.0
    table.assign(values)
    keras.utils.set_random_seed(0)
    sampler = {"temperature": 0.0, "top_k": 0, "top_p": 1.0}
    cases = [
        (
            "gpt-nano (char)",
            export_generate(gpt, char, folder / "gpt"),
            lambda n: {
                "prompts": ["ROMEO:"] * n,
                "max_length": 64,
                "num_return_sequences": 1,
                **sampler,
            },
        ),
        (
            "t5-tiny",
            export_seq2seq(t5, config, pieces, folder / "t5"),
            lambda n: {"inputs": ["good night, sweet prince"] * n, "max_length": 32, **sampler},
        ),
    ]
    rows = []
    for name, saved, request in cases:
        loaded = tf.saved_model.load(str(saved))
        for batch in BATCHES:
            row = {
                "model": name,
                "signature": "generate",
                "batch": batch,
                "saved_model_mb": _size_mb(saved),
            }
            for signature in ("generate", "generate_no_xla"):
                row[f"{signature}_ms"] = _generation_ms(
                    loaded.signatures[signature], request(batch), calls
                )
            rows.append(row)
    return rows


def bench_predict(folder: Path) -> dict:
    """`tfpretrain predict` on 1,000 SST-2 sentences: sentences per second, loading included."""
    import io
    import os

    from tfpretrain.export.predict import run
    from tfpretrain.models.bert import BertConfig, BertEncoder
    from tfpretrain.models.classifier import TextClassifier
    from tfpretrain.settings.predict import PredictRun
    from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

    rows = (Path(os.environ["TFPRETRAIN_DATA_DIR"]) / "sst2" / "train.tsv").read_text()
    sentences = [line.split("\t")[0] for line in rows.splitlines()[1:1001]]
    words = sorted({w for s in sentences for w in s.split()})
    tokenizer = WordPieceTokenizer(list(RESERVED_TOKENS) + words)
    encoder = BertEncoder(
        BertConfig.preset(
            "tiny", vocabulary_size=tokenizer.vocabulary_size, max_sequence_length=SEQUENCE_LENGTH
        )
    )
    run_dir = folder / "sst2"
    export_text_classifier(
        TextClassifier(encoder, num_classes=2),
        tokenizer,
        run_dir / "saved_model",
        64,
        label_names=["negative", "positive"],
    )
    (folder / "sentences.txt").write_text("\n".join(sentences) + "\n")
    start = time.perf_counter()
    count = run(
        PredictRun(model=str(run_dir), input=str(folder / "sentences.txt")), stdout=io.StringIO()
    )
    seconds = time.perf_counter() - start
    return {"sentences": count, "seconds": seconds, "sentences_per_second": count / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="timed calls per reading")
    parser.add_argument("--preset", default="mini", help="BERT preset of the classifier")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--only",
        choices=("images", "text"),
        help="only the image/classifier rows, or only generation and predict",
    )
    args = parser.parse_args()
    from tfpretrain.models import AutoencoderConfig, build_autoencoder
    from tfpretrain.models.simclr import SimCLRConfig, build_simclr

    rows, generation, throughput = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only != "images":
            generation = bench_generation(folder, max(3, args.calls // 6))
            throughput = bench_predict(folder)
        for conv in (False, True) if args.only != "text" else ():
            model = build_autoencoder(AutoencoderConfig(conv=conv))
            name = "conv autoencoder" if conv else "dense autoencoder"
            saved = export_autoencoder(model, folder / name)
            tflite = autoencoder_to_tflite(model, folder / f"{name}.tflite")
            rows += bench_images(name, saved, tflite, ("encode", "reconstruct"), args.calls)
        if args.only != "text":
            encoder = build_simclr(SimCLRConfig()).encoder
            saved = export_encoder(encoder, folder / "simclr")
            tflite = encoder_to_tflite(encoder, folder / "simclr.tflite")
            rows += bench_images("simclr encoder", saved, tflite, ("encode",), args.calls)
            rows += bench_classifier(args.preset, folder, args.calls)
    print(
        f"{'model':24} {'signature':12} {'batch':>5} {'SavedModel ms':>13} {'TFLite ms':>10} "
        f"{'SavedModel MB':>13} {'TFLite MB':>9} {'serve_xla ms':>12}"
    )
    for r in rows:
        xla = f"{r['serve_xla_ms']:12.2f}" if "serve_xla_ms" in r else f"{'':12}"
        print(
            f"{r['model']:24} {r['signature']:12} {r['batch']:5d} {r['saved_model_ms']:13.2f} "
            f"{r['tflite_ms']:10.2f} {r['saved_model_mb']:13.2f} {r['tflite_mb']:9.2f} {xla}"
        )
    print(f"\n{'model':24} {'batch':>5} {'generate (XLA) ms':>17} {'generate_no_xla ms':>18}")
    for r in generation:
        print(
            f"{r['model']:24} {r['batch']:5d} {r['generate_ms']:17.1f} "
            f"{r['generate_no_xla_ms']:18.1f}"
        )
    if throughput:
        print(
            f"\ntfpretrain predict: {throughput['sentences']} SST-2 sentences in "
            f"{throughput['seconds']:.1f} s ({throughput['sentences_per_second']:.0f}/s)"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "generation": generation, "predict": throughput}, indent=2)
        )


if __name__ == "__main__":
    main()
