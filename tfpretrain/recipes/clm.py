"""Pre-train a GPT-style causal language model on a text corpus, sample from it and export it."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import keras

from tfpretrain.data.lm import lm_eval_dataset, lm_train_dataset, read_corpus, split_tokens
from tfpretrain.distribute import xla_for_training
from tfpretrain.models.gpt import GPTConfig, build_gpt
from tfpretrain.training import WarmupSchedule, adamw, fit, record_config, run_directory, write_json

# AdamW's decay of the matrices when a run names none. GPT-2's 0.1 costs the `nano` preset's
# 2000-step recipe 0.006 of validation loss in every seed measured, in this GPT and in a PyTorch
# one alike (BENCHMARKS.md); the larger presets, not measured, keep it.
DEFAULT_WEIGHT_DECAY = {"nano": 0.01}


@dataclasses.dataclass
class CLMRun:
    """Settings of `tfpretrain clm`. The defaults are nanoGPT's CPU recipe for Tiny Shakespeare
    (nano preset, block 64, batch 12, 2000 steps, peak lr 1e-3 decaying to 1e-4, AdamW with
    beta2 0.99, gradient clipping at 1.0) with a lighter weight decay: `weight_decay=None` means
    the preset's (`DEFAULT_WEIGHT_DECAY`: 0.01 for `nano`, GPT-2's 0.1 otherwise)."""

    corpus: str
    out_dir: str
    preset: str = "nano"
    tokenizer: str = "char"
    vocab_size: int = 1000
    block_size: int | None = None
    batch_size: int = 12
    steps: int = 2000
    learning_rate: float = 1e-3
    min_learning_rate: float | None = None
    warmup_steps: int = 100
    weight_decay: float | None = None
    beta2: float = 0.99
    clipnorm: float = 1.0
    dropout: float = 0.0
    bias: bool = True
    eval_interval: int = 250
    eval_batch_size: int = 64
    steps_per_execution: int = 50
    sample_length: int | None = None
    num_samples: int = 3
    seed: int = 0
    precision: str = "fp32"
    strategy: str = "auto"
    export: bool = True
    verbose: str | int = "auto"

    def __post_init__(self):
        if self.weight_decay is None:
            self.weight_decay = DEFAULT_WEIGHT_DECAY.get(self.preset, 0.1)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "eval_interval", "eval_batch_size", "steps_per_execution"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a positive integer; got {value!r}.")
        if self.block_size is not None and self.block_size <= 0:
            raise ValueError(f"--block-size must be a positive integer; got {self.block_size}.")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be > 0; got {self.learning_rate}.")
        if not self.weight_decay >= 0:
            raise ValueError(f"--weight-decay must be >= 0; got {self.weight_decay}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1); got {self.dropout}.")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"--warmup-steps must be in [0, steps); got {self.warmup_steps} with {self.steps} steps.")


def compile_gpt(model: keras.Model, cfg: CLMRun, total_steps: int, steps_per_execution: int) -> keras.Model:
    """AdamW (decay on matrices only), warm-up + cosine to `min_learning_rate`, global clipping, XLA
    (`xla_for_training`)."""
    final = cfg.min_learning_rate if cfg.min_learning_rate is not None else cfg.learning_rate / 10
    schedule = WarmupSchedule(cfg.learning_rate, total_steps=total_steps, warmup_steps=cfg.warmup_steps,
                              decay="cosine", final_learning_rate=final)
    optimizer = adamw(model, schedule, weight_decay=cfg.weight_decay, beta_1=0.9, beta_2=cfg.beta2,
                      epsilon=1e-8, clipnorm=cfg.clipnorm)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=xla_for_training(),
        steps_per_execution=steps_per_execution,
    )
    return model


@run_directory
def run(cfg: CLMRun) -> dict:
    """Trains, evaluates, samples and exports; returns the metrics written to `out_dir/metrics.json`."""
    from tfpretrain.distribute import get_strategy, is_chief, set_precision
    from tfpretrain.text import train_tokenizer

    cfg.validate()
    out = Path(cfg.out_dir)
    text = read_corpus(cfg.corpus)
    set_precision(cfg.precision)
    strategy = get_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)

    tokenizer = train_tokenizer(cfg.tokenizer, text, cfg.vocab_size)
    tokens = tokenizer.encode(text)
    train_tokens, val_tokens = split_tokens(tokens, 0.1)
    model_config = GPTConfig.preset(
        cfg.preset, vocabulary_size=tokenizer.vocabulary_size, sequence_length=cfg.block_size,
        dropout=cfg.dropout, use_bias=cfg.bias,
    )
    block = model_config.sequence_length
    train = lm_train_dataset(train_tokens, block, cfg.batch_size, seed=cfg.seed)
    val = lm_eval_dataset(val_tokens, block, cfg.eval_batch_size)

    eval_interval = min(cfg.eval_interval, cfg.steps)
    epochs = max(1, cfg.steps // eval_interval)
    total_steps = epochs * eval_interval
    steps_per_execution = math.gcd(eval_interval, cfg.steps_per_execution)
    with strategy.scope():
        model = build_gpt(model_config)
        compile_gpt(model, cfg, total_steps, steps_per_execution)

    out.mkdir(parents=True, exist_ok=True)
    chief = is_chief(strategy)  # the other workers of a multi-worker job hold the same; one writes
    if chief:
        tokenizer.save(out / "tokenizer")
        record_config(out, model=dataclasses.asdict(model_config))
    history = fit(model, train, epochs=epochs, steps_per_epoch=eval_interval, validation_data=val,
                  out_dir=out, verbose=cfg.verbose)
    rows = _evaluations(history, eval_interval)  # every evaluation, those before a resume too
    train_seconds = history.training_seconds
    if not chief:
        return {"val_loss": rows[-1]["val_loss"], "train_loss": rows[-1]["train_loss"]}
    model.save(out / "model.keras")

    samples = _write_samples(model, tokenizer, text, cfg, out / "samples.txt")
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
        "train_tokens": int(len(train_tokens)),
        "validation_tokens": int(len(val_tokens)),
        "samples": samples,
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _evaluations(history: keras.callbacks.History, eval_interval: int) -> list[dict]:
    """Train and validation loss at every evaluation, with its step and the seconds since the
    run began (NaN for epochs of checkpoints that predate recorded epoch times)."""
    losses = history.history["loss"]
    val_losses = history.history.get("val_loss", [math.nan] * len(losses))
    seconds = list(itertools.accumulate(history.epoch_seconds))
    seconds = [math.nan] * (len(losses) - len(seconds)) + seconds
    return [{"step": (i + 1) * eval_interval, "train_loss": loss, "val_loss": val, "seconds": t}
            for i, (loss, val, t) in enumerate(zip(losses, val_losses, seconds, strict=True))]


def _write_samples(model, tokenizer, text: str, cfg: CLMRun, path: Path) -> list[str]:
    from tfpretrain.generation import TextGenerator

    if cfg.num_samples <= 0:
        return []
    generator = TextGenerator(model, tokenizer)
    length = min(cfg.sample_length or generator.context_length, generator.context_length)
    prompt = text[:1]  # the corpus' first character: every tokenizer of this corpus encodes it
    samples = generator.generate(prompt, max_length=length, num_return_sequences=cfg.num_samples,
                                 top_k=None, top_p=0.95, temperature=0.8, seed=cfg.seed)
    path.write_text("\n\n---\n\n".join(samples) + "\n")
    return samples


def load_run(directory) -> tuple[keras.Model, object]:
    """The model and tokenizer a `tfpretrain clm` run wrote to `directory`."""
    from tfpretrain.text import load_tokenizer

    directory = Path(directory)
    if not (directory / "model.keras").is_file():
        raise FileNotFoundError(
            f"No model.keras in {directory}; pass --model with the --out folder of a finished `tfpretrain clm` run."
        )
    model = keras.models.load_model(directory / "model.keras")
    tokenizer = load_tokenizer(directory / "tokenizer")
    return model, tokenizer

