import pytest

from tfpretrain.training.budget import (
    finetune_budget,
    held_out_count,
    learning_rate_for,
    passes_for,
    rounds_for,
)


@pytest.mark.parametrize(
    "labels, held, batch, steps, per_round",
    [
        # 100: 20 held out, 80 left in batches of 80 // 4 = 20 (4 a pass); the 300-step floor.
        (100, 20, 20, 300, 15),
        # 1,000: 900 left, 28 batches of 32 a pass; at most 20 passes = 560 steps.
        (1000, 100, 32, 560, 28),
        # 10,000: 9,000 left, 281 a pass; 2,000 steps lie between 3 and 20 passes.
        (10000, 1000, 32, 2000, 100),
        # All SST-2: 66,349 left, 2,073 a pass; 3 passes = 6,219, rounded up to 20 rounds of 311.
        (67349, 1000, 32, 6220, 311),
    ],
)
def test_the_rule_for_each_label_budget(labels, held, batch, steps, per_round):
    budget = finetune_budget(labels, pretrained=True, width=256)
    assert (budget.held_out, budget.batch_size, budget.steps) == (held, batch, steps)
    assert budget.steps_per_round == per_round and budget.rounds * per_round == steps
    assert budget.warmup_steps == steps // 10 and budget.patience == 5
    assert budget.monitor == "val_accuracy"  # kept weights: best held-out accuracy


def test_learning_rate_follows_the_start():
    assert learning_rate_for(False, 128) == 5e-4
    assert [learning_rate_for(True, w) for w in (128, 256, 384, 768)] == [3e-4, 3e-4, 1e-4, 5e-5]
    assert finetune_budget(100, pretrained=False, width=128).learning_rate == 5e-4


def test_held_out_slice_and_passes():
    assert [held_out_count(n) for n in (40, 100, 500, 50000)] == [10, 20, 50, 1000]
    assert passes_for(100, 32) == 100  # 300 steps of 3 batches
    assert passes_for(67349, 32) == 3  # ceil(6,220 / 2,104): the rule's steps, no slice
    # Text-to-text runs those steps as at most 20 evaluated rounds, whatever a pass holds.
    assert rounds_for(300) == (20, 15) and rounds_for(301) == (20, 16) and rounds_for(7) == (7, 1)
    with pytest.raises(ValueError, match="at least 8 labelled examples"):
        finetune_budget(5, pretrained=True, width=128)
