"""`tfpretrain finetune --init vsm`: the count-based vector-space baseline on a text task.

Counts the training sentences (TF-IDF weighted), trains a logistic regression on the sentences'
rows of the count matrix and reports the dev metrics `finetune` reports for pre-trained
encoders, so every pre-trained text model can be compared with it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tfpretrain.recipes.finetune import label_metrics, load_task
from tfpretrain.text.vsm import VectorSpaceModel, predict_classes, train_document_classifier
from tfpretrain.training import record_config, write_json
from tfpretrain.training.budget import passes_for

# Logistic regression on L2-normalised TF-IDF rows wants a far larger step than BERT's 5e-5.
VSM_LEARNING_RATE = 5e-3
PROBE_WORDS = ("good", "bad", "funny", "boring", "film")


def run(cfg) -> dict:
    """Runs the baseline for a `FinetuneRun` whose `init` is `"vsm"`; returns the metrics written.

    Uses `task`, `out_dir`, `epochs`, `batch_size`, `vocab_size` (the vocabulary's maximum size),
    `num_classes`, the task flags, `limit_train` and `seed`; writes `metrics.json`, `vocab.txt`,
    `classifier.weights.h5` and `neighbours.json` (nearest words of a few probe words).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_task(cfg, cfg.num_classes)
    (train_x, train_y), (dev_x, dev_y) = data["train"], data["dev"]
    if data["train_pair"] is not None:  # a bag of words: one bag for both sentences
        train_x = [f"{a} {b}" for a, b in zip(train_x, data["train_pair"], strict=True)]
        dev_x = [f"{a} {b}" for a, b in zip(dev_x, data["dev_pair"], strict=True)]

    # No held-out slice here: the budget rule's steps, as passes over every label.
    epochs = cfg.epochs or passes_for(len(train_x), cfg.batch_size)
    start = time.perf_counter()
    vsm = VectorSpaceModel.from_corpus(list(train_x), max_vocabulary=cfg.vocab_size, tfidf=True)
    count_seconds = time.perf_counter() - start
    model = train_document_classifier(
        vsm,
        list(train_x),
        train_y,
        num_classes=data["num_classes"],
        epochs=epochs,
        batch_size=cfg.batch_size,
        learning_rate=VSM_LEARNING_RATE,
        seed=cfg.seed,
    )
    train_seconds = time.perf_counter() - start

    metrics = label_metrics(dev_y, predict_classes(model, vsm, list(dev_x)), data["class_names"])
    metrics.update(
        {
            "init": "vsm",
            "train_examples": len(train_x),
            "dev_examples": len(dev_x),
            "epochs": epochs,
            "vocabulary_size": len(vsm.vocabulary),
            "count_seconds": count_seconds,
            "train_seconds": train_seconds,
            "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
        }
    )
    neighbours = {w: vsm.nearest(w, k=8) for w in PROBE_WORDS if w in vsm.index}
    (out / "vocab.txt").write_text("\n".join(vsm.vocabulary) + "\n", encoding="utf-8")
    model.save_weights(out / "classifier.weights.h5")
    write_json(out / "neighbours.json", neighbours)
    record_config(out, class_names=data["class_names"])
    write_json(out / "metrics.json", metrics)
    return metrics
