"""Multi-label classification: any number of labels per text, a sigmoid per label, thresholds tuned on validation.

Each label's threshold is the one that maximizes its F1 on the validation split (searched
on a fixed grid, 0.5 for a label validation never shows), and travels with the model, so
`predict`, the server and the exported graph answer with the same label sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .balance import balanced_weights, mapped_weights
from .base import TargetColumns, TaskKind, Where, register_kind
from .classification import label_text, single_column

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)
DEFAULT_THRESHOLD = 0.5


@register_kind
class MultiLabel(TaskKind):
    name = "multilabel"
    score_metric = "micro_f1"
    table_metrics = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("subset_accuracy", "subset acc."),
                     ("hamming_loss", "Hamming loss"), ("support", "support"))
    outputs_meaning = "each label's probability (sigmoid), in label order; a label is predicted above its threshold"
    weighs_classes = True
    output_noun = "labels"
    plot_file = "label_f1"
    plot_caption = "Each label's F1 at its tuned threshold; its support in brackets."

    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> list[str]:
        column = single_column(columns, self.name, where)
        value = record[column]
        if value is None:
            return []
        if isinstance(value, str):
            items: list = [part for part in value.split(columns.separator)] if value.strip() else []
        elif isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
        else:
            raise InputError(f"expected a list of labels (or labels separated by {columns.separator!r}), got {type(value).__name__}",
                             file=where.file, line=where.line, field=column)
        labels = []
        for item in items:
            if isinstance(item, (list, dict)) or item is None or not label_text(item):
                raise InputError(f"an empty or nested label in {value!r}", file=where.file, line=where.line, field=column)
            labels.append(label_text(item))
        return sorted(set(labels))

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        names = sorted({label for labels in targets for label in labels})
        if not names:
            raise InputError("no text in training has a label", file=where.file, field=where.field)
        return names, {"thresholds": [DEFAULT_THRESHOLD] * len(names)}

    def check(self, target: Any, labels: list[str], where: Where) -> None:
        known = set(labels)
        for label in target:
            if label not in known:
                raise InputError(f"label {label!r} never appears in the training data; known labels: {', '.join(labels)}",
                                 file=where.file, line=where.line, field=where.field)

    def index(self, targets: list, labels: list[str]) -> list[list[int]]:
        positions = {label: i for i, label in enumerate(labels)}
        return [[positions[label] for label in row] for row in targets]

    def names(self, stored: list, labels: list[str]) -> list[list[str]]:
        return [[labels[i] for i in row] for row in stored]

    def _multi_hot(self, targets: list, size: int) -> np.ndarray:
        hot = np.zeros((len(targets), size), dtype=np.float32)
        for row, indices in enumerate(targets):
            hot[row, indices] = 1.0
        return hot

    def target_tensor(self, targets: list, spec):
        import torch

        return torch.from_numpy(self._multi_hot(targets, len(spec.labels)))

    def loss(self, logits, targets, spec, weights=None):
        import torch.nn.functional as F

        targets = targets.float()
        if weights is None:
            return F.binary_cross_entropy_with_logits(logits.float(), targets)
        # weights[0]: each label's weight of a text without it, weights[1]: of a text with it.
        return F.binary_cross_entropy_with_logits(logits.float(), targets, weight=targets * weights[1] + (1 - targets) * weights[0])

    def class_counts(self, stored: list, labels: list[str]) -> list[int]:
        return self._multi_hot(stored, len(labels)).sum(axis=0).astype(int).tolist()

    def class_weights(self, stored: list, labels: list[str], setting: str | dict[str, float], field: str):
        """Per label, a weight for texts without it and one for texts with it (a 2 x labels tensor): `balanced` is each
        label's own two-class balance, so its positives and its negatives weigh half each; a mapping weighs positives."""
        import torch

        hot = self._multi_hot(stored, len(labels)).astype(int)
        if setting == "balanced":
            pairs = [balanced_weights(hot[:, i], 2) if 0 < hot[:, i].sum() < len(hot) else [1.0, 1.0] for i in range(len(labels))]
            return torch.tensor(pairs, dtype=torch.float32).T.contiguous()
        positives = mapped_weights(setting, labels, field)  # type: ignore[arg-type]
        return torch.tensor([[1.0] * len(labels), positives], dtype=torch.float32)

    def distillation_loss(self, student, teacher, spec, temperature: float):
        """Each label's softened teacher probability as the binary target."""
        import torch
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(student.float() / temperature, torch.sigmoid(teacher.float() / temperature))

    def outputs(self, logits, spec):
        import torch

        return torch.sigmoid(logits.float())

    def tune(self, outputs: np.ndarray, targets: list, spec) -> dict:
        """Per label, the grid threshold with the best validation F1 (ties: the one nearest 0.5).

        One scikit-learn call per grid threshold scores every label at once: a call per label and threshold
        cost seconds of validation overhead at each evaluation of a task with dozens of labels."""
        from sklearn.metrics import precision_recall_fscore_support

        truth = self._multi_hot(targets, len(spec.labels)).astype(int)
        outputs = np.asarray(outputs)
        f1_by_threshold = [precision_recall_fscore_support(truth, (outputs >= t).astype(int), average=None, zero_division=0)[2]
                           for t in THRESHOLD_GRID]
        thresholds = []
        for i in range(len(spec.labels)):
            if truth[:, i].sum() == 0:
                thresholds.append(DEFAULT_THRESHOLD)
                continue
            scores = [(f1[i], -abs(t - 0.5), float(t)) for f1, t in zip(f1_by_threshold, THRESHOLD_GRID)]
            thresholds.append(max(scores)[2])
        return {**spec.state, "thresholds": thresholds}

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

        truth = self._multi_hot(targets, len(spec.labels)).astype(int)
        predicted = (np.asarray(outputs) >= np.asarray(spec.state["thresholds"])).astype(int)
        precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
        present = [i for i in range(truth.shape[1]) if truth[:, i].any() or predicted[:, i].any()]
        micro = float(f1_score(truth, predicted, average="micro", zero_division=0))
        return {
            "kind": self.name, "score": micro, "micro_f1": micro,
            "macro_f1": float(np.mean(f1[present])) if present else 0.0,
            "subset_accuracy": float((truth == predicted).all(axis=1).mean()),
            "hamming_loss": float(hamming_loss(truth, predicted)),
            "support": len(targets), "labels": list(spec.labels),
            "thresholds": [float(t) for t in spec.state["thresholds"]],
            "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                 "support": int(support[i])} for i, name in enumerate(spec.labels)},
        }

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        thresholds = spec.state.get("thresholds") or [DEFAULT_THRESHOLD] * len(row)
        chosen = [name for name, p, t in zip(spec.labels, row, thresholds) if p >= t]
        return {"labels": chosen, "probabilities": dict(zip(spec.labels, map(float, row)))}

    def plot(self, task: str, metrics: dict[str, Any], source: str):
        from .plots import per_label_f1

        return per_label_f1(task, metrics, source)
