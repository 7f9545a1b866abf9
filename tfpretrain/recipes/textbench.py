"""`tfpretrain textbench`: the label-budget protocol for text, the counterpart of `evaluate`.

Every start is fine-tuned by `finetune` itself on each budget of labels, so the protocol and
the command share one rule (`training.budget`): class-balanced seeded draws, steps and learning
rate from the label count and the start, early stopping on held-out training labels. Each cell
is a finetune run directory (`OUT/cells/START/LABELS/seedS`): a finished one returns its metrics
without training again, so an interrupted benchmark picks up where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfpretrain.evaluate import markdown_table
from tfpretrain.plots import label_curves
from tfpretrain.recipes.finetune import run as finetune
from tfpretrain.settings.finetune import FinetuneRun
from tfpretrain.settings.textbench import TextbenchRun
from tfpretrain.training import run_directory, write_json


def start_names(inits: list[str]) -> dict[str, str]:
    """`{name: init}`: 'scratch' and 'vsm' as they are, a directory by its folder name, a
    repeated name with its position."""
    names: dict[str, str] = {}
    for i, init in enumerate(inits):
        name = init if init in ("scratch", "vsm") else Path(init).name or init
        names[name if name not in names else f"{name} ({i + 1})"] = init
    return names


def budget_name(labels: int | None) -> str:
    return "all" if labels is None else str(labels)


def summarise(per_seed: list[dict], labels: int) -> dict:
    """Mean, standard deviation (ddof 0: the spread of these seeds) and per-seed values of
    accuracy and F1 for one cell of the table."""
    summary: dict = {"labels": labels, "seeds": len(per_seed)}
    for metric in ("accuracy", "f1"):
        values = [float(m[metric]) for m in per_seed]
        summary.update(
            {
                metric: float(np.mean(values)),
                f"{metric}_std": float(np.std(values)),
                f"{metric}_per_seed": values,
            }
        )
    return summary


def cell_settings(
    cfg: TextbenchRun, init: str, labels: int | None, seed: int, out_dir: Path
) -> FinetuneRun:
    """One finetune run of the protocol: only the budget rule chooses the training."""
    return FinetuneRun(
        task=cfg.task,
        init=init,
        out_dir=str(out_dir),
        seed=seed,
        limit_train=labels,
        preset=cfg.preset,
        seq_len=cfg.seq_len,
        batch_size=cfg.batch_size,
        vocab_size=cfg.vocab_size,
        strategy=cfg.strategy,
        precision=cfg.precision,
        xla=cfg.xla,
        export=False,
        verbose=0,
        tensorboard=False,
    )


@run_directory
def run(cfg: TextbenchRun) -> dict:
    """Runs (or resumes) every cell; writes `metrics.json`, `table.md` and `curve.png`.

    Returns:
        What `metrics.json` holds (a finished run's rerun returns it unchanged): `results`,
        `{start: {budget: summary}}` with budgets named "100", ..., "all" and a summary's
        `labels` (the examples actually used), `seeds`, and `accuracy`, `f1` with `_std` and
        `_per_seed`; `starts`, `{name: init}`; `run`, the settings.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    starts = start_names(cfg.inits)
    for name, init in starts.items():
        row = {}
        for labels in cfg.labels:
            few = labels is not None and labels <= cfg.seeds_up_to
            seeds = cfg.seeds if few else cfg.seeds[:1]
            cells = [
                finetune(
                    cell_settings(
                        cfg,
                        init,
                        labels,
                        seed,
                        out / "cells" / name / budget_name(labels) / f"seed{seed}",
                    )
                )
                for seed in seeds
            ]
            used = int(cells[0]["train_examples"])
            row[budget_name(labels)] = summarise(cells, used)
        results[name] = row
        metrics = {"results": results, "starts": starts, "run": dataclasses.asdict(cfg)}
        write_json(out / "metrics.json", metrics)  # each start's end
    table = "\n".join(
        f"## dev {metric}\n\n" + markdown_table(results, metric, first="start")
        for metric in ("accuracy", "f1")
    )
    (out / "table.md").write_text(table)
    label_curves(results, out / "curve.png", title=cfg.task)
    return metrics
