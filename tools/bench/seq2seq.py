"""Encoder-decoder speed: tfpretrain's Seq2SeqLM against KerasHub's T5Seq2SeqLM of the same shape.

Training tokens per second (encoder + decoder tokens of span-corruption-shaped batches, the
same batches for both, XLA train steps, alternating in one process) and generation tokens per
second (greedy and 4-beam search, batch 1 and 8, XLA, new tokens only) for the `t5-tiny` shape.
Needs keras-hub next to tfpretrain (a separate venv: `pip install keras-hub`), e.g.

    TF_ENABLE_ONEDNN_OPTS=1 PYTHONPATH=. BENCH_PYTHON tools/bench/seq2seq.py

Both models: 4+4 layers, 256 wide, 4 heads, feed-forward 1024 with ReLU (not gated), tied
embeddings, float32, no dropout unless `--dropout` (T5 trains with 0.1; both models then drop
alike). Training also prints each model's FLOP utilisation against the machine's measured
float32 matmul peak (`clock.matmul_peak_flops`). Prints one JSON line per measurement and a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock import matmul_peak_flops  # noqa: E402


def build_pair(vocabulary: int, dropout: float = 0.0):
    import keras_hub

    from tfpretrain.models.t5 import Seq2SeqConfig, build_seq2seq

    config = Seq2SeqConfig.preset(
        "t5-tiny", vocabulary_size=vocabulary, dropout=dropout, pad_id=0, eos_id=1
    )
    ours = build_seq2seq(config)
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=vocabulary,
        num_layers=4,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
        key_value_dim=64,
        dropout=dropout,
        activation="relu",
        use_gated_activation=False,
        tie_embedding_weights=True,
    )
    theirs = keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)
    return config, ours, theirs


def training_flops(config, batch: int, enc_len: int, dec_len: int) -> float:
    """FLOPs of one training step: 3x the forward pass's matrix products (weights and attention).

    Per encoder token and layer: the query/key/value/output projections (4 d^2) and the
    feed-forward (2 d f) weights; per decoder token and layer: self-attention (4 d^2), the
    cross-attention's query and output (2 d^2), the feed-forward, and the tied head (V d) once;
    the cross-attention's keys and values (2 d^2) per encoder token and decoder layer; scores and
    value sums (2 n m d per pair of lengths) of every attention. Multiply-adds count 2 FLOPs.
    """
    d, f, v = config.hidden_dim, config.intermediate_dim, config.vocabulary_size
    le, ld = config.num_encoder_layers, config.num_decoder_layers
    weights = (
        le * enc_len * (4 * d * d + 2 * d * f)
        + ld * dec_len * (6 * d * d + 2 * d * f)
        + dec_len * v * d
        + ld * enc_len * 2 * d * d
    )
    attention = 2 * d * (le * enc_len * enc_len + ld * dec_len * dec_len + ld * dec_len * enc_len)
    return 3 * 2 * batch * (weights + attention)


def timed(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def training_batches(vocabulary, batch, enc_len, dec_len):
    """The same span-corruption-shaped batch in each model's input format, targets and weights."""
    rng = np.random.default_rng(0)
    enc = rng.integers(2, vocabulary, (batch, enc_len)).astype("int32")
    dec = rng.integers(2, vocabulary, (batch, dec_len)).astype("int32")
    target = np.roll(dec, -1, axis=1)
    weight = np.ones((batch, dec_len), "float32")
    ones = lambda n: np.ones((batch, n), "int32")  # noqa: E731
    x_ours = {"encoder_token_ids": enc, "decoder_token_ids": dec}
    x_theirs = {
        "encoder_token_ids": enc,
        "encoder_padding_mask": ones(enc_len),
        "decoder_token_ids": dec,
        "decoder_padding_mask": ones(dec_len),
    }
    return x_ours, x_theirs, target, weight


def alternate(runs: dict, rounds: int, steps: int) -> dict:
    """Median seconds per call of each function, timed in alternating rounds after two warm-up
    calls."""
    for fn in runs.values():  # compile
        fn()
        fn()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn, steps))
    return {name: statistics.median(t) for name, t in times.items()}


