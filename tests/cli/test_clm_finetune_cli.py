"""`finetune --init CLM_RUN`: a classification head on a `tfpretrain clm` GPT."""

import json

import numpy as np

from tfpretrain.cli.main import main


def test_finetune_puts_a_head_on_a_clm_run(tmp_path):
    rng = np.random.default_rng(0)
    words = {0: ["awful", "bad", "dull"], 1: ["great", "good", "fine"]}
    lines = [f"the film is {rng.choice(words[i % 2])} ." for i in range(400)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n")
    rows = "".join(f"the film is {rng.choice(words[y])} .\t{y}\n" for y in [0, 1] * 40)
    (tmp_path / "task.tsv").write_text("sentence\tlabel\n" + rows)
    assert (
        main(
            [
                "clm",
                "--corpus",
                str(tmp_path / "corpus.txt"),
                "--out",
                str(tmp_path / "gpt"),
                "--preset",
                "nano",
                "--seq-len",
                "32",
                "--batch-size",
                "8",
                "--steps",
                "20",
                "--eval-interval",
                "10",
                "--num-samples",
                "0",
                "--no-export",
            ]
        )
        == 0
    )
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--task",
                str(tmp_path / "task.tsv"),
                "--init",
                str(tmp_path / "gpt"),
                "--out",
                str(out),
                "--seq-len",
                "24",
                "--limit-train",
                "60",
                "--no-export",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"] == "clm" and metrics["learning_rate"] == 3e-4  # 128 wide
    assert metrics["accuracy"] > 0.8  # the word decides; the GPT's last token reads it
    assert (
        main(
            [
                "finetune",
                "--task",
                str(tmp_path / "task.tsv"),
                "--init",
                str(tmp_path / "gpt"),
                "--out",
                str(tmp_path / "long"),
                "--seq-len",
                "100",
                "--limit-train",
                "60",
                "--no-export",
            ]
        )
        == 2
    )
