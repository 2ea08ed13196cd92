"""Per-task evaluation of a MultiTaskModel on a split: eval mode, no gradients, each task scored by its kind."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..encoder import TruncationWarning
from ..model import MultiTaskModel
from ..sdpa import attention_backends
from ..modes import eval_mode
from .data import TaskData


def task_outputs(
    model: MultiTaskModel, task_data: dict[str, TaskData], split: str, batch_size: int = 64,
    embeddings: dict[str, torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:
    """Each task's answers on `split` (its kind's outputs per example), for the tasks that have the split.

    `embeddings` holds the split's sentence embeddings per text stream (`task`, `task.pair`)
    when they are known not to change (a frozen encoder): only the heads run.
    """
    outputs = {}
    for name, data in task_data.items():
        if not data.has(split):
            continue
        spec = model.tasks[name]
        encoder = model.group_encoder(spec.adapter)
        with torch.inference_mode(), eval_mode(model), attention_backends():
            vectors = [embeddings[stream] if embeddings and stream in embeddings else _embed(encoder, texts, batch_size)
                       for stream, texts in zip(data.streams(), data.columns(split))]
            outputs[name] = spec.task_kind.answer_tensor(model.heads[name], [v.to(model.device) for v in vectors], spec).float().cpu().numpy()
    return outputs


def evaluate_tasks(
    model: MultiTaskModel, task_data: dict[str, TaskData], split: str, batch_size: int = 64,
    embeddings: dict[str, torch.Tensor] | None = None, tune: bool | set[str] = False,
    outputs: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
    """The kind's metrics for every task that has `split`.

    `outputs`: the answers `task_outputs` gave (computed here when not given; `embeddings` as there). `tune` lets each kind
    re-fit its state on these outputs first (multi-label thresholds, on validation), stored in the model's spec; a set of
    names tunes only those tasks (the ones that train: an old task kept as it is keeps its state).
    """
    if outputs is None:
        outputs = task_outputs(model, task_data, split, batch_size, embeddings)
    results = {}
    for name, values in outputs.items():
        spec, targets = model.tasks[name], task_data[name].targets[split]
        if tune is True or (tune and name in tune):
            spec.state = spec.task_kind.tune(values, targets, spec)
        results[name] = spec.task_kind.metrics(values, targets, spec)
    return results


def stream_embeddings(model: MultiTaskModel, task_data: dict[str, TaskData], split: str, batch_size: int) -> dict[str, torch.Tensor]:
    """Every text stream's embeddings of a split (`task`, `task.pair`): computed once when the encoder is frozen."""
    result = {}
    with torch.inference_mode(), eval_mode(model), attention_backends():
        for name, data in task_data.items():
            if data.has(split):
                # A task the model does not have (a teacher embedding a new task's texts) sees the shared encoder.
                encoder = model.group_encoder(model.tasks[name].adapter if name in model.tasks else None)
                result.update({stream: _embed(encoder, texts, batch_size).float() for stream, texts in zip(data.streams(), data.columns(split))})
    return result


def _embed(encoder, texts: list[str], batch_size: int) -> torch.Tensor:
    with warnings.catch_warnings():
        # Truncation is counted once in the run's start event, not at every evaluation.
        warnings.simplefilter("ignore", TruncationWarning)
        # The exact fp32 path: metrics must not depend on whether a machine has bf16 hardware.
        return encoder.encode(texts, batch_size=batch_size, output="torch", show_progress=False, backend="torch")


def select_metric(metrics: dict[str, dict], metric: str) -> float:
    """`score` averages each task's own selection metric; `macro_f1` averages that metric; `topic/accuracy` reads one task's."""
    if "/" in metric:
        task, key = metric.split("/", 1)
        if task not in metrics:
            raise KeyError(f"early-stopping metric {metric!r}: no task {task!r} (tasks: {', '.join(metrics)})")
        return float(metrics[task][key])
    missing = [task for task, m in metrics.items() if metric not in m]
    if missing:
        raise KeyError(f"early-stopping metric {metric!r}: task(s) {', '.join(missing)} have no such metric; "
                       "use `score` (each task's own selection metric) or TASK/METRIC")
    return float(np.mean([m[metric] for m in metrics.values()]))
