"""Evaluate pre-trained image encoders: fine-tuning with few labels, linear probe, scratch
baseline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from tfpretrain.distribute import get_strategy, set_precision, xla_for_training
from tfpretrain.evaluate import compare, load_encoder, markdown_table
from tfpretrain.recipes.image_data import load_run_images
from tfpretrain.settings.evaluate import EvaluateRun
from tfpretrain.training import run_directory, write_json


@run_directory
def run(cfg: EvaluateRun) -> dict:
    """Writes `out_dir/metrics.json` (`{row: {column: metrics}}`) and `out_dir/table.md`; returns
    the metrics."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_precision(cfg.precision)
    strategy = get_strategy(cfg.strategy)
    keras.utils.set_random_seed(cfg.seed)
    data = load_run_images(cfg, labels_for="evaluate (fine-tuning and probes)")
    data = data.limit(train=cfg.limit_train, test=cfg.limit_test, seed=cfg.seed)
    (x, y), (x_test, y_test) = data.as_tuples()
    for k in cfg.labels:
        if k is not None and k > len(y):
            raise ValueError(
                f"--labels {k} is larger than the training set ({len(y)} images); use at most "
                f"{len(y)} or 'all'."
            )
    with strategy.scope():
        encoders = {}
        for path in cfg.encoders:
            encoder, kind = load_encoder(path)
            name = kind if kind not in encoders else f"{kind} ({Path(path).name})"
            encoders[name] = encoder
        rows = compare(
            encoders,
            (x, y),
            (x_test, y_test),
            label_counts=cfg.labels,
            per_class=cfg.per_class,
            scratch=cfg.scratch,
            probe=cfg.probe,
            seed=cfg.seed,
            epochs=cfg.epochs,
            steps=cfg.steps,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            probe_first=not cfg.random_head,
            jit_compile=xla_for_training(cfg.xla),
        )
    write_json(
        out / "metrics.json",
        {
            "results": rows,
            "encoders": {n: str(p) for n, p in zip(encoders, cfg.encoders, strict=True)},
            "class_names": data.class_names,
            "run": dataclasses.asdict(cfg),
        },
    )
    (out / "table.md").write_text(markdown_table(rows))
    return rows
