"""Per-task evaluation of a MultiTaskModel on a split: eval mode, no gradients."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..encoder import TruncationWarning
from ..metrics import classification_metrics
from ..model import MultiTaskModel
from ..modes import eval_mode
from .data import TaskData


def evaluate_tasks(
    model: MultiTaskModel, task_data: dict[str, TaskData], split: str, batch_size: int = 64,
    embeddings: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict]:
    """classification_metrics for every task that has `split`.

    `embeddings` holds a task's sentence embeddings of the split when they are known not to
    change (a frozen encoder): only its head runs.
    """
    results = {}
    for name, data in task_data.items():
        if not data.has(split):
            continue
        if embeddings and name in embeddings:
            with torch.inference_mode(), eval_mode(model):
                logits = model.head_logits(embeddings[name].to(model.device), [name])[name]
            predicted = logits.argmax(dim=-1).cpu().numpy()
            results[name] = classification_metrics(np.asarray(data.labels[split]), predicted, data.label_names)
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
