"""Span-corruption pre-training of an encoder-decoder (T5) on a text corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfpretrain.data.lm import held_out_windows, shuffled_windows, streamed_corpus, token_windows
from tfpretrain.data.pipeline import shard_by_element
from tfpretrain.data.seq2seq import seq2seq_batches
from tfpretrain.data.splits import holdout_stream
from tfpretrain.distribute import get_strategy, is_chief, set_precision, xla_for_training
from tfpretrain.models.t5 import Seq2SeqConfig, build_seq2seq
from tfpretrain.recipes.load import model_width
from tfpretrain.settings.seq2seq import Seq2SeqRun
from tfpretrain.settings.steps import evaluation_period
from tfpretrain.text.sentencepiece import SentencePieceTokenizer
from tfpretrain.text.seq2seq import SEQ2SEQ_VOCAB_FILE, Seq2SeqTokenizer
from tfpretrain.text.span_corruption import corrupted_lengths, span_corruption
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

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
# The vocabulary is learned from the corpus' first 4 MB; the rest is streamed through it.
TOKENIZER_SAMPLE_CHARACTERS = 1 << 22
# The held-out windows (every k-th for `eval_fraction` 1/k) give at most 131,072 tokens of
# validation examples, read once and kept.
VALIDATION_TOKENS = 1 << 17


def compile_seq2seq(
    model: keras.Model,
    learning_rate,
    total_steps: int,
    warmup_fraction: float,
    weight_decay: float = 0.01,
    steps_per_execution: int = 1,
    xla: str = "auto",
) -> keras.Model:
    """AdamW with warm-up (`warmup_fraction` of `total_steps`) and cosine decay; token
    cross-entropy averaged over real target tokens."""
    schedule = WarmupSchedule(
        learning_rate,
        total_steps=max(total_steps, 1),
        warmup_steps=warmup_steps(total_steps, warmup_fraction),
    )
    model.compile(
        optimizer=adamw(model, schedule, weight_decay=weight_decay, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        jit_compile=xla_for_training(xla),
        steps_per_execution=steps_per_execution,
    )
    return model


def save_seq2seq(
    model: keras.Model, config: Seq2SeqConfig, tokenizer: Seq2SeqTokenizer, out, extra=None
) -> None:
    """Writes a seq2seq model directory: `model.keras`, `config.json` and the tokenizer files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / MODEL_FILE)
    tokenizer.save(out)
    record_config(out, family="seq2seq", model=dataclasses.asdict(config), **(extra or {}))


def is_seq2seq_dir(path) -> bool:
    """Whether `path` is a model directory written by `save_seq2seq`."""
    return (Path(path) / SEQ2SEQ_VOCAB_FILE).is_file() and (Path(path) / MODEL_FILE).is_file()


def load_seq2seq(path) -> tuple[keras.Model, Seq2SeqConfig, Seq2SeqTokenizer]:
    """Loads a model directory written by `save_seq2seq`."""
    import json

    path = Path(path)
    if not is_seq2seq_dir(path):
        raise FileNotFoundError(
            f"{path} is not a seq2seq model directory (it needs {MODEL_FILE} and "
            f"{SEQ2SEQ_VOCAB_FILE}); create one with `tfpretrain seq2seq`."
        )
    config = Seq2SeqConfig.from_dict(json.loads((path / CONFIG_FILE).read_text())["model"])
    model = load_keras_model(path / MODEL_FILE)
    return model, config, Seq2SeqTokenizer.load(path)


def load_hf_t5(
    path, dropout: float | None = None
) -> tuple[keras.Model, Seq2SeqConfig, Seq2SeqTokenizer]:
    """A local Hugging Face T5 folder as a recipe continues it: the model, its config with the
    tokenizer's special ids and sentinel range (T5's, numbered down from the top; spare
    embedding rows above them count as sentinel rows, never produced), and the tokenizer.

    Raises:
        ValueError: not a T5 folder (its `model_type` named).
        FileNotFoundError: no `spiece.model` beside `config.json`.
    """
    from tfpretrain.models import t5
    from tfpretrain.recipes.load import hf_model_type
    from tfpretrain.text import load_tokenizer

    kind = hf_model_type(path)
    if kind != "t5":
        found = "no Hugging Face config.json" if kind is None else f"a {kind!r} model"
        raise ValueError(
            f"{path} holds {found}; --init takes a local Hugging Face T5 folder "
            "(config.json, weights, spiece.model) here."
        )
    tokenizer = load_tokenizer(path)
    model, config = t5.from_pretrained(path, dropout=dropout)
    config = dataclasses.replace(
        config,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
        num_sentinels=config.vocabulary_size - tokenizer.sentinel_start,
    )
    return model, config, tokenizer


def _vocabulary_and_model(cfg: Seq2SeqRun, text: str, strategy):
    """`(tokenizer, config, model)`: `--init`'s, or a vocabulary learned from `text` and a new
    `--preset` model; Keras' precision policy is set (`set_precision`) before either is built."""
    if cfg.init:
        set_precision(cfg.precision, width=model_width(cfg.init))
        with strategy.scope():
            model, config, tokenizer = load_hf_t5(cfg.init, cfg.dropout)
        return tokenizer, config, model
    tokenizer = Seq2SeqTokenizer(
        SentencePieceTokenizer.train(text, cfg.vocab_size), num_sentinels=cfg.num_sentinels
    )
    config = Seq2SeqConfig.preset(
        cfg.preset,
        vocabulary_size=tokenizer.vocabulary_size,
        dropout=cfg.dropout,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
        num_sentinels=cfg.num_sentinels,
        **(cfg.model_overrides or {}),
    )
    set_precision(cfg.precision, width=config.hidden_dim)
    with strategy.scope():
        model = build_seq2seq(config)
    return tokenizer, config, model


