"""Settings of `tfpretrain clm`."""

from __future__ import annotations

import dataclasses

from tfpretrain.settings import TrainingSettings, in_range, non_negative, positive, setting
from tfpretrain.settings.data import CorpusData
from tfpretrain.settings.steps import WARMUP_STEPS_HELP, evaluation_period, warmup_steps_to_fraction

# The names of `tfpretrain.models.gpt.PRESETS` (a test keeps them equal), here so that flags
# are checked without importing TensorFlow.
GPT_PRESETS = ("nano", "shakespeare", "gpt2-small")
TOKENIZERS = ("char", "sentencepiece")

# AdamW's decay of the matrices when a run names none. GPT-2's 0.1 costs the `nano` preset's
# 2000-step recipe 0.006 of validation loss in every seed measured, in this GPT and in a PyTorch
# one alike (BENCHMARKS.md); the larger presets, not measured, keep it.
DEFAULT_WEIGHT_DECAY = {"nano": 0.01}


@dataclasses.dataclass(kw_only=True)
class CLMRun(TrainingSettings, CorpusData):
    """Settings of `tfpretrain clm`. The defaults are nanoGPT's CPU recipe for Tiny Shakespeare
    (nano preset, context 64, batch 12, 2000 steps, 100 of them warm-up, peak lr 1e-3 decaying to
    1e-4, AdamW with beta2 0.99, gradient clipping at 1.0) with a lighter weight decay:
    `weight_decay=None` means the preset's (`DEFAULT_WEIGHT_DECAY`: 0.01 for `nano`, GPT-2's 0.1
    otherwise)."""

    preset: str = setting(
        "nano",
        choices=GPT_PRESETS,
        help="model size: nano (4 layers, 4 heads, 128), shakespeare (6, 6, 384), "
        "gpt2-small (12, 12, 768)",
    )
    tokenizer: str = setting(
        "char",
        choices=TOKENIZERS,
        help="character vocabulary, or a BPE vocabulary trained on the corpus with sentencepiece",
    )
    vocab_size: int = setting(1000, check=positive, help="sentencepiece vocabulary size")
    init: str | None = setting(
        None,
        help="continue training a local Hugging Face GPT-2 folder (its BPE tokenizer and "
        "context; --preset, --tokenizer and --bias are then its own)",
    )
    seq_len: int | None = setting(
        None,
        check=positive,
        aliases=("--block-size",),
        help="context length in tokens (default: the preset's)",
    )
    batch_size: int = setting(12, check=positive, help="global batch size")
    steps: int = setting(2000, check=positive, resumable=True, help="training steps")
    learning_rate: float = setting(1e-3, check=positive, help="peak learning rate")
    min_learning_rate: float | None = setting(
        None,
        check=non_negative,
        help="learning rate at the end of the cosine decay (default: a tenth of the peak)",
    )
    warmup_fraction: float = setting(
        0.05, check=in_range(0, 1, high_open=True), help="linear warm-up share of the steps"
    )
    warmup_steps: int | None = setting(None, check=non_negative, help=WARMUP_STEPS_HELP)
    weight_decay: float | None = setting(
        None,
        check=non_negative,
        help="AdamW weight decay of the weight matrices (default: 0.01 for nano, 0.1 for larger "
        "presets)",
    )
    clipnorm: float = setting(1.0, check=positive, help="global gradient-norm clip")
    dropout: float = setting(0.0, check=in_range(0, 1, high_open=True), help="dropout rate")
    bias: bool = setting(
        True, help="biases in projections and layer norms (--no-bias: nanoGPT's default)"
    )
    eval_interval: int = setting(
        250, check=positive, help="steps between validation evaluations (it must divide --steps)"
    )
    steps_per_execution: int = setting(
        50,
        check=positive,
        defines_run=False,
        help="training steps run per compiled call (fewer Python round trips)",
    )
    num_samples: int = setting(
        3, check=non_negative, defines_run=False, help="samples written to samples.txt"
    )
    # Python-only knobs.
    beta2: float = 0.99
    eval_batch_size: int = 64
    sample_length: int | None = None

    def check(self) -> None:
        if self.weight_decay is None:
            self.weight_decay = DEFAULT_WEIGHT_DECAY.get(self.preset, 0.1)
        warmup_steps_to_fraction(self)
        evaluation_period(self.steps, self.eval_interval)
        if self.eval_batch_size <= 0:
            raise ValueError(f"eval_batch_size must be > 0; got {self.eval_batch_size}.")
