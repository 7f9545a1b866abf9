"""PNG figures written by the CLI commands (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_rows(rows: Sequence[np.ndarray], path, titles: Sequence[str] | None = None) -> Path:
    """Saves a grid with one row per array of images (`[N, H, W]` or `[N, H, W, 1]`)."""
    plt = _pyplot()
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.0, len(rows) * 1.1), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(row):
                ax.imshow(np.squeeze(np.asarray(row[j])), cmap="gray", vmin=0.0, vmax=1.0)
        if titles:
            axes[i][0].set_title(titles[i], fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def loss_curves(
    history: dict[str, Sequence[float]],
    path,
    keys: Sequence[str] = ("loss", "val_loss"),
    xlabel: str = "epoch",
    ylabel: str = "loss",
) -> Path:
    """Saves the curves named by `keys` from a Keras `History.history` dict."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        if key in history and len(history[key]):
            ax.plot(
                np.arange(1, len(history[key]) + 1),
                history[key],
                marker="o",
                markersize=3,
                label=key,
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def embedding_scatter(
    features: np.ndarray,
    labels: np.ndarray,
    path,
    title: str = "test embeddings (PCA)",
    max_points: int = 5000,
) -> Path:
    """Saves the first two principal components of `features` `[N, F]`, coloured by integer
    label; more than `max_points` rows are drawn down to that many (seed 0)."""
    plt = _pyplot()
    features, labels = np.asarray(features), np.asarray(labels).ravel()
    if len(features) > max_points:  # a seeded draw: the first rows may be the first classes only
        rows = np.sort(np.random.default_rng(0).choice(len(features), max_points, replace=False))
        features, labels = features[rows], labels[rows]
    features = features.astype(np.float64)
    centred = features - features.mean(0)
    # The top right-singular vectors are the principal directions.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.7)
    ax.legend(*scatter.legend_elements(), title="class", fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def label_curves(
    results: dict[str, dict[str, dict]], path, metric: str = "accuracy", title: str = ""
) -> Path:
    """Saves `metric` against the number of labels, one line per start, with the spread over
    seeds as error bars. `results` is `{start: {budget: {"labels", metric, metric + "_std"}}}`
    (the `textbench` metrics); the x axis is logarithmic."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for start, row in results.items():
        cells = sorted(row.values(), key=lambda c: c["labels"])
        ax.errorbar(
            [c["labels"] for c in cells],
            [100 * c[metric] for c in cells],
            yerr=[100 * c.get(f"{metric}_std", 0.0) for c in cells],
            marker="o",
            markersize=4,
            capsize=3,
            label=start,
        )
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel(f"dev {metric} (%)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
