"""The fine-tuning budget rule: steps, batch, learning rate, warm-up and early stopping from the
number of labelled examples and the kind of start, never from the dev set.

Fixed epoch counts fail at both ends: three epochs of 100 labels are a dozen updates (the
classifier stays at the majority class), three epochs of all SST-2 are thousands. The rule
gives small sets a floor of updates and large sets a ceiling of passes, and holds out a slice
of the training labels whose accuracy picks the weights kept and the stopping point.
`tfpretrain finetune` uses it when `--epochs` / `--learning-rate` are not given, and
`tfpretrain textbench` always does.
"""

from __future__ import annotations

import dataclasses
import math

MIN_STEPS = 300  # 100 labels still get a few hundred updates
TARGET_STEPS = 2000  # mid-sized sets: about this many, within the pass limits below
MIN_PASSES, MAX_PASSES = 3, 20  # large sets: at least 3 passes; small ones: at most 20 ...
ROUNDS = 20  # ... unless MIN_STEPS asks for more; evaluations on the held-out slice
PATIENCE = 5  # rounds without a better held-out accuracy before stopping
# Accuracy, not loss: small label sets overfit in confidence (held-out loss rises) long before
# they overfit in accuracy, and the best-loss weights are those of an early round that still
# answers the majority class.
MONITOR = "val_accuracy"
HELD_OUT_FRACTION, MIN_HELD_OUT, MAX_HELD_OUT = 0.1, 20, 1000
WARMUP_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class FinetuneBudget:
    """What the rule chose; `to_dict()` is recorded in the run's config.json."""

    labels: int  # labelled examples given, held-out slice included
    held_out: int  # of them, kept for early stopping
    batch_size: int
    steps: int  # the most steps; early stopping may end sooner
    rounds: int  # evaluations of the held-out slice (Keras epochs)
    steps_per_round: int
    patience: int
    learning_rate: float
    warmup_steps: int
    monitor: str = MONITOR  # the held-out value that keeps the best weights and stops early

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def learning_rate_for(pretrained: bool, width: int) -> float:
    """Peak AdamW learning rate by start: published fine-tuning rates for BERT-family encoders
    fall with width (ELECTRA-Small 3e-4, MiniLM/BERT-Small 1e-4, BERT-Base 5e-5 or less);
    a randomly initialised encoder has nothing to keep and takes a larger step."""
    if not pretrained:
        return 5e-4
    if width <= 256:
        return 3e-4
    return 1e-4 if width <= 512 else 5e-5


def held_out_count(labels: int) -> int:
    """Labels kept aside for early stopping: 10%, at least 20, at most 1,000, never over a
    quarter of the set."""
    wanted = min(MAX_HELD_OUT, max(MIN_HELD_OUT, round(HELD_OUT_FRACTION * labels)))
    return min(wanted, labels // 4)


def finetune_budget(
    labels: int, *, pretrained: bool, width: int, batch_size: int = 32
) -> FinetuneBudget:
    """The budget for fine-tuning on `labels` examples.

    Args:
        labels: labelled training examples (the held-out slice is taken from them).
        pretrained: False for a randomly initialised encoder.
        width: the encoder's hidden size (sets the learning rate of a pre-trained start).
        batch_size: the largest batch; small sets use a quarter of their examples (at least 8)
            so that one pass is several updates.

    Example:
        >>> b = finetune_budget(100, pretrained=True, width=128)
        >>> (b.held_out, b.batch_size, b.steps, b.learning_rate)
        (20, 20, 300, 0.0003)
    """
    if labels < 8:
        raise ValueError(f"Fine-tuning needs at least 8 labelled examples; got {labels}.")
    held_out = held_out_count(labels)
    train = labels - held_out
    batch = min(batch_size, max(8, train // 4), train)
    per_pass = train // batch
    steps = max(MIN_STEPS, min(MAX_PASSES * per_pass, max(MIN_PASSES * per_pass, TARGET_STEPS)))
    per_round = math.ceil(steps / ROUNDS)
    steps = per_round * ROUNDS
    return FinetuneBudget(
        labels=labels,
        held_out=held_out,
        batch_size=batch,
        steps=steps,
        rounds=ROUNDS,
        steps_per_round=per_round,
        patience=PATIENCE,
        learning_rate=learning_rate_for(pretrained, width),
        warmup_steps=int(WARMUP_FRACTION * steps),
    )


def rounds_for(steps: int) -> tuple[int, int]:
    """(rounds, steps per round) covering at least `steps`: at most `ROUNDS` evaluations and
    checkpoints, however few examples one pass holds (100 labels are 3 steps a pass)."""
    rounds = max(1, min(ROUNDS, steps))
    return rounds, math.ceil(steps / rounds)


def passes_for(labels: int, batch_size: int) -> int:
    """Passes over all `labels` for trainers without the held-out slice (the count baseline,
    text-to-text fine-tuning): the rule's step count, in whole passes of `batch_size`."""
    budget = finetune_budget(max(labels, 8), pretrained=True, width=0, batch_size=batch_size)
    return max(1, math.ceil(budget.steps / max(1, labels // batch_size)))
