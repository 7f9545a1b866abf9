"""ELECTRA pre-training (replaced-token detection) of a BERT encoder on a text corpus."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from tfpretrain.distribute import get_strategy, is_chief, set_precision, xla_for_training
from tfpretrain.models.bert import BertEncoder
from tfpretrain.models.electra import ElectraPretrainer
from tfpretrain.recipes.mlm import encoder_config, masked_corpus, start_embeddings
from tfpretrain.settings.electra import ElectraRun
from tfpretrain.training import (
    WarmupSchedule,
    adamw,
    fit,
    record_config,
    run_directory,
    warmup_steps,
    write_json,
)


@run_directory
def run(cfg: ElectraRun) -> dict:
    """Pre-trains and writes the run directory: `vocab.txt`, `encoder.keras` (the
    discriminator's `BertEncoder`, what `finetune --init` reads), `electra.keras`,
    `checkpoints/`, `history.json`, `loss.png` and `metrics.json`."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)
    tokenizer, train, val, vocab_seconds = masked_corpus(cfg, out, strategy)

    model_config = encoder_config(cfg, tokenizer)
    set_precision(cfg.precision, width=model_config.hidden_dim)  # before the model is built
    per_epoch = cfg.steps // cfg.epochs
    with strategy.scope():
        model = ElectraPretrainer(
            BertEncoder(model_config, name="bert_encoder"),
            generator_layers=cfg.generator_layers,
            rtd_weight=cfg.rtd_weight,
            seed=cfg.seed,
        )
        started = start_embeddings(cfg, model.encoder, tokenizer)
        schedule = WarmupSchedule(
            cfg.learning_rate,
            cfg.steps,
            warmup_steps(cfg.steps, cfg.warmup_fraction),
            decay="linear",
        )
        model.compile(
            optimizer=adamw(model, schedule, weight_decay=cfg.weight_decay),
            jit_compile=xla_for_training(cfg.xla),
            steps_per_execution=min(cfg.steps_per_execution, per_epoch),
        )
    history = fit(
        model,
        train,
        epochs=cfg.epochs,
        steps_per_epoch=per_epoch,
        validation_data=val,
        out_dir=out,
        tensorboard=cfg.tensorboard,
        verbose=cfg.verbose,
        checkpoint_every=cfg.checkpoint_every,
    )
    if not is_chief(strategy):
        return history.history

    model.encoder.save(out / "encoder.keras")
    model.save(out / "electra.keras")
    record_config(
        out,
        model=dataclasses.asdict(model_config),
        generator={
            "layers": model.generator_layers,
            "intermediate_dim": model.generator_intermediate_dim,
        },
    )
    write_json(out / "history.json", history.history)
    from tfpretrain.plots import loss_curves

    loss_curves(history.history, out / "loss.png")
    h = history.history
    steps_done = len(h["loss"]) * per_epoch
    metrics = {
        "loss": float(h["loss"][-1]),
        "first_epoch_loss": float(h["loss"][0]),
        "mlm_loss": float(h["mlm_loss"][-1]),
        "rtd_loss": float(h["rtd_loss"][-1]),
        "masked_accuracy": float(h["masked_accuracy"][-1]),
        "rtd_accuracy": float(h["rtd_accuracy"][-1]),
        "epochs": len(h["loss"]),
        "steps": steps_done,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_seconds": history.training_seconds,
        "vocab_seconds": vocab_seconds,
        "tokens_per_second": steps_done
        * cfg.batch_size
        * cfg.seq_len
        / max(history.training_seconds, 1e-9),
        **started,
    }
    if val is not None:
        metrics.update(
            {
                "val_loss": float(h["val_loss"][-1]),
                "val_rtd_accuracy": float(h["val_rtd_accuracy"][-1]),
            }
        )
    write_json(out / "metrics.json", metrics)
    return metrics
