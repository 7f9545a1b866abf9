"""`tfpretrain electra` end to end: the run directory, the loss falling, `finetune --init`."""

import json

import numpy as np
import pytest

from tfpretrain.cli.main import main
from tfpretrain.settings.electra import ElectraRun

SUBJECTS = ["the cat", "a dog", "my bird", "the horse", "a fish", "the cow"]
VERBS = ["eats", "sees", "likes", "chases", "finds"]
OBJECTS = ["the grass", "a ball", "some seeds", "the river", "a stone", "the moon"]


@pytest.fixture(scope="module")
def electra_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("electra")
    lines = [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(600)
    ]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    rows = ["sentence\tlabel"]
    for i in range(120):
        word = rng.choice(["great", "good"] if i % 2 else ["awful", "bad"])
        rows.append(f"{rng.choice(SUBJECTS)} is {word} .\t{i % 2}")
    (root / "task.tsv").write_text("\n".join(rows) + "\n")
    assert (
        main(
            [
                "electra",
                "--corpus",
                str(root / "corpus.txt"),
                "--out",
                str(root / "run"),
                "--preset",
                "tiny",
                "--vocab-size",
                "200",
                "--steps",
                "60",
                "--epochs",
                "3",
                "--batch-size",
                "16",
                "--seq-len",
                "32",
                "--learning-rate",
                "2e-3",
                "--steps-per-execution",
                "10",
                "--validation-fraction",
                "0.2",
            ]
        )
        == 0
    )
    return root


def test_electra_writes_a_run_directory_and_its_losses_fall(electra_run):
    run = electra_run / "run"
    for name in ("vocab.txt", "encoder.keras", "electra.keras", "loss.png", "history.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert metrics["steps"] == 60
    assert history["mlm_loss"][-1] < history["mlm_loss"][0] - 0.5
    assert history["rtd_loss"][-1] < history["rtd_loss"][0]
    assert metrics["loss"] == pytest.approx(
        metrics["mlm_loss"] + 50 * metrics["rtd_loss"], rel=0.02
    )
    config = json.loads((run / "config.json").read_text())
    assert config["generator"] == {"layers": 1, "intermediate_dim": 128}


def test_finetune_starts_from_an_electra_run(electra_run):
    out = electra_run / "ft"
    assert (
        main(
            [
                "finetune",
                "--task",
                str(electra_run / "task.tsv"),
                "--init",
                str(electra_run / "run"),
                "--out",
                str(out),
                "--seq-len",
                "16",
                "--limit-train",
                "60",
                "--no-export",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"] == "mlm" and metrics["learning_rate"] == 3e-4  # pre-trained, 128 wide
    assert 0 <= metrics["accuracy"] <= 1


def test_electra_settings_refuse_nsp_and_export():
    with pytest.raises(ValueError, match="no next-sentence prediction"):
        ElectraRun(corpus="c.txt", out_dir="o", nsp=True)
    with pytest.raises(ValueError, match="writes no SavedModel"):
        ElectraRun(corpus="c.txt", out_dir="o", export=True)
