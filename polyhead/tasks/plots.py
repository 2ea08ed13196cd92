"""Each kind's picture of its metrics: a confusion matrix, predicted against true values, per-label F1.

Figures are pyplot-free (Agg canvases), so plotting changes nothing global and needs no display.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure(size: tuple[float, float], dpi: int = 100, **subplots: Any) -> tuple[Figure, Any]:
    """A pyplot-free Agg figure: nothing global changes and no display is needed."""
    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


def confusion_matrix(task: str, metrics: Mapping[str, Any], source: str) -> Figure:
    """Confusion matrix, coloured by share of each true class; sized and lettered for up to ~50 classes."""
    labels = [name if len(name) <= 24 else name[:23] + "…" for name in metrics["labels"]]
    counts = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    n = len(labels)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    side = min(max(3.0 + 0.3 * n, 4.5), 18.0)
    font = 9 if n <= 10 else 7 if n <= 25 else 6
    fig, ax = figure((side + 1.2, side), dpi=120 if n > 25 else 100)  # small counts need the pixels
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colorbar.set_label("share of the true class", fontsize=font + 1)
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 else 45, ha="center" if n > 10 else "right", fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted", fontsize=font + 2)
    ax.set_ylabel("true", fontsize=font + 2)
    ax.set_title(f"{task}: accuracy {metrics['accuracy']:.3f}\nconfusion matrix, {source}", fontsize=font + 3)
    cell_font = 8 if n <= 10 else 6 if n <= 25 else 5
    for i in range(n):
        for j in range(n):
            if counts[i, j] or n <= 20:  # many classes: only the non-zero cells, or the numbers drown the picture
                color = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=cell_font, color=color)
    return fig


def predicted_vs_true(task: str, metrics: Mapping[str, Any], source: str) -> Figure:
    """One scatter per target of (true, predicted) with the identity line: bias and spread at a glance."""
    targets = metrics["per_target"]
    fig, axes = figure((4.2 * len(targets) + 0.4, 4.2), ncols=len(targets), squeeze=False)
    for ax, (name, values) in zip(axes[0], targets.items()):
        points = np.asarray(values["points"], dtype=float).reshape(-1, 2)
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.5)
        low, high = float(points.min()), float(points.max())
        ax.plot([low, high], [low, high], color="grey", linewidth=1, linestyle="--")
        ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}",
               title=f"{task}: {name}\nSpearman {values['spearman']:.3f}, RMSE {values['rmse']:.3g} ({source})")
        ax.grid(alpha=0.3)
    return fig


def per_label_f1(task: str, metrics: Mapping[str, Any], source: str) -> Figure:
    """Horizontal bars of each label's F1, with its support, most frequent label on top."""
    rows = sorted(metrics["per_class"].items(), key=lambda item: -item[1]["support"])
    fig, ax = figure((7, max(2.5, 0.28 * len(rows) + 1.2)))
    names = [f"{name} ({row['support']})" for name, row in rows]
    ax.barh(range(len(rows)), [row["f1"] for _, row in rows], color="C0")
    ax.set_yticks(range(len(rows)), names, fontsize=7 if len(rows) > 20 else 9)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="F1 (support in brackets)",
           title=f"{task}: micro-F1 {metrics['micro_f1']:.3f}, macro-F1 {metrics['macro_f1']:.3f} ({source})")
    ax.grid(alpha=0.3, axis="x")
    return fig
