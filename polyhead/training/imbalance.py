"""Imbalanced classes: the settings' checks, the loss weights, balanced sampling and the run start's note.

A task whose largest class has over IMBALANCE_RATIO times the training examples of its
smallest gets a note at the run start (and in the start event, which the report reads), so a
high accuracy that hides a missed small class is never a surprise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..tasks import TaskKind
from ..tasks.balance import mapped_weights
from .config import RunConfig, TaskConfig

if TYPE_CHECKING:
    from .data import TaskData

IMBALANCE_RATIO = 5.0
"""Largest over smallest class count above which the run start notes the imbalance."""
SMALL_CLASSES = 5
"""How many of an imbalanced task's small classes (under 1 / IMBALANCE_RATIO of its largest) the report shows."""


def check_balance_settings(name: str, task: TaskConfig, kind: TaskKind, labels: list[str]) -> None:
    """`class_weights` and `sampling` fit the task's kind and labels (checked before any training)."""
    if task.class_weights is not None:
        if not kind.weighs_classes:
            raise kind.no_classes_error(f"tasks.{name}.class_weights")
        if isinstance(task.class_weights, dict):
            mapped_weights(task.class_weights, labels, f"tasks.{name}.class_weights")
    if task.sampling == "balanced" and not kind.stratify:
        raise InputError(f"sampling: balanced draws classes equally often, which needs one class per text; a {kind.name} task "
                         "has not (use class_weights where the kind has classes)", field=f"tasks.{name}.sampling")


def class_weight_tensors(config: RunConfig, train_data: dict[str, TaskData]) -> dict[str, Any]:
    """Per task with `class_weights`: the tensor its kind's loss takes as `weights`."""
    return {name: data.task_kind.class_weights(data.targets["train"], data.label_names, config.tasks[name].class_weights,
                                               f"tasks.{name}.class_weights")
            for name, data in train_data.items() if config.tasks[name].class_weights is not None}


def balanced_classes(config: RunConfig, train_data: dict[str, TaskData]) -> dict[str, list[int]]:
    """Per task with `sampling: balanced`: each training example's class, for the sampler."""
    return {name: list(data.targets["train"]) for name, data in train_data.items() if config.tasks[name].sampling == "balanced"}


def imbalance(config: RunConfig, train_data: dict[str, TaskData]) -> dict[str, dict]:
    """Per task over IMBALANCE_RATIO: its class counts, the ratio, its smallest classes and what the config does about it."""
    found = {}
    for name, data in train_data.items():
        counts = data.task_kind.class_counts(data.targets["train"], data.label_names)
        present = {label: count for label, count in zip(data.label_names, counts or []) if count > 0}
        if len(present) < 2 or max(present.values()) <= IMBALANCE_RATIO * min(present.values()):
            continue
        task = config.tasks[name]
        ordered = sorted(present, key=present.__getitem__)
        found[name] = {"ratio": round(max(present.values()) / min(present.values()), 2), "counts": present,
                       "largest": ordered[-1], "class_weights": task.class_weights,
                       "small": [c for c in ordered if present[c] * IMBALANCE_RATIO < present[ordered[-1]]][:SMALL_CLASSES],
                       "sampling": task.sampling}
    return found


def imbalance_lines(found: dict[str, dict]) -> list[str]:
    """The run start's note: one line per imbalanced task, with what to set when nothing is set yet."""
    lines = []
    for name, info in found.items():
        counts, smallest = info["counts"], info["small"][0]
        line = (f"note: task {name!r} is imbalanced: its largest class {info['largest']!r} has {counts[info['largest']]:,} training "
                f"examples, its smallest {smallest!r} {counts[smallest]:,} ({info['ratio']:g}x, over {IMBALANCE_RATIO:g}x).")
        handled = [f"class_weights: {'balanced' if info['class_weights'] == 'balanced' else 'a mapping'}"] if info["class_weights"] else []
        handled += ["sampling: balanced"] if info["sampling"] == "balanced" else []
        if handled:
            line += f" Using {' and '.join(handled)}."
        else:
            line += (f" Accuracy can hide a missed small class: consider tasks.{name}.class_weights=balanced or "
                     f"tasks.{name}.sampling=balanced; the report lists the small classes' precision and recall.")
        lines.append(line)
    return lines
