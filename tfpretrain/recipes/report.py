"""One comparison of every method: read the `metrics.json` of runs, write markdown tables and
bar plots.

Recognised run directories (by the keys of their `metrics.json`):

- `tfpretrain evaluate`: `results` = {encoder: {"100", "1000", "all", "linear_probe": metrics}};
- `tfpretrain gan`: `frechet_distance` plus probe and few-label accuracies;
- `tfpretrain simclr`: `final_contrastive_accuracy` plus `linear_probe_accuracy`;
- `tfpretrain finetune` (any `--init`, `vsm` included): `init` plus dev `accuracy`;
- `tfpretrain distill`: `student_accuracy`, `teacher_accuracy`;
- `tfpretrain textbench`: `starts` and `results` = {start: {budget: accuracy, F1 and spread}},
  the label-budget curves (its fine-tuning cells under `cells/` are part of it, not rows).

Text rows are compared with the vector-space baseline (`--init vsm`) when one is among the runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from tfpretrain.settings.report import ReportRun
from tfpretrain.training import write_json

IMAGE_COLUMNS = ("linear_probe", "100", "1000", "all")
IMAGE_HEADERS = ("linear probe", "100 labels", "1,000 labels", "all labels")


def find_metrics(paths) -> list[Path]:
    """Every `metrics.json` in the given run directories or below the given folders (sorted)."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_file() and path.name == "metrics.json":
            found.add(path)
        elif (path / "metrics.json").is_file():
            found.add(path / "metrics.json")
        elif path.is_dir():
            found.update(p for p in path.rglob("metrics.json") if "checkpoints" not in p.parts)
        else:
            raise FileNotFoundError(
                f"{path} is neither a run directory nor a folder holding run directories."
            )
    return sorted(found)


def _seconds(metrics: dict, *keys) -> float | None:
    for key in keys:
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    return None


def _pretrain_seconds(init: str) -> float | None:
    """Training time of the run a fine-tuning started from, when that run wrote it."""
    path = Path(init) / "metrics.json"
    if path.is_file():
        return _seconds(json.loads(path.read_text()), "train_seconds", "pretrain_seconds")
    return None


def _encoder_family(init: str) -> str:
    """The command that wrote an encoder run (`finetune` calls all of them kind 'mlm'), told
    apart by what each records in its config.json."""
    path = Path(init) / "config.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if "generator" in saved:
        return "own ELECTRA"
    if "teacher" in saved.get("run", {}):
        return "distilled student"
    return "own masked LM"


def _text_name(metrics: dict, run_dir: Path, init_path: str = "") -> str:
    init = metrics.get("init", "?")
    names = {
        "vsm": "vector-space baseline",
        "scratch": "scratch",
        "hf-bert": "MiniLM checkpoint",
        "mlm": "own masked LM",
        "seq2seq": "own span corruption",
    }
    name = _encoder_family(init_path) if init == "mlm" else names.get(init, str(init))
    if init == "scratch" and "exact_match" in metrics:  # fine-tuned text to text
        name = "scratch encoder-decoder"
    return f"{name} ({run_dir.name})"


def _is_textbench(metrics: dict) -> bool:
    return isinstance(metrics.get("starts"), dict) and isinstance(metrics.get("results"), dict)


