"""Pre-train a GPT-style causal language model on a text corpus, sample from it and export it."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from pathlib import Path

import keras

from tfpretrain.data.lm import lm_stream_eval, lm_stream_train, streamed_corpus, token_windows
from tfpretrain.data.splits import holdout_stream
from tfpretrain.distribute import xla_for_training
from tfpretrain.models.gpt import GPTConfig, build_gpt
from tfpretrain.settings.clm import CLMRun
from tfpretrain.settings.steps import evaluation_period
from tfpretrain.training import (
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    warmup_steps,
    write_json,
)
from tfpretrain.training.checkpoint import load_keras_model

# The tokenizer is learned from the corpus' first 4 MB (all of Tiny Shakespeare); the rest is
# streamed through it. A character vocabulary leaves out characters the sample lacks.
TOKENIZER_SAMPLE_CHARACTERS = 1 << 22
# Every tenth window of the token stream is held out (`splits.is_held_out`), and its first
# 131,072 tokens at most are the validation set, read once and kept.
VALIDATION_FRACTION = 0.1
VALIDATION_TOKENS = 1 << 17


def compile_gpt(
    model: keras.Model, cfg: CLMRun, total_steps: int, steps_per_execution: int
) -> keras.Model:
    """AdamW (decay on matrices only), warm-up + cosine to `min_learning_rate`, global clipping, XLA
    (`xla_for_training`)."""
    final = cfg.min_learning_rate if cfg.min_learning_rate is not None else cfg.learning_rate / 10
    schedule = WarmupSchedule(
        cfg.learning_rate,
        total_steps=total_steps,
        warmup_steps=warmup_steps(total_steps, cfg.warmup_fraction),
        decay="cosine",
        final_learning_rate=final,
    )
    optimizer = adamw(
        model,
        schedule,
        weight_decay=cfg.weight_decay,
        beta_1=0.9,
        beta_2=cfg.beta2,
        epsilon=1e-8,
        clipnorm=cfg.clipnorm,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=xla_for_training(cfg.xla),
        steps_per_execution=steps_per_execution,
    )
    return model


@run_directory
def run(cfg: CLMRun) -> dict:
    """Trains, evaluates, samples and exports; returns the metrics written to
    `out_dir/metrics.json`.

    The corpus is streamed, its lines as stored (`corpus_dataset(..., layout=True)`), each
    followed by a newline: the tokenizer is learned from its first `TOKENIZER_SAMPLE_CHARACTERS`,
    and the token stream, encoded in `tf.data` as it is read, is cut into windows of
    `seq_len + 1` of which every tenth is held out for validation. Memory does not grow with the
    corpus."""
    from tfpretrain.distribute import get_strategy, is_chief, set_precision
    from tfpretrain.text import train_tokenizer

    out = Path(cfg.out_dir)
    # --init brings its tokenizer: the sample only gives the samples' prompt.
    size = 4096 if cfg.init else TOKENIZER_SAMPLE_CHARACTERS
    lines, sample = streamed_corpus(cfg.corpus, cfg.text_column, cfg.data_dir, size)
    strategy = get_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)

    if cfg.init:  # a Hugging Face GPT-2: its tokenizer and shape
        tokenizer, model_config = _init_gpt(cfg)
    else:
        tokenizer = train_tokenizer(cfg.tokenizer, sample, cfg.vocab_size)
        model_config = GPTConfig.preset(
            cfg.preset,
            vocabulary_size=tokenizer.vocabulary_size,
            sequence_length=cfg.seq_len,
            dropout=cfg.dropout,
            use_bias=cfg.bias,
        )
    set_precision(cfg.precision, width=model_config.hidden_dim)  # before the model is built
    block = min(cfg.seq_len or model_config.sequence_length, model_config.sequence_length)
    encode = tokenizer.tf_encode
    if tokenizer.kind == "char":
        encode = functools.partial(tokenizer.tf_encode, drop_unknown=True)
    train_windows, held = holdout_stream(token_windows(lines, encode, block), VALIDATION_FRACTION)
    val, validation_tokens = lm_stream_eval(held, block, cfg.eval_batch_size, VALIDATION_TOKENS)
    train = lm_stream_train(train_windows, block, cfg.batch_size, seed=cfg.seed)

    eval_interval = evaluation_period(cfg.steps, cfg.eval_interval)
    epochs = cfg.steps // eval_interval
    total_steps = cfg.steps
    steps_per_execution = math.gcd(eval_interval, cfg.steps_per_execution)
    with strategy.scope():
        model = _init_model(cfg) if cfg.init else build_gpt(model_config)
        compile_gpt(model, cfg, total_steps, steps_per_execution)

    out.mkdir(parents=True, exist_ok=True)
    chief = is_chief(strategy)  # the other workers of a multi-worker job hold the same; one writes
    if chief:
        tokenizer.save(out / "tokenizer")
        record_config(out, model=dataclasses.asdict(model_config))
    history = fit(
        model,
        train,
        epochs=epochs,
        steps_per_epoch=eval_interval,
        validation_data=val,
        out_dir=out,
        verbose=cfg.verbose,
        tensorboard=cfg.tensorboard,
        checkpoint_every=cfg.checkpoint_every,
    )
    rows = _evaluations(history, eval_interval)  # every evaluation, those before a resume too
    train_seconds = history.training_seconds
    if not chief:
        return {"val_loss": rows[-1]["val_loss"], "train_loss": rows[-1]["train_loss"]}
    model.save(out / "model.keras")

    samples = _write_samples(model, tokenizer, sample, cfg, out / "samples.txt")
    if cfg.export:
        from tfpretrain.export.generate import export_generate

        export_generate(model, tokenizer, out / "saved_model")

    metrics = {
        "val_loss": rows[-1]["val_loss"],
        "train_loss": rows[-1]["train_loss"],
        "evaluations": rows,
        "steps": total_steps,
        "train_seconds": train_seconds,
        "train_tokens_per_second": total_steps * cfg.batch_size * block / train_seconds,
        "parameters": int(model.count_params()),
        "vocabulary_size": tokenizer.vocabulary_size,
        "validation_tokens": validation_tokens,
        "samples": samples,
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _init_gpt(cfg: CLMRun) -> tuple[object, GPTConfig]:
    """The tokenizer and `GPTConfig` of `--init`, a Hugging Face GPT-2 folder."""
    from tfpretrain.checkpoints import read_config
    from tfpretrain.checkpoints.gpt2 import gpt2_config
    from tfpretrain.text import load_tokenizer

    config = gpt2_config(read_config(cfg.init))
    return load_tokenizer(cfg.init), dataclasses.replace(config, dropout=cfg.dropout)


def _init_model(cfg: CLMRun) -> keras.Model:
    from tfpretrain.models.gpt import from_pretrained

    return from_pretrained(cfg.init, dropout=cfg.dropout)


def _evaluations(history: keras.callbacks.History, eval_interval: int) -> list[dict]:
    """Train and validation loss at every evaluation, with its step and the seconds since the
    run began (NaN for epochs of checkpoints that predate recorded epoch times)."""
    losses = history.history["loss"]
    val_losses = history.history.get("val_loss", [math.nan] * len(losses))
    seconds = list(itertools.accumulate(history.epoch_seconds))
    seconds = [math.nan] * (len(losses) - len(seconds)) + seconds
    return [
        {"step": (i + 1) * eval_interval, "train_loss": loss, "val_loss": val, "seconds": t}
        for i, (loss, val, t) in enumerate(zip(losses, val_losses, seconds, strict=True))
    ]


def _write_samples(model, tokenizer, text: str, cfg: CLMRun, path: Path) -> list[str]:
    from tfpretrain.models.gpt import TextGenerator

    if cfg.num_samples <= 0:
        return []
    generator = TextGenerator(model, tokenizer)
    length = min(cfg.sample_length or generator.context_length, generator.context_length)
    prompt = text[:1]  # the corpus' first character: every tokenizer of this corpus encodes it
    samples = generator.generate(
        prompt,
        max_length=length,
        num_return_sequences=cfg.num_samples,
        top_k=None,
        top_p=0.95,
        temperature=0.8,
        seed=cfg.seed,
    )
    path.write_text("\n\n---\n\n".join(samples) + "\n")
    return samples


def load_run(directory) -> tuple[keras.Model, object]:
    """The model and tokenizer a `tfpretrain clm` run wrote to `directory`."""
    from tfpretrain.text import load_tokenizer

    directory = Path(directory)
    if not (directory / "model.keras").is_file():
        raise FileNotFoundError(
            f"No model.keras in {directory}; pass --model with the --out folder of a finished "
            "`tfpretrain clm` run."
        )
    model = load_keras_model(directory / "model.keras")
    tokenizer = load_tokenizer(directory / "tokenizer")
    return model, tokenizer
