"""A task's data, read and checked before any training starts.

Labels are fixed from the training split (sorted names); an evaluation label that
training never saw, an empty text, a missing column or an unparseable file is an
`InputError` naming file, line and field.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .. import datasets
from ..datasets import SPLIT_SEED, TextClassificationSplit, stratified_splits
from ..errors import InputError
from ..textio import iter_records
from .config import DataFiles, HFDataset, TaskConfig


@dataclass
class TaskData:
    """A task's splits with integer labels indexing `label_names`."""

    name: str
    label_names: list[str]
    texts: dict[str, list[str]]
    labels: dict[str, list[int]]
    source: str
    source_spec: str | dict | None = None
    """The data as a config value with absolute paths (recorded in the saved model)."""

    def size(self, split: str) -> int:
        return len(self.texts.get(split, []))

    def has(self, split: str) -> bool:
        return self.size(split) > 0


def read_file_split(path: Path, files: DataFiles) -> tuple[list[str], list[str], list[int]]:
    """Texts, labels (as strings) and the line of each record."""
    texts, labels, lines = [], [], []
    for line, record in iter_records(path, (files.text_column, files.label_column)):
        text, label = record[files.text_column], record[files.label_column]
        if not isinstance(text, str):
            raise InputError(f"expected a string, got {type(text).__name__}", file=path, line=line, field=files.text_column)
        if not text.strip():
            raise InputError("empty text", file=path, line=line, field=files.text_column)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise InputError("empty label", file=path, line=line, field=files.label_column)
        if isinstance(label, (dict, list)):
            raise InputError(f"a label must be a single value, got {type(label).__name__}", file=path, line=line, field=files.label_column)
        texts.append(text)
        labels.append(_label_text(label))
        lines.append(line)
    if not texts:
        raise InputError("no records", file=path)
    _check_numeric_labels(path, labels, lines, files.label_column)
    return texts, labels, lines


def _from_files(name: str, files: DataFiles, base: Path) -> tuple[list[str], dict[str, TextClassificationSplit], str]:
    def resolve(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else base / path

    train_path = resolve(files.train)
    train_texts, train_labels, _ = read_file_split(train_path, files)
    label_names = sorted(set(train_labels))
    if len(label_names) < 2:
        raise InputError(f"task {name!r} needs at least 2 distinct labels in training, found {label_names}", file=train_path, field=files.label_column)
    splits: dict[str, TextClassificationSplit] = {}
    for split in ("validation", "test"):
        given = getattr(files, split)
        if given is None:
            continue
        path = resolve(given)
        texts, labels, lines = read_file_split(path, files)
        known = set(label_names)
        for label, line in zip(labels, lines):
            if label not in known:
                raise InputError(
                    f"label {label!r} never appears in the training data ({train_path}); known labels: {', '.join(label_names)}",
                    file=path, line=line, field=files.label_column,
                )
        splits[split] = TextClassificationSplit(texts, labels)
    if "validation" in splits:
        splits["train"] = TextClassificationSplit(train_texts, train_labels)
    else:
        carved = carve_validation(train_texts, train_labels, train_path)
        splits["train"] = TextClassificationSplit(carved["train"].texts + carved["test"].texts, carved["train"].labels + carved["test"].labels)
        splits["validation"] = carved["validation"]
    return label_names, splits, str(train_path)


def carve_validation(texts: list[str], labels: list[str], path: Path) -> dict[str, TextClassificationSplit]:
    """The automatic validation split: stratified, or random (with a note) when a class is too rare for that."""
    try:
        return stratified_splits(texts, labels)
    except ValueError:
        counts = Counter(labels)
        rare = sorted(label for label, count in counts.items() if count < 10)
        print(
            f"note: {path}: too few examples of {', '.join(map(repr, rare)) or 'some labels'} to stratify the automatic "
            "validation split, so it is random (some classes may be missing from it); give a validation file to choose it",
            file=sys.stderr,
        )
        return stratified_splits(texts, labels, stratify=False)


def _check_numeric_labels(path: Path, labels: list[str], lines: list[int], column: str) -> None:
    """Fractional numbers as labels are a regression target, which a classification head cannot learn."""
    numbers = []
    for label in labels:
        try:
            numbers.append(float(label))
        except ValueError:
            return  # not all numeric: class names that happen to look like numbers are fine
    for value, label, line in zip(numbers, labels, lines):
        if not value.is_integer():
            raise InputError(
                f"label {label!r} is a fractional number: this looks like a regression target, and polyhead's tasks are "
                "classification; bin the values into classes (e.g. low/medium/high) or round them",
                file=path, line=line, field=column,
            )


def _label_text(label: object) -> str:
    """A label as its class name: 4.0 (JSON, parquet) and "4" (CSV) are the same class."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def _subset(split: TextClassificationSplit, limit: int | None) -> TextClassificationSplit:
    """A fixed, seeded random subset (the splits are in source order, which is not random)."""
    if limit is None or limit >= len(split):
        return split
    order = list(range(len(split)))
    random.Random(SPLIT_SEED).shuffle(order)
    keep = sorted(order[:limit])
    return TextClassificationSplit([split.texts[i] for i in keep], [split.labels[i] for i in keep])


def load_task_data(name: str, task: TaskConfig, base: Path = Path(".")) -> TaskData:
    """Read, check and index one task's data; relative file paths resolve against `base`."""
    spec: str | dict | None
    if isinstance(task.data, HFDataset):
        from .hf_data import read_hf_task  # imports `datasets` only for a task that uses it

        label_names, splits, source, spec = read_hf_task(name, task.data, base)
    elif isinstance(task.data, str):
        spec = task.data
        if not datasets.is_builtin(task.data):
            raise InputError(
                f"unknown built-in dataset {task.data!r}; choose one of {', '.join(datasets.CLASSIFICATION_DATASETS)} or give files",
                field=f"tasks.{name}.data",
            )
        dataset = datasets.get(task.data)
        label_names, splits, source = list(dataset.label_names), dict(dataset.splits), task.data
    else:
        label_names, splits, source = _from_files(name, task.data, base)
        spec = {k: (str((base / v).resolve()) if k in ("train", "validation", "test") and v else v) for k, v in dataclasses.asdict(task.data).items()}
    limits = {"train": task.max_train_examples, "validation": task.max_eval_examples, "test": task.max_eval_examples}
    index = {label: i for i, label in enumerate(label_names)}
    texts, labels = {}, {}
    for split_name, split in splits.items():
        chosen = _subset(split, limits[split_name])
        texts[split_name] = list(chosen.texts)
        labels[split_name] = [index[label] for label in chosen.labels]
    return TaskData(name=name, label_names=label_names, texts=texts, labels=labels, source=source, source_spec=spec)