def collect(paths) -> dict:
    """`{"images": {row: {column: accuracy, ...}}, "text": {row: {...}}, "text_budgets":
    {start: {budget: summary}}}` from the runs' metrics."""
    images: dict[str, dict] = {}
    text: dict[str, dict] = {}
    budgets: dict[str, dict] = {}
    files = {file: json.loads(file.read_text()) for file in find_metrics(paths)}
    benches = [file.parent for file, metrics in files.items() if _is_textbench(metrics)]
    for file, metrics in files.items():
        run_dir = file.parent
        if any(bench / "cells" in run_dir.parents for bench in benches):
            continue  # one cell of a label-budget benchmark, reported with it
        if _is_textbench(metrics):  # tfpretrain textbench
            for start, row in metrics["results"].items():
                budgets[start if start not in budgets else f"{start} ({run_dir.name})"] = row
            continue
        config_file = run_dir / "config.json"
        run_cfg = (
            json.loads(config_file.read_text()).get("run", {}) if config_file.is_file() else {}
        )
        if isinstance(metrics.get("results"), dict):  # tfpretrain evaluate
            for encoder, columns in metrics["results"].items():
                row = images.setdefault(encoder, {})
                for column in IMAGE_COLUMNS:
                    if isinstance(columns.get(column), dict) and "accuracy" in columns[column]:
                        row[column] = columns[column]["accuracy"]
        elif "frechet_distance" in metrics and "linear_probe_accuracy" in metrics:  # tfpretrain gan
            row = images.setdefault("gan", {})
            row.setdefault("linear_probe", metrics["linear_probe_accuracy"])
            for labels, scores in (metrics.get("fine_tune") or {}).items():
                row.setdefault(labels, scores["accuracy"])
            row["pretrain_seconds"] = _seconds(metrics, "pretrain_seconds")
            images.setdefault("gan (random init)", {})["linear_probe"] = metrics[
                "random_init_probe_accuracy"
            ]
        elif "final_contrastive_accuracy" in metrics:  # tfpretrain simclr
            row = images.setdefault("simclr", {})
            row.setdefault("linear_probe", metrics["linear_probe_accuracy"])
            row["pretrain_seconds"] = _seconds(metrics, "train_seconds")
        elif "student_accuracy" in metrics:  # tfpretrain distill
            seconds = _seconds(metrics, "distill_seconds")
            if (
                seconds is not None
            ):  # the teacher's labelling pass is part of the distillation's cost
                seconds += _seconds(metrics, "teacher_labelling_seconds") or 0.0
            text[f"distilled student ({run_dir.name})"] = {
                "accuracy": metrics["student_accuracy"],
                "f1": metrics.get("student_f1"),
                "pretrain_seconds": None,
                "finetune_seconds": seconds,
                "params": metrics.get("student_params"),
                "speedup": metrics.get("speedup"),
            }
            if "baseline_student_accuracy" in metrics:
                text[f"student without teacher ({run_dir.name})"] = {
                    "accuracy": metrics["baseline_student_accuracy"],
                    "f1": metrics.get("baseline_student_f1"),
                    "pretrain_seconds": None,
                    "finetune_seconds": _seconds(metrics, "baseline_seconds"),
                    "params": metrics.get("student_params"),
                }
        elif "init" in metrics and "accuracy" in metrics:  # tfpretrain finetune
            text[_text_name(metrics, run_dir, run_cfg.get("init", ""))] = {
                "accuracy": metrics["accuracy"],
                "f1": metrics.get("f1"),
                "init": metrics["init"],
                "pretrain_seconds": _pretrain_seconds(run_cfg.get("init", "")),
                "finetune_seconds": _seconds(metrics, "train_seconds"),
            }
    baseline = next((v["accuracy"] for v in text.values() if v.get("init") == "vsm"), None)
    for row in text.values():
        row["vs_vsm"] = None if baseline is None else row["accuracy"] - baseline
    return {"images": images, "text": text, "text_budgets": budgets}


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _secs(value) -> str:
    return "–" if value is None else f"{value:.0f} s"


def markdown(report: dict) -> str:
    """The two tables, ready for BENCHMARKS.md."""
    lines = []
    if report["images"]:
        lines += [
            "| image encoder | " + " | ".join(IMAGE_HEADERS) + " | pre-training |",
            "|---|" + "---:|" * (len(IMAGE_COLUMNS) + 1),
        ]
        for name, row in report["images"].items():
            cells = [_pct(row.get(c)) for c in IMAGE_COLUMNS] + [_secs(row.get("pretrain_seconds"))]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if report["text"]:
        lines += [
            "| text model (SST-2 dev) | accuracy | F1 | vs vector-space baseline | pre-training "
            "| fine-tuning |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in sorted(report["text"].items(), key=lambda kv: kv[1]["accuracy"]):
            delta = "–" if row["vs_vsm"] is None else f"{100 * row['vs_vsm']:+.1f} points"
            lines.append(
                f"| {name} | {_pct(row['accuracy'])} | {_pct(row.get('f1'))} | {delta} | "
                f"{_secs(row.get('pretrain_seconds'))} | {_secs(row.get('finetune_seconds'))} |"
            )
        lines.append("")
    if report.get("text_budgets"):
        from tfpretrain.evaluate import markdown_table

        lines.append(markdown_table(report["text_budgets"], first="start (label budget)"))
    if not lines:
        lines = ["No recognised runs were found."]
    return "\n".join(lines)


def bar_plot(report: dict, path) -> Path | None:
    """Grouped bars of the image accuracies and bars of the text accuracies (one PNG)."""
    from tfpretrain.plots import _pyplot

    panels = [p for p in ("images", "text") if report[p]]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        rows = report[panel]
        if panel == "images":
            width = 0.8 / len(IMAGE_COLUMNS)
            for j, (column, header) in enumerate(zip(IMAGE_COLUMNS, IMAGE_HEADERS, strict=True)):
                values = [100 * (rows[n].get(column) or 0.0) for n in rows]
                ax.bar([i + j * width for i in range(len(rows))], values, width, label=header)
            ax.set_xticks(
                [i + 0.4 - width / 2 for i in range(len(rows))], list(rows), rotation=20, ha="right"
            )
            ax.set_ylabel("test accuracy (%)")
            ax.legend(fontsize=8)
        else:
            names = sorted(rows, key=lambda n: rows[n]["accuracy"])
            ax.barh(names, [100 * rows[n]["accuracy"] for n in names])
            ax.set_xlabel("SST-2 dev accuracy (%)")
        ax.set_title(panel)
        ax.grid(alpha=0.3, axis="x" if panel == "text" else "y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def run(cfg: ReportRun) -> dict:
    """Writes `report.md`, `report.json`, `comparison.png` and, with label-budget runs,
    `label_curves.png` to `out_dir`; returns the report."""
    report = collect(cfg.runs)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(report) + "\n")
    write_json(out / "report.json", report)
    bar_plot(report, out / "comparison.png")
    if report["text_budgets"]:
        from tfpretrain.plots import label_curves

        label_curves(report["text_budgets"], out / "label_curves.png", title="label budgets")
    return report
