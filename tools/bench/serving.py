"""Serving speed and size: SavedModel signatures vs TFLite, and XLA vs non-XLA signatures.

For the autoencoder (dense and convolutional), SimCLR's default encoder and a BERT text
classifier (`--preset`, 128 tokens), untrained (speed does not depend on the weights): the size
on disk of the SavedModel version folder and of the `.tflite` file, and the median latency of a
call at batch 1 and 32 of

* the SavedModel signature (`encode`/`reconstruct`, input checks included; the classifier's
  `serve` with raw strings, tokenizer included, and `serve_xla`),
* the TFLite signature (`classify` takes token ids: tokenization not included),

each the median of `--calls` calls after warm-up, on this machine's CPU (threads as TF and
TFLite choose). Run from the repository root:
`python tools/bench/serving.py [--calls 30] [--preset mini] [--json OUT]`
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
            rows.append({
                "model": name, "signature": signature, "batch": batch,
                "saved_model_ms": _median_ms(lambda g=graph, x=x: g(images=tf.constant(x)), calls),
                "tflite_ms": _median_ms(lambda r=runner, x=x: r(images=x), calls),
                "saved_model_mb": _size_mb(saved), "tflite_mb": _size_mb(tflite)})
    return rows


def bench_classifier(preset: str, folder: Path, calls: int) -> list[dict]:
    from tfpretrain.models.bert import BertConfig, BertEncoder
    from tfpretrain.models.classifier import TextClassifier
    from tfpretrain.text import RESERVED_TOKENS, WordPieceTokenizer

    words = sorted(set(TEXT.split()))
    vocab = list(RESERVED_TOKENS) + words + [f"w{i}" for i in range(8000)]
    tokenizer = WordPieceTokenizer(vocab)
    encoder = BertEncoder(BertConfig.preset(preset, vocabulary_size=len(vocab),
                                            max_sequence_length=SEQUENCE_LENGTH))
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
        row = {"model": f"bert-{preset} classifier", "signature": "serve", "batch": batch,
               "saved_model_mb": _size_mb(saved), "tflite_mb": _size_mb(tflite)}
        for name in ("serve", "serve_xla"):
            graph = loaded.signatures[name]
            row[f"{name}_ms"] = _median_ms(lambda g=graph, t=texts: g(strings=t), calls)
        row["saved_model_ms"] = row["serve_ms"]
        row["tflite_ms"] = _median_ms(
            lambda i=ids, m=mask: runner(token_ids=i, padding_mask=m), calls)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="timed calls per reading")
    parser.add_argument("--preset", default="mini", help="BERT preset of the classifier")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    from tfpretrain.models import AutoencoderConfig, build_autoencoder
    from tfpretrain.models.simclr import SimCLRConfig, build_simclr

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for conv in (False, True):
            model = build_autoencoder(AutoencoderConfig(conv=conv))
            name = "conv autoencoder" if conv else "dense autoencoder"
            saved = export_autoencoder(model, folder / name)
            tflite = autoencoder_to_tflite(model, folder / f"{name}.tflite")
            rows += bench_images(name, saved, tflite, ("encode", "reconstruct"), args.calls)
        encoder = build_simclr(SimCLRConfig()).encoder
        saved = export_encoder(encoder, folder / "simclr")
        tflite = encoder_to_tflite(encoder, folder / "simclr.tflite")
        rows += bench_images("simclr encoder", saved, tflite, ("encode",), args.calls)
        rows += bench_classifier(args.preset, folder, args.calls)
    print(f"{'model':24} {'signature':12} {'batch':>5} {'SavedModel ms':>13} {'TFLite ms':>10} "
          f"{'SavedModel MB':>13} {'TFLite MB':>9} {'serve_xla ms':>12}")
    for r in rows:
        xla = f"{r['serve_xla_ms']:12.2f}" if "serve_xla_ms" in r else f"{'':12}"
        print(f"{r['model']:24} {r['signature']:12} {r['batch']:5d} {r['saved_model_ms']:13.2f} "
              f"{r['tflite_ms']:10.2f} {r['saved_model_mb']:13.2f} {r['tflite_mb']:9.2f} {xla}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
