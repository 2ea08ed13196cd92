"""What an int8 graph costs in accuracy: its outputs against the fp32 graph's on the same texts.

Two things are measured, because either can matter to a user: how far each embedding
moves (cosine to its fp32 vector: the worst and the mean) and, per task, the share of
texts whose answer changes (the arg-max class; for a multi-label task, the set of labels
above their thresholds). Regression tasks have no label to change and are left out.
"""

from __future__ import annotations

import numpy as np

from ..similarity import row_cosines
from .batching import run_batches
from .manifest import EMBEDDING_OUTPUT, QuantizationCost


def session_runner(session, outputs: list[str]):
    """A batch runner returning every named output of an ONNX Runtime session."""

    def run(input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(outputs, session.run(None, {"input_ids": input_ids, "attention_mask": mask})))

    return run


def answers(values: np.ndarray, task: dict) -> np.ndarray | None:
    """Each text's answer as one comparable row (None for kinds without labels, like regression)."""
    kind = task.get("kind") or "classification"
    if kind == "classification":
        return values.argmax(1)
    if kind == "multilabel":
        thresholds = (task.get("state") or {}).get("thresholds") or [0.5] * values.shape[1]
        return values >= np.asarray(thresholds, dtype=values.dtype)
    return None


def label_changes(reference: dict[str, np.ndarray], quantized: dict[str, np.ndarray], outputs: list[str], tasks: list[dict]) -> dict[str, float]:
    """Per task with labels: the share of texts whose answer differs between the two graphs."""
    task_outputs = [name for name in outputs if name.startswith("probabilities_")]
    changes = {}
    for task, name in zip(tasks, task_outputs):
        before, after = answers(reference[name], task), answers(quantized[name], task)
        if before is None or after is None:
            continue
        differ = before != after
        changes[task["name"]] = float(np.mean(differ.any(axis=1) if differ.ndim > 1 else differ))
    return changes


def compare_outputs(
    reference: dict[str, np.ndarray], quantized: dict[str, np.ndarray], outputs: list[str], tasks: list[dict], source: str
) -> QuantizationCost:
    """The cost of `quantized` against `reference` (both every output of the same texts)."""
    cosines = row_cosines(reference[EMBEDDING_OUTPUT], quantized[EMBEDDING_OUTPUT])
    changes = label_changes(reference, quantized, outputs, tasks)
    return QuantizationCost(
        texts=len(cosines),
        source=source,
        min_cosine=float(cosines.min()) if len(cosines) else 1.0,
        mean_cosine=float(cosines.mean()) if len(cosines) else 1.0,
        label_agreement={task: 1.0 - share for task, share in changes.items()},
        label_changes=changes,
    )


def measure_cost(
    fp32_session,
    int8_session,
    ids: list[np.ndarray],
    pad_id: int,
    outputs: list[str],
    tasks: list[dict],
    source: str,
    batch_size: int = 32,
) -> QuantizationCost:
    """Run both graphs on the same tokenized texts and compare them (see `compare_outputs`)."""
    reference = run_batches(ids, session_runner(fp32_session, outputs), batch_size=batch_size, pad_id=pad_id)
    quantized = run_batches(ids, session_runner(int8_session, outputs), batch_size=batch_size, pad_id=pad_id)
    return compare_outputs(reference, quantized, outputs, tasks, source)