@run_directory
def run(cfg: Seq2SeqRun) -> dict:
    """Trains a tokenizer and a `Seq2SeqLM` by span corruption; returns the metrics written.

    The corpus is streamed, its lines as stored, each followed by a newline (as `clm` reads
    it): the vocabulary is learned from its first `TOKENIZER_SAMPLE_CHARACTERS` (unless
    `--init` brings T5's), and the token stream, encoded in `tf.data` as it is read, is cut into
    windows of `seq_len` tokens of which every k-th (`eval_fraction` 1/k) is held out. Memory
    does not grow with the corpus."""
    if cfg.seq_len < 2:
        raise ValueError(f"Span corruption needs --seq-len >= 2; got {cfg.seq_len}.")
    out = Path(cfg.out_dir)
    lines, sample = streamed_corpus(
        cfg.corpus,
        cfg.text_column,
        cfg.data_dir,
        4096 if cfg.init else TOKENIZER_SAMPLE_CHARACTERS,  # --init brings its vocabulary
    )
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)

    tokenizer, config, model = _vocabulary_and_model(cfg, sample, strategy)
    full_targets = cfg.objective == "reconstruct"
    in_len, out_len = corrupted_lengths(
        cfg.seq_len,
        cfg.noise_density,
        cfg.mean_span_length,
        tokenizer.num_sentinels,
        full_targets,
    )
    if in_len > config.encoder_length or out_len > config.decoder_length:
        raise ValueError(
            f"--seq-len {cfg.seq_len} gives inputs of {in_len} and targets of {out_len} tokens, "
            f"beyond the {cfg.init or cfg.preset} contexts ({config.encoder_length}, "
            f"{config.decoder_length}); lower --seq-len."
        )
    # `token_windows` adds a next-token target to each window; span corruption takes none.
    windows = token_windows(lines, tokenizer.tf_encode, cfg.seq_len - 1)
    train_windows, held = holdout_stream(windows, cfg.eval_fraction)
    held = held_out_windows(held, cfg.seq_len, VALIDATION_TOKENS, f"--seq-len {cfg.seq_len}")

    def pairs(chunks, seed, fresh):
        return span_corruption(
            chunks,
            sentinel_start=tokenizer.sentinel_start,
            eos_id=config.eos_id,
            noise_density=cfg.noise_density,
            mean_span_length=cfg.mean_span_length,
            num_sentinels=tokenizer.num_sentinels,
            seed=seed,
            rerandomize_each_iteration=fresh,
            descending_sentinels=tokenizer.descending_sentinels,
            full_targets=full_targets,
        )

    batch_args = dict(pad_id=config.pad_id, encoder_length=in_len, decoder_length=out_len)
    # The held-out read found a window, and a held-out window always comes after a training one,
    # so the endless training stream below is never empty.
    shuffled = shuffled_windows(train_windows, cfg.seq_len, cfg.batch_size, seed=cfg.seed)
    train = shard_by_element(
        seq2seq_batches(
            pairs(shuffled, cfg.seed, True), cfg.batch_size, drop_remainder=True, **batch_args
        )
    )
    held_out = seq2seq_batches(
        pairs(tf.data.Dataset.from_tensor_slices(held), cfg.seed + 1, False),
        cfg.batch_size,
        **batch_args,
    ).cache()

    steps_per_epoch = evaluation_period(cfg.steps, cfg.eval_interval)
    epochs = cfg.steps // steps_per_epoch
    with strategy.scope():
        compile_seq2seq(
            model,
            cfg.learning_rate,
            cfg.steps,
            cfg.warmup_fraction,
            cfg.weight_decay,
            min(cfg.steps_per_execution, steps_per_epoch),
            cfg.xla,
        )
    history = fit(
        model,
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=held_out,
        out_dir=out,
        verbose=cfg.verbose,
        tensorboard=cfg.tensorboard,
        checkpoint_every=cfg.checkpoint_every,
    )
    train_seconds = history.training_seconds
    val_loss, val_accuracy = model.evaluate(held_out, verbose=0)
    if not is_chief(strategy):  # the other workers of a multi-worker job hold the same; one writes
        return history.history

    save_seq2seq(model, config, tokenizer, out)
    if cfg.export:
        from tfpretrain.export.seq2seq import export_seq2seq

        export_seq2seq(model, config, tokenizer, out / "saved_model")
    metrics = {
        "val_loss": float(val_loss),
        "val_token_accuracy": float(val_accuracy),
        "loss": history.history["loss"],
        "token_accuracy": history.history["token_accuracy"],
        "val_loss_curve": history.history["val_loss"],
        "steps": cfg.steps,
        "train_seconds": train_seconds,
        "validation_tokens": int(held.size),
        "parameters": int(np.sum([np.prod(v.shape) for v in model.trainable_variables])),
    }
    write_json(out / "metrics.json", metrics)
    return metrics
