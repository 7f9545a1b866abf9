"""Settings of `tfpretrain seq2seq` (span-corruption pre-training)."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, in_range, non_negative, positive, setting
from tfpretrain.settings.data import CorpusData
from tfpretrain.settings.steps import WARMUP_STEPS_HELP, evaluation_period, warmup_steps_to_fraction

# The names of `tfpretrain.models.t5.PRESETS` (a test keeps them equal), here so that flags are
# checked without importing TensorFlow.
T5_PRESETS = ("t5-tiny", "t5-small")


@dataclasses.dataclass(kw_only=True)
class Seq2SeqRun(TrainingSettings, CorpusData):
    """Settings of `tfpretrain seq2seq`: a SentencePiece vocabulary and a T5-style
    encoder-decoder trained by span corruption with AdamW, warm-up and cosine decay."""

    preset: str = setting("t5-tiny", choices=T5_PRESETS, help="model shape")
    init: str | None = setting(
        None,
        help="continue span corruption from a local Hugging Face T5 folder: its weights "
        "and its spiece.model vocabulary with T5's sentinels (--preset and "
        "--vocab-size are then its own)",
    )
    steps: int = setting(2000, check=positive, resumable=True, help="training steps")
    batch_size: int = setting(16, check=positive, help="global batch size (sequences)")
    seq_len: int = setting(
        128,
        check=positive,
        aliases=("--length",),
        help="corpus tokens per example before corruption",
    )
    vocab_size: int = setting(2000, check=positive, help="SentencePiece vocabulary size")
    learning_rate: float = setting(1e-3, check=positive, help="peak AdamW learning rate")
    warmup_fraction: float = setting(
        0.05, check=in_range(0, 1, high_open=True), help="linear warm-up share of the steps"
    )
    warmup_steps: int | None = setting(None, check=non_negative, help=WARMUP_STEPS_HELP)
    weight_decay: float = setting(0.01, check=non_negative, help="AdamW weight decay")
    dropout: float = setting(0.0, check=in_range(0, 1, high_open=True), help="dropout rate")
    noise_density: float = setting(
        0.15,
        check=in_range(0, 1, low_open=True, high_open=True),
        help="fraction of tokens corrupted",
    )
    mean_span_length: float = setting(3.0, check=positive, help="mean corrupted span length")
    objective: str = setting(
        "spans",
        choices=("spans", "reconstruct"),
        help="the target: the dropped spans after their sentinels (T5), or the whole "
        "original text (BART's text infilling: the decoder also learns to copy its input, "
        "which text-to-text tasks that rewrite their input need; longer targets, slower steps)",
    )
    eval_interval: int = setting(
        500,
        check=positive,
        aliases=("--eval-every",),
        help="steps between held-out evaluations (it must divide --steps)",
    )
    steps_per_execution: int = setting(
        10,
        check=positive,
        defines_run=False,
        help="training steps run per compiled call (fewer Python round trips)",
    )
    # Python-only knobs.
    num_sentinels: int = 100
    eval_fraction: float = 0.1
    # Seq2SeqConfig fields replacing the preset's (e.g. smaller shapes for tests).
    model_overrides: dict | None = None

    def check(self) -> None:
        warmup_steps_to_fraction(self)
        evaluation_period(self.steps, self.eval_interval)
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1); got {self.eval_fraction}.")
        if self.num_sentinels <= 0:
            raise ValueError(f"num_sentinels must be > 0; got {self.num_sentinels}.")
