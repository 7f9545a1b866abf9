"""`finetune` with only --task, --init and --limit-train: the budget rule's defaults."""

import json

import numpy as np
import pytest

from tfpretrain.cli.main import main

GOOD = ["great", "wonderful", "good", "lovely", "superb"]
BAD = ["awful", "terrible", "bad", "boring", "dreadful"]
THINGS = ["the film", "this movie", "the plot", "the cast", "its story", "the ending"]


def sentence(rng, label: int) -> str:
    word = rng.choice(GOOD if label else BAD)
    return f"{rng.choice(THINGS)} is {word} and {rng.choice(THINGS)} feels {word} ."


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """400 training rows, 3 in 4 negative; a dev set 70% negative (the majority's accuracy)."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("budget")
    train = [(sentence(rng, y), y) for y in [0] * 300 + [1] * 100]
    dev = [(sentence(rng, y), y) for y in [0] * 70 + [1] * 30]
    for name, rows in (("task.tsv", train), ("task.dev.tsv", dev)):
        (root / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows))
    return root


def test_defaults_beat_the_majority_class_at_100_labels(task):
    out = task / "ft"
    assert (
        main(
            [
                "finetune",
                "--task",
                str(task / "task.tsv"),
                "--init",
                "scratch",
                "--limit-train",
                "100",
                "--out",
                str(out),
                "--preset",
                "tiny",
                "--seq-len",
                "16",
                "--no-export",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    budget = json.loads((out / "config.json").read_text())["budget"]
    assert budget == {
        "labels": 100,
        "held_out": 20,
        "batch_size": 20,
        "steps": 300,
        "rounds": 20,
        "steps_per_round": 15,
        "patience": 5,
        "learning_rate": 5e-4,
        "warmup_steps": 30,
        "monitor": "val_accuracy",
    }
    assert metrics["held_out_examples"] == 20 and metrics["learning_rate"] == 5e-4
    assert metrics["steps_trained"] <= 300
    assert metrics["accuracy"] > 0.85  # the majority class scores 0.70
    assert min(c["recall"] for c in metrics["per_class"].values()) > 0.5  # both classes
