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

With `--curve`, a learning curve instead: does tfpretrain's masked LM learn as fast as
KerasHub's at the same preset, corpus, steps, batch and schedule? Both models (KerasHub's with
`jit_compile=True`) start from scratch, seeded alike, and train in lockstep on one stream of
masked batches (every batch is drawn once and given to both, in the same order), with the same
AdamW (weight decay 0.01 on matrices only, epsilon 1e-6) and a fresh linear warm-up + linear
decay `WarmupSchedule` each. Every 20th corpus line is held out; `--eval-batches` batches of it
(default: all), masked once, are evaluated every `--every` steps and at step 0. Prints one JSON
line per model and checkpoint (held-out masked-token accuracy and loss per masked token), then a
markdown table with the unigram baseline (always the most frequent masked training target; the
training targets' unigram distribution as the prediction), under which a model has learned
only token frequencies. With `--same-weights` tfpretrain's model starts from KerasHub's initial
weights, so that what is left between the curves is the two models' arithmetic (exact vs tanh
GELU in the feed-forward, the head's norm epsilon) and their dropout draws:

    TFPRETRAIN_DATA_DIR=... python tools/bench/mlm.py --curve --preset mini \\
        --corpus wikitext-2 --steps 2000 --every 100 --batch-size 32 --seq-len 128 \\
        --learning-rate 5e-4 --warmup-fraction 0.1 --vocab-size 8000 --vocab-lines 20000 \\
        --json-out mlm_curve.json
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

    from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
    from tfpretrain.recipes.mlm import compile_mlm

    config = BertConfig.preset(args.preset, vocabulary_size=vocab_size, max_sequence_length=512)
    ours = BertMaskedLM(BertEncoder(config))
    compile_mlm(ours, 1e-4, steps_per_execution=args.steps_per_execution)

    def keras_hub_model(jit_compile):
        model = keras_hub_mlm(config, vocab_size)
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


def keras_hub_mlm(config, vocab_size: int):
    """KerasHub's BertMaskedLM of the shape of `config` (a tfpretrain `BertConfig`), uncompiled."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        dropout=config.dropout,
        max_sequence_length=512,
    )
    return keras_hub.models.BertMaskedLM(backbone, preprocessor=None)


def as_dataset(batches, nested: bool):
    """The same batches, repeated forever."""
    return stacked(batches, nested).cache().repeat()


def stacked(batches, nested: bool):
    """The batches as one finite dataset; KerasHub's model takes flat targets, ours a dict
    with `mlm`."""
    import tensorflow as tf

    xs = [b[0] for b in batches]
    ys = [b[1]["mlm"] for b in batches]
    ws = [b[2]["mlm"] for b in batches]
    x = {k: tf.stack([b[k] for b in xs]) for k in xs[0]}
    y, w = tf.stack(ys), tf.stack(ws)
    if nested:
        return tf.data.Dataset.from_tensor_slices((x, {"mlm": y}, {"mlm": w}))
    return tf.data.Dataset.from_tensor_slices((x, y, w))


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


# Every HOLDOUT_EVERY-th corpus line is held out in --curve mode (the 20th, 40th, ...: what the
# `mlm` command's default --validation-fraction 0.05 holds out).
HOLDOUT_EVERY = 20


def curve_data(args):
    """`(tokenizer, training batch stream, held-out batches)` for --curve.

    The vocabulary is learned from training lines only, and the held-out batches are masked
    once (`rerandomize_each_iteration=False`), so every checkpoint scores the same predictions.
    """
    import tensorflow as tf

    from tfpretrain.data.text_files import read_corpus
    from tfpretrain.text import WordPieceTokenizer, learn_vocabulary, mlm_dataset

    lines = read_corpus(args.corpus)
    held = [line for i, line in enumerate(lines) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    train = [line for i, line in enumerate(lines) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    if args.vocab:
        tokenizer = WordPieceTokenizer(args.vocab)
    else:
        sample = train[: args.vocab_lines] if args.vocab_lines else train
        vocab = learn_vocabulary(tf.data.Dataset.from_tensor_slices(sample), args.vocab_size)
        tokenizer = WordPieceTokenizer(vocab)
    common = dict(
        tokenizer=tokenizer,
        sequence_length=args.seq_len,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    held_ds = mlm_dataset(held, shuffle=False, rerandomize_each_iteration=False, **common)
    eval_batches = list(held_ds.take(args.eval_batches) if args.eval_batches else held_ds)
    if len(eval_batches) < args.eval_batches:
        raise SystemExit(
            f"The held-out lines give only {len(eval_batches)} batches; lower --eval-batches."
        )
    stream = mlm_dataset(train, shuffle=True, repeat=True, **common)
    return tokenizer, stream, eval_batches, {"train_lines": len(train), "held_out_lines": len(held)}


def curve_models(args, vocab_size: int) -> tuple[dict, int]:
    """Both masked LMs, built from the same seed and compiled alike, and the warm-up steps."""
    import keras

    from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
    from tfpretrain.recipes.mlm import compile_mlm
    from tfpretrain.training import WarmupSchedule, adamw, warmup_steps

    config = BertConfig.preset(args.preset, vocabulary_size=vocab_size, max_sequence_length=512)
    warmup = warmup_steps(args.steps, args.warmup_fraction)
    # At most one execution per evaluation interval: a training chunk holds --every batches.
    spe = min(args.steps_per_execution, args.every)

    def schedule():  # one per model: a schedule is stateless, but nothing is shared by chance
        return WarmupSchedule(args.learning_rate, args.steps, warmup, decay="linear")

    keras.utils.set_random_seed(args.seed)
    ours = BertMaskedLM(BertEncoder(config))
    compile_mlm(ours, schedule(), weight_decay=0.01, steps_per_execution=spe, xla="on")

    keras.utils.set_random_seed(args.seed)
    theirs = keras_hub_mlm(config, vocab_size)
    theirs.compile(
        # tfpretrain's AdamW rule for both (epsilon 1e-6, decay of weight matrices only, not of
        # biases and norm scales), so the optimizer is not a difference between the two.
        optimizer=adamw(theirs, schedule(), weight_decay=0.01, epsilon=1e-6),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=True,
        steps_per_execution=spe,
    )
    if args.same_weights:
        copy_start(theirs, ours)
    return {"tfpretrain": ours, "keras_hub": theirs}, warmup


# KerasHub's variable paths -> tfpretrain's, for --same-weights (the same tensors under other
# names; the shapes are checked when assigned).
_KERAS_HUB_NAMES = (
    ("token_embedding", "embeddings/token_embedding"),
    ("position_embedding", "embeddings/position_embedding"),
    ("embeddings_layer_norm", "embeddings_norm"),
    ("pooled_dense/", "pooler/"),
    ("self_attention_layer/attention_output/", "attention/output_"),
    ("self_attention_layer/query/", "attention/query_"),
    ("self_attention_layer/key/", "attention/key_"),
    ("self_attention_layer/value/", "attention/value_"),
    ("self_attention_layer_norm", "attention_norm"),
    ("feedforward_layer_norm", "ffn_norm"),
    ("feedforward_intermediate_dense", "ffn_inner"),
    ("feedforward_output_dense", "ffn_outer"),
    ("mlm_head/output_bias", "mlm_head/bias"),
    ("mlm_head/intermediate_dense", "mlm_head/transform"),
    ("mlm_head/intermediate_layer_norm", "mlm_head/norm"),
)


def copy_start(theirs, ours) -> None:
    """Gives tfpretrain's model KerasHub's initial weights, so that the two curves differ only
    in what the models compute (GELU form, the head's norm epsilon) and their dropout draws."""
    import keras

    ours_by_path = {v.path: v for v in ours.trainable_variables}
    copied = set()
    for variable in theirs.trainable_variables:
        path = variable.path
        for old, new in _KERAS_HUB_NAMES:
            path = path.replace(old, new)
        ours_by_path[path].assign(keras.ops.convert_to_numpy(variable))
        copied.add(path)
    missing = sorted(set(ours_by_path) - copied)
    if missing:
        raise SystemExit(f"--same-weights: no KerasHub weight for {missing}.")


def masked_targets(batches):
    """The labels of the real (weight > 0) predictions of `batches`, as one int64 array."""
    import numpy as np

    labels = [b[1]["mlm"].numpy()[b[2]["mlm"].numpy() > 0] for b in batches]
    return np.concatenate(labels).astype(np.int64)


def unigram_baseline(train_counts, held_targets) -> dict:
    """Held-out accuracy of always predicting the most frequent masked training target, and
    held-out cross-entropy of predicting the training targets' unigram distribution."""
    import numpy as np

    # Add-one smoothing: a held-out token never masked in training still gets a finite loss.
    probs = (train_counts + 1) / (train_counts.sum() + len(train_counts))
    seen = train_counts[train_counts > 0] / train_counts.sum()
    return {
        "accuracy": float(np.mean(held_targets == np.argmax(train_counts))),
        "loss": float(-np.mean(np.log(probs[held_targets]))),
        "train_entropy": float(-np.sum(seen * np.log(seen))),
        "train_targets": int(train_counts.sum()),
    }


def accuracy_of(result: dict) -> float:
    """The masked-token accuracy of a metrics dict (ours names it `mlm_accuracy`)."""
    (key,) = [k for k in result if k.endswith("accuracy")]
    return float(result[key])


def run_curve(args) -> dict:
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    tokenizer, stream, eval_batches, split = curve_data(args)
    vocab_size = tokenizer.vocabulary_size
    models, warmup = curve_models(args, vocab_size)
    nested = {name: name == "tfpretrain" for name in models}
    evals = {name: stacked(eval_batches, nested[name]).cache() for name in models}
    held_targets = masked_targets(eval_batches)
    # Keras averages the loss over all prediction slots, padding included: dividing by the
    # share of real ones gives the loss per masked token, comparable to the unigram's.
    real_share = len(held_targets) / sum(int(tf.size(b[2]["mlm"])) for b in eval_batches)

    records = []
    seconds = dict.fromkeys(models, 0.0)
    train_metrics = {name: {} for name in models}

    def evaluate(step):
        for name, model in models.items():
            result = model.evaluate(evals[name], verbose=0, return_dict=True)
            record = {
                "what": "mlm_curve",
                "model": name,
                "step": step,
                "accuracy": accuracy_of(result),
                "loss": float(result["loss"]) / real_share,
                "keras_loss": float(result["loss"]),
                "learning_rate": float(model.optimizer.learning_rate),  # of the next step
                "train_seconds": seconds[name],  # the first chunk's includes XLA compilation
                **train_metrics[name],
            }
            records.append(record)
            print(json.dumps(record), flush=True)

    train_counts = np.zeros(vocab_size, np.int64)
    batches = iter(stream)
    evaluate(0)
    step = 0
    while step < args.steps:
        size = min(args.every, args.steps - step)
        # Drawn once, then given to both models: identical batches in identical order.
        chunk = [next(batches) for _ in range(size)]
        train_counts += np.bincount(masked_targets(chunk), minlength=vocab_size)
        for name, model in models.items():
            # A finite dataset: the last execution of a chunk stops where the chunk ends.
            seconds[name] += timed_fit(model, stacked(chunk, nested[name]), size)
            metrics = model.get_metrics_result()  # the chunk's running training averages
            train_metrics[name] = {
                "train_accuracy": accuracy_of(metrics),
                "train_loss": float(metrics["loss"]),
            }
            if int(model.optimizer.iterations) != step + size:
                raise RuntimeError(
                    f"{name} ran {int(model.optimizer.iterations)} steps, not {step + size}."
                )
        step += size
        evaluate(step)

    unigram = unigram_baseline(train_counts, held_targets)
    print(json.dumps({"what": "mlm_curve_unigram", **unigram}))
    config = {
        **vars(args),
        **split,
        "vocabulary_size": vocab_size,
        "warmup_steps": warmup,
        "held_out_targets": len(held_targets),
        "eval_batches_used": len(eval_batches),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
    }
    return {"config": config, "curve": records, "unigram": unigram}


def curve_table(result: dict) -> str:
    """Markdown: a row per checkpoint step, each model's held-out accuracy and loss per masked
    token, and the unigram baseline as the last row."""
    names = list(dict.fromkeys(r["model"] for r in result["curve"]))
    by_step: dict[int, dict] = {}
    for r in result["curve"]:
        by_step.setdefault(r["step"], {})[r["model"]] = r
    header = ["step"] + [f"{n} {what}" for n in names for what in ("acc", "loss")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for step, row in sorted(by_step.items()):
        cells = [f"{row[n]['accuracy']:.4f} | {row[n]['loss']:.3f}" for n in names]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    u = result["unigram"]
    cells = [f"{u['accuracy']:.4f} | {u['loss']:.3f}" for _ in names]
    lines.append("| unigram | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per round and model (default 32); with --curve, training steps in all "
        "(default 2000)",
    )
    parser.add_argument("--steps-per-execution", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokenize-sentences", type=int, default=20000)
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    curve = parser.add_argument_group("--curve: held-out learning curves of both models")
    curve.add_argument("--curve", action="store_true", help="learning curves, not speed")
    curve.add_argument("--every", type=int, default=100, help="steps between evaluations")
    curve.add_argument("--learning-rate", type=float, default=5e-4, help="peak AdamW rate")
    curve.add_argument("--warmup-fraction", type=float, default=0.1, help="linear warm-up share")
    curve.add_argument(
        "--eval-batches", type=int, default=0, help="held-out batches (0: all the held-out lines)"
    )
    curve.add_argument("--seed", type=int, default=0, help="initialisation, shuffle and masks")
    curve.add_argument(
        "--same-weights",
        action="store_true",
        help="start tfpretrain's model from KerasHub's initial weights",
    )
    curve.add_argument("--json-out", default=None, help="write the curves as one JSON file")
    args = parser.parse_args()

    if args.curve:
        args.steps = args.steps or 2000
        if args.steps < 2 or args.every < 1:
            parser.error("--curve needs --steps >= 2 and --every >= 1.")
        result = run_curve(args)
        if args.json_out:
            with open(args.json_out, "w") as out:
                json.dump(result, out, indent=1)
        print(curve_table(result))
        return
    args.steps = args.steps or 32

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
