"""`tfpretrain textbench` on a tiny synthetic task with two starts."""

import json

import numpy as np
import pytest

from tfpretrain.cli.main import main
from tfpretrain.recipes.textbench import start_names, summarise
from tfpretrain.settings.textbench import TextbenchRun

GOOD = ["great", "wonderful", "good", "lovely", "superb"]
BAD = ["awful", "terrible", "bad", "boring", "dreadful"]
THINGS = ["the film", "this movie", "the plot", "the cast", "its story"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("textbench")

    def rows(labels):
        return "sentence\tlabel\n" + "".join(
            f"{rng.choice(THINGS)} is {rng.choice(GOOD if y else BAD)} .\t{y}\n" for y in labels
        )

    (root / "task.tsv").write_text(rows([0] * 90 + [1] * 30))
    (root / "task.dev.tsv").write_text(rows([0] * 30 + [1] * 30))
    argv = [
        "textbench",
        "--task",
        str(root / "task.tsv"),
        "--init",
        "scratch",
        "--init",
        "vsm",
        "--labels",
        "40",
        "all",
        "--seeds",
        "0",
        "1",
        "--seeds-up-to",
        "40",
        "--preset",
        "tiny",
        "--seq-len",
        "16",
        "--out",
        str(root / "bench"),
    ]
    assert main(argv) == 0
    return root, argv


def test_metrics_table_and_curve(bench):
    root, _ = bench
    out = root / "bench"
    metrics = json.loads((out / "metrics.json").read_text())
    results = metrics["results"]
    assert set(results) == {"scratch", "vsm"} and set(results["scratch"]) == {"40", "all"}
    few, full = results["scratch"]["40"], results["scratch"]["all"]
    assert few["seeds"] == 2 and full["seeds"] == 1  # one seed above --seeds-up-to
    assert (few["labels"], full["labels"]) == (40, 120)
    assert few["accuracy"] == pytest.approx(np.mean(few["accuracy_per_seed"]))
    assert few["accuracy_std"] == pytest.approx(np.std(few["accuracy_per_seed"]))
    # Each seed drew its own class-balanced 40 labels and was fine-tuned by the budget rule.
    for seed in (0, 1):
        cell = json.loads((out / f"cells/scratch/40/seed{seed}/config.json").read_text())
        assert cell["budget"]["labels"] == 40 and cell["run"]["seed"] == seed
    assert full["accuracy"] > 0.8 and results["vsm"]["all"]["accuracy"] > 0.8  # dev is 50/50
    table = (out / "table.md").read_text()
    assert "| start | 40 labels | all labels |" in table and "## dev f1" in table
    line = next(row for row in table.splitlines() if row.startswith("| scratch |"))
    assert f"{100 * few['accuracy']:.1f} ± {100 * few['accuracy_std']:.1f}" in line
    assert (out / "curve.png").stat().st_size > 1000


def test_an_interrupted_benchmark_resumes_without_rerunning_finished_cells(bench):
    root, argv = bench
    out = root / "bench"
    cells = sorted(out.glob("cells/*/*/*/metrics.json"))
    assert len(cells) == 6  # 2 starts x (2 seeds at 40 + 1 at all)
    stamps = [p.stat().st_mtime_ns for p in cells]
    before = json.loads((out / "metrics.json").read_text())["results"]
    (out / "metrics.json").unlink()  # as if stopped before the summary
    assert main(argv) == 0
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    assert json.loads((out / "metrics.json").read_text())["results"] == before


def test_names_summaries_and_settings():
    assert start_names(["scratch", "runs/mlm", "other/mlm", "vsm"]) == {
        "scratch": "scratch",
        "mlm": "runs/mlm",
        "mlm (3)": "other/mlm",
        "vsm": "vsm",
    }
    summary = summarise([{"accuracy": 0.5, "f1": 0.4}, {"accuracy": 0.7, "f1": 0.6}], 100)
    assert summary["accuracy"] == pytest.approx(0.6) and summary["f1_std"] == pytest.approx(0.1)
    assert TextbenchRun(inits=["scratch"], out_dir="o").labels == [100, 1000, 10000, None]
    with pytest.raises(ValueError, match="at least one start"):
        TextbenchRun(inits=[], out_dir="o")


def test_a_finished_benchmark_rerun_says_so_and_lists_nothing_written(bench, capsys):
    root, argv = bench
    out = root / "bench"
    assert (out / "metrics.json").exists()
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "holds a finished run with these settings" in printed
    assert "Wrote" not in printed
