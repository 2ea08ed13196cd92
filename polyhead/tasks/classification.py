"""Single-label classification: softmax over the classes, cross-entropy, accuracy / F1 / confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .balance import balanced_weights, mapped_weights
from .base import TargetColumns, TaskKind, Where, register_kind


def label_text(label: object) -> str:
    """A label as its class name: 4.0 (JSON, parquet) and "4" (CSV) are the same class."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def single_column(columns: TargetColumns, kind: str, where: Where) -> str:
    if len(columns.columns) != 1:
        raise InputError(f"a {kind} task reads one label column, got {list(columns.columns)}", file=where.file, field="label_column")
    return columns.columns[0]


@register_kind
class Classification(TaskKind):
    name = "classification"
    score_metric = "macro_f1"
    table_metrics = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("majority_rate", "majority rate"), ("support", "support"))
    outputs_meaning = "class probabilities (softmax), in label order"
    weighs_classes = True
    output_noun = "classes"
    stratify = True
    plot_file = "confusion"
    plot_caption = "Rows: true class; columns: predicted class."

    def hub_metrics(self) -> list[tuple[str, str, str, dict | None]]:
        return [("accuracy", "accuracy", "accuracy", None), ("macro_f1", "f1", "macro-F1", {"average": "macro"})]

    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> str:
        column = single_column(columns, self.name, where)
        label = record[column]
        if label is None or (isinstance(label, str) and not label.strip()):
            raise InputError("empty label", file=where.file, line=where.line, field=column)
        if isinstance(label, (dict, list)):
            raise InputError(f"a label must be a single value, got {type(label).__name__} (a list of labels is `kind: multilabel`)",
                             file=where.file, line=where.line, field=column)
        return label_text(label)

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        names = sorted(set(targets))
        if len(names) < 2:
            raise InputError(f"a classification task needs at least 2 distinct labels in training, found {names}",
                             file=where.file, field=where.field)
        _check_not_fractional(targets, where, lines)
        return names, {}

    def check(self, target: Any, labels: list[str], where: Where) -> None:
        if target not in set(labels):
            raise InputError(f"label {target!r} never appears in the training data; known labels: {', '.join(labels)}",
                             file=where.file, line=where.line, field=where.field)

    def index(self, targets: list, labels: list[str]) -> list[int]:
        positions = {label: i for i, label in enumerate(labels)}
        return [positions[t] for t in targets]

    def names(self, stored: list, labels: list[str]) -> list[str]:
        return [labels[i] for i in stored]

    def target_tensor(self, targets: list, spec):
        import torch

        return torch.tensor(targets, dtype=torch.long)

    def loss(self, logits, targets, spec, weights=None):
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), targets, weight=weights)

    def class_counts(self, stored: list, labels: list[str]) -> list[int]:
        return np.bincount(np.asarray(stored, dtype=int), minlength=len(labels)).tolist()

    def class_weights(self, stored: list, labels: list[str], setting: str | dict[str, float], field: str):
        """One weight per class: cross-entropy then averages over the batch's total weight (PyTorch's `weight`)."""
        import torch

        weights = (balanced_weights(np.asarray(stored, dtype=int), len(labels)) if setting == "balanced"
                   else mapped_weights(setting, labels, field))  # type: ignore[arg-type]
        return torch.tensor(weights, dtype=torch.float32)

    def distillation_loss(self, student, teacher, spec, temperature: float):
        """KL divergence of the softened class distributions, scaled by T^2 (Hinton et al. 2015)."""
        import torch.nn.functional as F

        t = temperature
        return F.kl_div(F.log_softmax(student.float() / t, dim=-1), F.log_softmax(teacher.float() / t, dim=-1),
                        log_target=True, reduction="batchmean") * t * t

    def outputs(self, logits, spec):
        import torch

        return torch.softmax(logits.float(), dim=-1)

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        from ..metrics import classification_metrics

        result = classification_metrics(np.asarray(targets), np.asarray(outputs).argmax(axis=-1), spec.labels)
        return {"kind": self.name, "score": result[self.score_metric], **result}

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        best = max(range(len(row)), key=row.__getitem__)
        return {"label": spec.labels[best], "probability": float(row[best]),
                "probabilities": dict(zip(spec.labels, map(float, row)))}

    def plot(self, task: str, metrics: dict[str, Any], source: str):
        from .plots import confusion_matrix

        return confusion_matrix(task, metrics, source) if metrics.get("confusion_matrix") is not None else None


def _check_not_fractional(labels: list[str], where: Where, lines: list[int] | None) -> None:
    """Fractional numbers as labels are a regression target, which a classification head cannot learn."""
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return  # not all numeric: class names that happen to look like numbers are fine
    for row, (value, label) in enumerate(zip(values, labels)):
        if not value.is_integer():
            raise InputError(
                f"label {label!r} is a fractional number: this looks like a regression target; set `kind: regression` "
                "on the task, or bin the values into classes", file=where.file, line=lines[row] if lines else None, field=where.field,
            )
