"""Masked-LM (+ optional NSP) pre-training of a BERT encoder on a text corpus."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import numpy as np

from tfpretrain.data.splits import holdout_stream
from tfpretrain.data.text_files import corpus_dataset
from tfpretrain.distribute import get_strategy, is_chief, set_precision, xla_for_training
from tfpretrain.models.bert import BertConfig, BertEncoder, BertMaskedLM
from tfpretrain.recipes.load import model_width
from tfpretrain.settings.distill import DistillRun
from tfpretrain.settings.mlm import MlmRun
from tfpretrain.text.mlm import mlm_dataset
from tfpretrain.text.wordpiece import WordPieceTokenizer, learn_vocabulary
from tfpretrain.training import (
    EpochTimer,
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    warmup_steps,
    write_json,
)


def compile_mlm(
    model: BertMaskedLM,
    learning_rate,
    weight_decay: float = 0.01,
    steps_per_execution: int = 1,
    xla: str = "auto",
):
    """AdamW + masked cross-entropy; masked-token accuracy (and NSP accuracy), XLA-compiled."""
    losses = {"mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    metrics = {"mlm": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
    if model.include_nsp:
        losses["nsp"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics["nsp"] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=adamw(model, learning_rate, weight_decay=weight_decay),
        loss=losses,
        weighted_metrics=metrics,
        jit_compile=xla_for_training(xla),
        steps_per_execution=steps_per_execution,
    )
    return model


# Held-out lines kept for validation at most: read once, held in memory, the same every epoch.
VALIDATION_LINES = 10_000


def corpus_lines(cfg: MlmRun | DistillRun):
    """The corpus of `cfg` (an mlm / electra run's, or `distill --corpus`), streamed, as
    `(training lines, validation lines)`: a `tf.data.Dataset` of the training lines and a list
    of at most `VALIDATION_LINES` held-out ones.

    `--limit-train N` keeps the first N lines. Of those, every line whose position the
    `--validation-fraction` rule picks (`splits.is_held_out`: the 20th, 40th, ... for 0.05) is
    held out, so the split needs no count of the lines and never holds the corpus in memory.
    """
    lines = corpus_dataset(cfg.corpus, cfg.text_column, cfg.data_dir)
    if cfg.limit_train:
        lines = lines.take(cfg.limit_train)
    if not any(True for _ in lines.take(1)):
        raise ValueError(f"The corpus {cfg.corpus!r} is empty (no non-blank lines).")
    if not cfg.validation_fraction:
        return lines, []
    train, held = holdout_stream(lines, cfg.validation_fraction)
    val = [line.decode("utf-8") for line in held.take(VALIDATION_LINES).as_numpy_iterator()]
    return train, val


def encoder_config(cfg: MlmRun, tokenizer) -> BertConfig:
    """The `--preset` encoder for the run's vocabulary (`mlm` and `electra` alike)."""
    return BertConfig.preset(
        cfg.preset,
        vocabulary_size=tokenizer.vocabulary_size,
        dropout=cfg.dropout,
        max_sequence_length=max(512, cfg.seq_len),
    )


def masked_corpus(cfg: MlmRun, out: Path, strategy):
    """The corpus of `cfg` as masked-LM batches: learns (or loads) the vocabulary, writes
    `vocab.txt`, and returns `(tokenizer, train, val or None, vocab_seconds)`. Shared by the
    masked-LM and ELECTRA pre-training commands.

    The corpus is streamed (`corpus_lines`): the vocabulary is learned from the first
    `--vocab-lines` training lines, and the training batches are tokenized and masked as the
    lines are read, so memory does not grow with the corpus."""
    train_lines, val_lines = corpus_lines(cfg)

    start = time.perf_counter()
    if cfg.init:  # a Hugging Face masked LM: its vocabulary, no new one learned
        tokenizer = _init_tokenizer(cfg)
    elif cfg.vocab:
        tokenizer = WordPieceTokenizer.from_pretrained(cfg.vocab, sequence_length=cfg.seq_len)
    else:
        # The learner is slow on large corpora (Python loops over the word counts); a sample
        # of lines gives almost the same vocabulary.
        sample = train_lines.take(cfg.vocab_lines) if cfg.vocab_lines else train_lines
        vocab = learn_vocabulary(sample, cfg.vocab_size)
        tokenizer = WordPieceTokenizer(vocab, sequence_length=cfg.seq_len)
    vocab_seconds = time.perf_counter() - start
    if is_chief(strategy):  # one writer in a multi-worker job
        tokenizer.save(out)

    train = mlm_dataset(
        train_lines,
        tokenizer,
        cfg.seq_len,
        cfg.batch_size,
        cfg.mask_rate,
        nsp=cfg.nsp,
        repeat=True,
        seed=cfg.seed,
    )
    val = None
    if val_lines:
        try:
            val = mlm_dataset(
                val_lines,
                tokenizer,
                cfg.seq_len,
                cfg.batch_size,
                cfg.mask_rate,
                nsp=cfg.nsp,
                shuffle=False,
                seed=cfg.seed,
                rerandomize_each_iteration=False,
            )
        except ValueError:
            val = None  # too little held-out text for one batch; train without validation curves
    return tokenizer, train, val, vocab_seconds


def start_embeddings(cfg: MlmRun, encoder: BertEncoder, tokenizer) -> dict:
    """Starts `encoder`'s token embeddings as `--embeddings` says and returns what was done, for
    `metrics.json`. Shared by the masked-LM and ELECTRA commands.

    Count vectors of the run's training lines (`text.cooccurrence`) are scaled to the spread of
    BERT's initializer; tokens the corpus never shows keep their random rows. `auto` takes them
    where the vocabulary fits the count table and the corpus has enough distinct tokens, and
    leaves random rows otherwise (the reason is recorded)."""
    if cfg.init:
        return {"embedding_start": "checkpoint"}
    if cfg.embeddings == "random":
        return {"embedding_start": "random"}
    from tfpretrain.text.cooccurrence import MAX_VOCABULARY, count_vectors

    if cfg.embeddings == "auto" and tokenizer.vocabulary_size > MAX_VOCABULARY:
        return {
            "embedding_start": "random",
            "embedding_start_reason": f"vocabulary over {MAX_VOCABULARY} tokens",
        }
    start = time.perf_counter()
    lines, _ = corpus_lines(cfg)
    try:
        vectors, seen, read = count_vectors(
            lines, tokenizer, encoder.config.hidden_dim, seed=cfg.seed
        )
    except ValueError as error:  # too little text for the width
        if cfg.embeddings == "counts":
            raise
        return {"embedding_start": "random", "embedding_start_reason": str(error)}
    vectors *= encoder.config.initializer_range / vectors[seen].std()
    table = encoder.token_embedding.token_embedding.embeddings
    table.assign(np.where(seen[:, None], vectors, keras.ops.convert_to_numpy(table)))
    return {
        "embedding_start": "counts",
        "count_tokens": read,
        "count_seconds": time.perf_counter() - start,
    }


@run_directory
def run(cfg: MlmRun) -> dict:
    """Learns (or loads) a vocabulary, pre-trains, and writes the run directory.

    Writes `vocab.txt`, `encoder.keras` (the pre-trained `BertEncoder`, what `finetune --init`
    reads), `mlm.keras`, `checkpoints/`, `history.json`, `loss.png` and `metrics.json`.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)

    tokenizer, train, val, vocab_seconds = masked_corpus(cfg, out, strategy)

    model_config = encoder_config(cfg, tokenizer)
    width = model_width(cfg.init) if cfg.init else model_config.hidden_dim
    set_precision(cfg.precision, width=width)  # before the model is built
    with strategy.scope():
        if cfg.init:
            model = _init_model(cfg)
            model_config = model.encoder.config
        else:
            model = BertMaskedLM(
                BertEncoder(model_config, name="bert_encoder"), include_nsp=cfg.nsp
            )
        started = start_embeddings(cfg, model.encoder, tokenizer)
        warmup = warmup_steps(cfg.steps, cfg.warmup_fraction)
        schedule = WarmupSchedule(cfg.learning_rate, cfg.steps, warmup, decay="linear")
        steps_per_execution = min(cfg.steps_per_execution, cfg.steps // cfg.epochs)
        compile_mlm(model, schedule, cfg.weight_decay, steps_per_execution, cfg.xla)

    timer = EpochTimer()
    history = fit(
        model,
        train,
        epochs=cfg.epochs,
        steps_per_epoch=cfg.steps // cfg.epochs,
        validation_data=val,
        out_dir=out,
        tensorboard=cfg.tensorboard,
        callbacks=[timer],
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
    )
    train_seconds = history.training_seconds
    if not is_chief(strategy):  # the other workers of a multi-worker job hold the same; one writes
        return history.history

    model.encoder.save(out / "encoder.keras")
    model.save(out / "mlm.keras")
    if cfg.export:
        from tfpretrain.export.mlm import export_mlm

        export_mlm(model, tokenizer, out / "saved_model", cfg.seq_len)
    record_config(out, model=dataclasses.asdict(model_config))
    write_json(out / "history.json", history.history)
    from tfpretrain.plots import loss_curves

    loss_curves(history.history, out / "loss.png")

    h = history.history
    acc_key = "mlm_accuracy" if "mlm_accuracy" in h else "accuracy"
    steps_done = len(h["loss"]) * (cfg.steps // cfg.epochs)
    metrics = {
        "loss": float(h["loss"][-1]),
        "first_epoch_loss": float(h["loss"][0]),
        "masked_accuracy": float(h[acc_key][-1]),
        "epochs": len(h["loss"]),
        "steps": steps_done,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_seconds": train_seconds,
        "vocab_seconds": vocab_seconds,
        "seconds_per_epoch_after_first": float(np.mean(timer.seconds[1:] or timer.seconds)),
        "tokens_per_second": steps_done * cfg.batch_size * cfg.seq_len / train_seconds,
        **started,
    }
    if "mlm_loss" in h:
        metrics["mlm_loss"] = float(h["mlm_loss"][-1])
    if "nsp_accuracy" in h:
        metrics["nsp_accuracy"] = float(h["nsp_accuracy"][-1])
    if val is not None:
        metrics["val_loss"] = float(h["val_loss"][-1])
        metrics["val_masked_accuracy"] = float(h["val_" + acc_key][-1])
    write_json(out / "metrics.json", metrics)
    return metrics


def _init_tokenizer(cfg: MlmRun) -> WordPieceTokenizer:
    """The WordPiece tokenizer of `--init`, a Hugging Face BERT / DistilBERT masked LM, after
    checking that the folder has the heads the run trains."""
    from tfpretrain.checkpoints.bert import hf_architecture
    from tfpretrain.recipes.load import hf_encoder_folder

    tokenizer, config = hf_encoder_folder(cfg.init, cfg.seq_len, kinds=("bert", "distilbert"))
    head = hf_architecture(config)
    name = (config.get("architectures") or ["an encoder without heads"])[0]
    if head not in ("mlm", "pretraining"):
        raise ValueError(
            f"--init {cfg.init} holds {name}, not a masked LM; mlm --init continues "
            "BertForMaskedLM, BertForPreTraining or DistilBertForMaskedLM folders."
        )
    if cfg.nsp and head != "pretraining":
        raise ValueError(
            f"--nsp needs a next-sentence head; --init {cfg.init} holds {name}, "
            "which has none (BertForPreTraining has)."
        )
    return tokenizer


def _init_model(cfg: MlmRun) -> BertMaskedLM:
    """`--init`'s masked LM with its MLM head (and NSP head with `--nsp`)."""
    from tfpretrain.checkpoints.bert import load_bert

    return load_bert(cfg.init, head="pretraining" if cfg.nsp else "mlm", dropout=cfg.dropout)
