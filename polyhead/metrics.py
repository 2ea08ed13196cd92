"""Per-task classification metrics as plain JSON-ready dicts, and their text renderings.

The dict from `classification_metrics` is what the training loop logs to
`metrics.jsonl`, what the run report reads back, and what the CLI prints, so it holds
only built-in types (no numpy scalars) and carries its label names with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

PER_CLASS_HEADERS = ("class", "precision", "recall", "F1", "support")


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro/weighted scores, per-class scores and the confusion matrix of one task.

    Labels are indices into `label_names`. `per_class` and `confusion_matrix` cover every
    declared label (a class never predicted scores 0 precision rather than raising). The
    macro averages span the labels that occur in `y_true` or `y_pred`, as scikit-learn does
    by default, so a class missing from a small evaluation split, and never predicted, does
    not drag the average down with a score it had no chance to earn. `majority_rate` is the
    accuracy of always answering the most frequent true label: the baseline to beat.
    """
    names = [str(name) for name in label_names]
    if not names:
        raise ValueError("label_names is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"label_names has duplicates: {names}")
    true = _label_array(y_true, "y_true", len(names))
    pred = _label_array(y_pred, "y_pred", len(names))
    if len(true) != len(pred):
        raise ValueError(f"y_true has {len(true)} labels but y_pred has {len(pred)}")

    all_labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=all_labels, average=None, zero_division=0
    )
    present = sorted(set(true.tolist()) | set(pred.tolist()))
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        true, pred, labels=present, average="macro", zero_division=0
    )
    weighted_f1 = f1_score(true, pred, labels=all_labels, average="weighted", zero_division=0)
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "macro_f1": float(macro_f1),
        "macro_precision": float(macro_p),
        "macro_recall": float(macro_r),
        "weighted_f1": float(weighted_f1),
        "support": len(true),
        "majority_rate": float(np.bincount(true).max() / len(true)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(true, pred, labels=all_labels).tolist(),
        "labels": names,
    }


def _label_array(values: Sequence[int] | np.ndarray, what: str, n_labels: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of label indices, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{what} is empty: there is nothing to score")
    if array.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer label indices, got dtype {array.dtype}")
    bad = array[(array < 0) | (array >= n_labels)]
    if bad.size:
        raise ValueError(f"{what} holds label index {int(bad[0])}, outside 0..{n_labels - 1} ({n_labels} label names)")
    return array.astype(np.int64)


def per_class_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    """One row per class under `PER_CLASS_HEADERS`, in label order."""
    return [
        [name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])]
        for name, row in metrics["per_class"].items()
    ]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell: first column left-aligned, the numbers right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [str(first).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(rest, widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
