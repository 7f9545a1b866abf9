import json
import subprocess
import sys

import pytest

from tfpretrain.recipes.report import collect, find_metrics, markdown


def _run(root, name, metrics, config=None):
    path = root / name
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(metrics))
    if config is not None:
        (path / "config.json").write_text(json.dumps({"run": config}))
    return path


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    mlm = _run(root, "mlm", {"train_seconds": 500.0, "final_loss": 3.0})
    _run(
        root,
        "vsm",
        {"init": "vsm", "accuracy": 0.80, "f1": 0.81, "train_seconds": 60.0},
        {"init": "vsm"},
    )
    _run(
        root,
        "ft_mlm",
        {"init": "mlm", "accuracy": 0.83, "f1": 0.84, "train_seconds": 100.0},
        {"init": str(mlm)},
    )
    electra = root / "electra"
    _run(root, "electra", {"train_seconds": 400.0}).joinpath("config.json").write_text(
        json.dumps({"run": {}, "generator": {"num_layers": 1}})
    )
    student = _run(root, "student", {"train_seconds": 300.0}, {"teacher": "minilm", "steps": 8})
    for name, start in (("ft_electra", electra), ("ft_student", student)):
        _run(
            root, name, {"init": "mlm", "accuracy": 0.8, "train_seconds": 9.0}, {"init": str(start)}
        )
    _run(
        root,
        "t5",
        {"init": "scratch", "exact_match": 0.6, "accuracy": 0.6, "f1": 0.6, "train_seconds": 9.0},
    )
    _run(
        root,
        "t5_span",
        {"init": "seq2seq", "exact_match": 0.7, "accuracy": 0.7, "f1": 0.7, "train_seconds": 9.0},
    )
    _run(
        root,
        "distil",
        {
            "student_accuracy": 0.85,
            "student_f1": 0.86,
            "teacher_accuracy": 0.88,
            "baseline_student_accuracy": 0.82,
            "student_params": 10,
            "speedup": 2.5,
            "distill_seconds": 40.0,
            "teacher_labelling_seconds": 5.0,
        },
    )
    _run(
        root,
        "gan",
        {
            "frechet_distance": [9.0, 5.0],
            "linear_probe_accuracy": 0.98,
            "random_init_probe_accuracy": 0.95,
            "fine_tune": {"100": {"accuracy": 0.7}},
            "pretrain_seconds": 300.0,
        },
    )
    _run(
        root,
        "eval",
        {
            "results": {
                "scratch": {"100": {"accuracy": 0.6}, "linear_probe": {"accuracy": 0.9}},
                "simclr": {"100": {"accuracy": 0.8}, "all": {"accuracy": 0.99}},
            }
        },
    )
    (root / "gan" / "checkpoints").mkdir()
    (root / "gan" / "checkpoints" / "metrics.json").write_text("{}")  # not a run: ignored
    return root


def test_collects_every_kind_of_run(runs):
    assert len(find_metrics([runs])) == 12
    report = collect([runs])
    images, text = report["images"], report["text"]
    assert images["gan"]["linear_probe"] == 0.98 and images["gan"]["100"] == 0.7
    assert images["gan (random init)"]["linear_probe"] == 0.95
    assert images["scratch"] == {"100": 0.6, "linear_probe": 0.9}
    assert images["simclr"]["all"] == 0.99
    mlm = text["own masked LM (ft_mlm)"]
    assert mlm["vs_vsm"] == pytest.approx(0.03) and mlm["pretrain_seconds"] == 500.0
    # finetune calls every encoder run 'mlm'; the report names the command that wrote it.
    assert text["own ELECTRA (ft_electra)"]["pretrain_seconds"] == 400.0
    assert text["distilled student (ft_student)"]["pretrain_seconds"] == 300.0
    assert text["distilled student (distil)"]["vs_vsm"] == pytest.approx(0.05)
    assert text["distilled student (distil)"]["finetune_seconds"] == 45.0  # labelling + training
    assert text["student without teacher (distil)"]["accuracy"] == 0.82
    assert text["vector-space baseline (vsm)"]["vs_vsm"] == 0.0
    assert text["scratch encoder-decoder (t5)"]["vs_vsm"] == pytest.approx(-0.2)
    assert text["own span corruption (t5_span)"]["accuracy"] == 0.7


def test_markdown_and_cli(runs, tmp_path):
    table = markdown(collect([runs]))
    assert "| gan | 98.0% | 70.0% | – | – | 300 s |" in table
    assert "| own masked LM (ft_mlm) | 83.0% | 84.0% | +3.0 points | 500 s | 100 s |" in table
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "tfpretrain.cli.main", "report", str(runs), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "report.md").read_text().strip() == table.strip()
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "report.json").read_text())["images"]["simclr"]["100"] == 0.8


def test_missing_path_is_an_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfpretrain.cli.main",
            "report",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "neither a run directory" in result.stderr


def test_settings_need_runs_and_the_command_line_gives_them(tmp_path, monkeypatch):
    from tfpretrain.cli.main import main
    from tfpretrain.recipes import report

    with pytest.raises(ValueError, match="at least one run directory"):
        report.ReportRun(runs=[], out_dir=str(tmp_path))
    seen = []
    monkeypatch.setattr(report, "run", lambda cfg: seen.append(cfg) or {"images": {}, "text": {}})
    assert main(["report", "a", "b", "--out", str(tmp_path)]) == 0
    assert seen[0].runs == ["a", "b"] and seen[0].out_dir == str(tmp_path)


def test_label_budget_curves_come_from_textbench_runs_not_their_cells(tmp_path):
    from tfpretrain.recipes.report import run
    from tfpretrain.settings.report import ReportRun

    root = tmp_path / "runs"
    cell = {
        "labels": 100,
        "seeds": 3,
        "accuracy": 0.594,
        "accuracy_std": 0.039,
        "accuracy_per_seed": [0.55, 0.61, 0.62],
        "f1": 0.5,
    }
    bench = {
        "starts": {"scratch": "scratch", "mlm": "runs/mlm"},
        "results": {
            "scratch": {"100": {**cell, "accuracy": 0.515}, "all": {**cell, "labels": 67349}},
            "mlm": {
                "100": cell,
                "all": {**cell, "labels": 67349, "accuracy": 0.79, "accuracy_per_seed": [0.79]},
            },
        },
    }
    _run(root, "bench", bench)
    # Its fine-tuning cells are finetune run directories; they must not become rows.
    _run(root / "bench" / "cells" / "mlm" / "100", "seed0", {"init": "mlm", "accuracy": 0.5})
    _run(root, "ft", {"init": "scratch", "accuracy": 0.7, "f1": 0.7})
    report = collect([root])
    assert report["images"] == {}
    assert list(report["text"]) == ["scratch (ft)"]
    assert report["text_budgets"] == bench["results"]
    table = markdown(report)
    assert "| start (label budget) | 100 labels | all labels |" in table
    assert "| mlm | 59.4 ± 3.9 | 79.0 |" in table
    assert "| scratch | 51.5 ± 3.9 |" in table
    report = run(ReportRun(runs=[str(root)], out_dir=str(tmp_path / "report")))
    assert (tmp_path / "report" / "label_curves.png").stat().st_size > 1000
