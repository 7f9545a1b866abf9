"""Downstream classification metrics, computed the same way for every family."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """`[K, K]` int64 counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"Need two equally long, non-empty label arrays; got {y_true.shape} and {y_pred.shape}."
        )
    k = num_classes or int(max(y_true.max(), y_pred.max()) + 1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    return confusion


def _per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of each class (0 where undefined: never predicted / present)."""
    k = len(confusion)
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(0).astype(float)
    actual = confusion.sum(1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0
    )
    return precision, recall, f1


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of integer predictions.

    Binary tasks (two classes) report precision, recall and F1 of class 1, as GLUE does for
    SST-2; more classes report their macro averages (a class never predicted has precision 0).

    Args:
        y_true: `[N]` integer labels.
        y_pred: `[N]` integer predictions.
        num_classes: number of classes; inferred from the data when None.

    Returns:
        `{"accuracy", "precision", "recall", "f1"}` as floats.
    """
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1 = _per_class(confusion)
    if len(confusion) == 2:
        p, r, f = precision[1], recall[1], f1[1]
    else:
        p, r, f = precision.mean(), recall.mean(), f1.mean()
    accuracy = np.trace(confusion) / confusion.sum()
    return {"accuracy": float(accuracy), "precision": float(p), "recall": float(r), "f1": float(f)}


def class_report(y_true, y_pred, class_names: Sequence[str]) -> dict:
    """Per-class scores and the confusion matrix, by class name, for metrics.json.

    Returns:
        `{"class_names": [...], "per_class": {name: {"precision", "recall", "f1",
        "support"}}, "confusion_matrix": [[count]]}` (rows true classes, columns predicted,
        both in `class_names` order).
    """
    names = [str(n) for n in class_names]
    confusion = confusion_matrix(y_true, y_pred, len(names))
    precision, recall, f1 = _per_class(confusion)
    support = confusion.sum(1)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {"class_names": names, "per_class": per_class, "confusion_matrix": confusion.tolist()}
