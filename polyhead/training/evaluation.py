"""Per-task evaluation of a MultiTaskModel on a split: eval mode, no gradients."""

from __future__ import annotations

import warnings

import numpy as np

from ..encoder import TruncationWarning
from ..metrics import classification_metrics
from ..model import MultiTaskModel
from .data import TaskData


def evaluate_tasks(model: MultiTaskModel, task_data: dict[str, TaskData], split: str, batch_size: int = 64) -> dict[str, dict]:
    """classification_metrics for every task that has `split`."""
    results = {}
    for name, data in task_data.items():
        if not data.has(split):
            continue
        with warnings.catch_warnings():
            # Truncation is counted once in the run's start event, not at every evaluation.
            warnings.simplefilter("ignore", TruncationWarning)
            # The exact fp32 path: metrics must not depend on whether a machine has bf16 hardware.
            probabilities = model.predict_probabilities(data.texts[split], tasks=[name], batch_size=batch_size, backend="torch")[name]
        predicted = probabilities.argmax(dim=-1).cpu().numpy()
        results[name] = classification_metrics(np.asarray(data.labels[split]), predicted, data.label_names)
    return results


def select_metric(metrics: dict[str, dict], metric: str) -> float:
    """`macro_f1` averages over tasks; `topic/accuracy` reads one task's value."""
    if "/" in metric:
        task, key = metric.split("/", 1)
        if task not in metrics:
            raise KeyError(f"early-stopping metric {metric!r}: no task {task!r} (tasks: {', '.join(metrics)})")
        return float(metrics[task][key])
    return float(np.mean([m[metric] for m in metrics.values()]))
