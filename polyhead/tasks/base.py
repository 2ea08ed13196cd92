"""A kind of task as one registered piece: how its targets are read, its head's size, loss, metrics and answer.

The training loop, evaluation, serving and export call these methods and never ask which
kind a task is. A new kind is one `TaskKind` subclass decorated with `@register_kind`;
torch is imported inside the methods, so a config can name and check kinds before
PyTorch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Where:
    """Where a target was read, for errors that name file, line and field."""

    file: Path | str | None = None
    line: int | None = None
    field: str | None = None


@dataclass(frozen=True)
class TargetColumns:
    """How a kind finds its targets in a record."""

    columns: tuple[str, ...] = ("label",)
    """The target column(s): one for classification and multi-label, one or more for regression."""
    separator: str = "|"
    """Separates the labels of one text in a CSV cell (or any string) of a multi-label task."""
    pair: str = "text_pair"
    """The second text of a kind that reads two (a contrastive task's positive)."""


class TaskKind:
    """Base of every kind of task; the methods get the task's `TaskSpec` (labels and fitted state)."""

    name: ClassVar[str] = ""
    score_metric: ClassVar[str] = ""
    """The metric (higher is better) that early stopping, the best checkpoint and the study compare."""
    table_metrics: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(metric key, column header) of the kind's one-line-per-task summary table."""
    outputs_meaning: ClassVar[str] = ""
    """What `outputs` holds per text, for docs and the exported graph's manifest."""
    output_noun: ClassVar[str] = "outputs"
    """What the head's outputs are called in plural (classes, targets, labels)."""
    plot_file: ClassVar[str] = ""
    """File-name prefix of the kind's plot in a run's report (`plots/PREFIX_TASK.png`)."""
    plot_caption: ClassVar[str] = ""
    """One line under the plot's heading in the report."""
    text_columns: ClassVar[int] = 1
    """Texts per example: 1, or 2 for kinds trained on pairs (each text goes through the shared encoder)."""
    answers_pairs: ClassVar[bool] = False
    """Whether `MultiTaskModel.predict_pairs` answers this task for a pair of texts."""
    reads_label_column: ClassVar[bool] = True
    """Whether a record's target is in `label_column` (a contrastive task's target is its pair text)."""
    answers_single_texts: ClassVar[bool] = True
    """Whether `predict`, the server and the exported graph answer this task for one text (a pair objective does not)."""
    stratify: ClassVar[bool] = False
    """Whether an automatic validation split keeps each target's share (only one class per text allows it)."""
    weighs_classes: ClassVar[bool] = False
    """Whether the kind has classes to count and weigh (`class_weights`, the imbalance note)."""
    losses: ClassVar[tuple[str, ...]] = ()
    """The losses a task of this kind may choose (`tasks.NAME.loss`), the default first; empty: one fixed loss."""

    hub_task_type: ClassVar[str] = "text-classification"
    """The Hugging Face task type a model card's results are filed under."""

    def hub_metrics(self) -> list[tuple[str, str, str, dict | None]]:
        """(metrics key, hub metric type, shown name, metric args) of a model card's results: the summary's numbers."""
        return [(key, key, header, None) for key, header in self.table_metrics if key not in ("support", "majority_rate")]

    # ------------------------------------------------------------------ reading targets
    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> Any:
        """One record's target as read from a file, checked; an `InputError` at `where` when bad."""
        raise NotImplementedError

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        """From the training targets (read at `lines` of `where.file`): the output names and the kind's state."""
        raise NotImplementedError

    def check(self, target: Any, labels: list[str], where: Where) -> None:
        """An evaluation target must be answerable by a head fitted on training (e.g. a known label)."""

    def index(self, targets: list, labels: list[str]) -> list:
        """Targets as stored in `TaskData`: label indices for labels, numbers for numbers."""
        return list(targets)

    def names(self, stored: list, labels: list[str]) -> list:
        """The inverse of `index`: stored targets back as read (to re-index them in another model's order)."""
        return list(stored)

    # ------------------------------------------------------------------ the head
    def output_size(self, labels: list[str]) -> int:
        return len(labels)

    def make_head(self, config, input_dim: int, labels: list[str]):
        """The task's head module (a registered head type sized for the kind's outputs)."""
        from ..heads import build_head

        return build_head(config, input_dim, self.output_size(labels))

    def logits(self, head, embeddings: list):
        """The head's raw outputs from the sentence embeddings of each text column (one list entry per column)."""
        return head(embeddings[0])

    def target_tensor(self, targets: list, spec) -> Any:
        """The stored targets of a split as one tensor, indexed by example."""
        raise NotImplementedError

    def loss(self, logits, targets, spec, weights=None):
        """The training loss of a batch (a scalar tensor) from the head's raw outputs; `weights` from `class_weights`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ class balance
    def class_counts(self, stored: list, labels: list[str]) -> list[int] | None:
        """Training examples per output (texts carrying each label, for multi-label), for class weights and the
        imbalance note; None: the kind has no classes."""
        return None

    def class_weights(self, stored: list, labels: list[str], setting: str | dict[str, float], field: str):
        """The tensor `loss` takes as `weights`, for `class_weights: balanced` or a label -> weight mapping."""
        raise self.no_classes_error(field)

    def no_classes_error(self, field: str) -> InputError:
        """`class_weights` on a kind without classes (`weighs_classes` False)."""
        return InputError(f"a {self.name} task has no classes to weigh; leave class_weights out", field=field)

    def distillation_loss(self, student, teacher, spec, temperature: float):
        """How far the head's raw outputs moved from a teacher's on the same texts (learning without forgetting);
        the default, for values, is the mean squared difference."""
        import torch.nn.functional as F

        return F.mse_loss(student.float(), teacher.float())

    def outputs(self, logits, spec):
        """The head's answer in the task's own terms (probabilities, values in the target's units); traceable to ONNX."""
        raise NotImplementedError

    def answer_tensor(self, head, embeddings: list, spec):
        """`outputs` of the head on the text columns' embeddings: what predict, evaluation and the export compute."""
        return self.outputs(self.logits(head, embeddings), spec)

    # ------------------------------------------------------------------ evaluation and answers
    def tune(self, outputs: np.ndarray, targets: list, spec) -> dict:
        """The kind's state re-fitted on validation outputs (e.g. per-label thresholds); the default keeps it."""
        return dict(spec.state)

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        """JSON-ready metrics of a split; includes `kind` and `score` (the `score_metric`'s value)."""
        raise NotImplementedError

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        """One text's prediction as JSON: what `predict`, the server and the exported model return."""
        raise NotImplementedError

    def summary_cells(self, metrics: dict[str, Any]) -> list[str]:
        return [_cell(metrics.get(key)) for key, _ in self.table_metrics]

    def plot(self, task: str, metrics: dict[str, Any], source: str):
        """The kind's picture of a split's metrics (a matplotlib Figure), or None when it has none."""
        return None


def summary_tables(metrics_by_task: dict[str, dict[str, Any]]) -> list[tuple[tuple[str, ...], list[list[str]]]]:
    """(headers, rows) per kind present, in order of first appearance: a table's columns fit its kind."""
    groups: dict[str, list[list[str]]] = {}
    for task, metrics in metrics_by_task.items():
        kind = get_kind(metrics.get("kind"))
        groups.setdefault(kind.name, []).append([task, *kind.summary_cells(metrics)])
    return [(("task", *(header for _, header in KINDS[name].table_metrics)), rows) for name, rows in groups.items()]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


KINDS: dict[str, TaskKind] = {}


def check_loss(kind: TaskKind, loss: str, field: str) -> None:
    """A chosen loss must be one the kind offers: the error names the field and the choices."""
    if loss not in kind.losses:
        offered = f"choose one of {', '.join(kind.losses)}" if kind.losses else "it has one fixed loss; leave `loss` out"
        raise InputError(f"a {kind.name} task has no loss {loss!r}: {offered}", field=field)


def register_kind(cls: type[TaskKind]) -> type[TaskKind]:
    """Make a kind available to configs (`kind: NAME`), saved models and the server."""
    KINDS[cls.name] = cls()
    return cls


def get_kind(name: str | None) -> TaskKind:
    """The registered kind; None (models saved before kinds existed) is classification."""
    key = name or "classification"
    if key not in KINDS:
        raise KeyError(f"unknown task kind {key!r}; registered: {', '.join(KINDS)}")
    return KINDS[key]