def bench_training(
    ours,
    theirs,
    vocabulary,
    batch,
    enc_len,
    dec_len,
    rounds,
    steps,
    breakdown=False,
    theirs_default=None,
):
    x_ours, x_theirs, target, weight = training_batches(vocabulary, batch, enc_len, dec_len)
    for model in (ours, theirs):
        model.compile(
            keras.optimizers.Adam(1e-4),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
    runs = {
        "tfpretrain": lambda: ours.train_on_batch(x_ours, target, sample_weight=weight),
        "keras_hub": lambda: theirs.train_on_batch(x_theirs, target, sample_weight=weight),
    }
    if theirs_default is not None:  # Keras' default compile: no XLA without an accelerator
        theirs_default.compile(
            keras.optimizers.Adam(1e-4),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        runs["keras_hub_default"] = lambda: theirs_default.train_on_batch(
            x_theirs, target, sample_weight=weight
        )
    if breakdown:  # where a step's time goes: the forward pass and the loss gradient, each alone
        import tensorflow as tf

        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        def forward(model, x):
            return tf.function(lambda: model(x, training=True), jit_compile=True)

        def gradient(model, x):
            def fn():
                with tf.GradientTape() as tape:
                    loss = loss_fn(target, model(x, training=True), sample_weight=weight)
                return tape.gradient(loss, model.trainable_variables)

            return tf.function(fn, jit_compile=True)

        for name, model, x in (("tfpretrain", ours, x_ours), ("keras_hub", theirs, x_theirs)):
            runs[f"{name}_forward"] = forward(model, x)
            runs[f"{name}_gradient"] = gradient(model, x)
    seconds = alternate(runs, rounds, steps)
    tokens = batch * (enc_len + dec_len)
    result = {
        name: tokens / seconds[name]
        for name in ("tfpretrain", "keras_hub", "keras_hub_default")
        if name in seconds
    }
    if breakdown:
        result["milliseconds"] = {name: 1000 * t for name, t in seconds.items()}
    return result


def bench_generation(config, ours, theirs, batch, enc_len, new_tokens, beams, rounds):
    import keras_hub

    from tfpretrain.models.t5 import Seq2SeqGenerator

    rng = np.random.default_rng(1)
    enc = rng.integers(2, config.vocabulary_size - config.num_sentinels, (batch, enc_len)).astype(
        "int32"
    )
    generator = Seq2SeqGenerator(ours, config)

    def run_ours():
        out = generator.generate_ids(list(enc), new_tokens, num_beams=beams, greedy=True)
        return sum(len(row[0]) for row in out)

    theirs.compile(
        sampler="greedy" if beams == 1 else keras_hub.samplers.BeamSampler(num_beams=beams)
    )
    dec = np.zeros((batch, new_tokens + 1), "int32")
    mask = np.zeros((batch, new_tokens + 1), bool)
    mask[:, 0] = True
    hub_inputs = {
        "encoder_token_ids": enc,
        "encoder_padding_mask": np.ones_like(enc, bool),
        "decoder_token_ids": dec,
        "decoder_padding_mask": mask,
    }

    def run_theirs():
        theirs.generate(hub_inputs, stop_token_ids=None)
        return batch * new_tokens

    runs = {"tfpretrain": run_ours, "keras_hub": run_theirs}
    for fn in runs.values():  # compile
        fn()
    rates = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            produced = fn()
            rates[name].append(produced / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabulary", type=int, default=2100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--encoder-length", type=int, default=116, help="span corruption of 128 tokens"
    )
    parser.add_argument("--decoder-length", type=int, default=28)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timings per measurement")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout rate of both models")
    parser.add_argument(
        "--keras-hub-default",
        action="store_true",
        help="also train KerasHub's model at Keras' default compile (no XLA on a CPU)",
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the forward pass and the loss gradient of each model alone",
    )
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    config, ours, theirs = build_pair(args.vocabulary, args.dropout)
    print(
        json.dumps(
            {
                "parameters": {
                    "tfpretrain": ours.count_params(),
                    "keras_hub": theirs.count_params(),
                },
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
                "dropout": args.dropout,
            }
        )
    )
    summary = {}
    if not args.skip_training:
        theirs_default = (
            build_pair(args.vocabulary, args.dropout)[2] if args.keras_hub_default else None
        )
        rates = bench_training(
            ours,
            theirs,
            args.vocabulary,
            args.batch_size,
            args.encoder_length,
            args.decoder_length,
            args.rounds,
            args.steps,
            args.breakdown,
            theirs_default,
        )
        summary["train"] = rates
        peak = matmul_peak_flops()
        step_flops = training_flops(
            config, args.batch_size, args.encoder_length, args.decoder_length
        )
        tokens = args.batch_size * (args.encoder_length + args.decoder_length)
        mfu = {
            name: rate / tokens * step_flops / peak
            for name, rate in rates.items()
            if name != "milliseconds"
        }
        print(
            json.dumps(
                {
                    "training_tokens_per_second": rates,
                    "ratio": rates["tfpretrain"] / rates["keras_hub"],
                    "gflops_per_step": step_flops / 1e9,
                    "matmul_peak_gflops": peak / 1e9,
                    "mfu": mfu,
                }
            )
        )
    for beams in () if args.skip_generation else (1, 4):
        for batch in (1, 8):
            rates = bench_generation(
                config, ours, theirs, batch, 64, args.new_tokens, beams, args.rounds
            )
            summary[f"generate_beams{beams}_batch{batch}"] = rates
            print(
                json.dumps(
                    {
                        "generation": {"beams": beams, "batch": batch},
                        "new_tokens_per_second": rates,
                        "ratio": rates["tfpretrain"] / rates["keras_hub"],
                    }
                )
            )
    print(
        json.dumps(
            {"summary_ratios": {k: v["tfpretrain"] / v["keras_hub"] for k, v in summary.items()}}
        )
    )


if __name__ == "__main__":
    main()
