"""A task's data, read and checked before any training starts.

What a target is depends on the task's kind (polyhead.tasks): a class name, numbers, a set of
labels. The kind fits its outputs on the training split (label names, target scaling); an
evaluation target it cannot answer, an empty text, a missing column or an unparseable
file is an `InputError` naming file, line and field.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import datasets
from ..datasets import SPLIT_SEED, TextClassificationSplit, stratified_splits
from ..errors import InputError
from ..tasks import TargetColumns, TaskKind, Where, check_loss, get_kind
from ..textio import iter_records
from .config import DataFiles, HFDataset, TaskConfig
from .imbalance import check_balance_settings


@dataclass
class TaskData:
    """A task's splits: texts and targets as its kind stores them (label indices, numbers)."""

    name: str
    label_names: list[str]
    """The kind's output names: class names, target names or label names, in head order."""
    texts: dict[str, list[str]]
    targets: dict[str, list]
    source: str
    source_spec: str | dict | None = None
    """The data as a config value with absolute paths (recorded in the saved model)."""
    kind: str = "classification"
    state: dict = field(default_factory=dict)
    """What the kind fitted on the training split (target scaling; initial thresholds)."""
    pair_texts: dict[str, list[str]] = field(default_factory=dict)
    """The second text of each example, for kinds that read two (`texts` holds the first)."""

    def size(self, split: str) -> int:
        return len(self.texts.get(split, []))

    def columns(self, split: str) -> list[list[str]]:
        """The split's texts per text column: one list, or two for kinds that read pairs."""
        return [self.texts[split]] + ([self.pair_texts[split]] if split in self.pair_texts else [])

    def streams(self) -> list[str]:
        """Names of the task's text columns as the trainer caches and batches them: `task`, then `task.pair`."""
        return stream_names(self.name, self.task_kind.text_columns)

    def has(self, split: str) -> bool:
        return self.size(split) > 0

    @property
    def task_kind(self) -> TaskKind:
        return get_kind(self.kind)


def stream_names(task: str, columns: int) -> list[str]:
    return [task] + [f"{task}.pair"] * (columns - 1)


def target_columns(files: DataFiles | HFDataset) -> TargetColumns:
    columns = files.label_column if isinstance(files.label_column, list) else [files.label_column]
    return TargetColumns(tuple(columns), getattr(files, "label_separator", "|"), getattr(files, "pair_column", "text_pair"))


def _text(record: dict, column: str, path: str | Path, line: int) -> str:
    text = record[column]
    if not isinstance(text, str):
        raise InputError(f"expected a string, got {type(text).__name__}", file=path, line=line, field=column)
    if not text.strip():
        raise InputError("empty text", file=path, line=line, field=column)
    return text


def read_records(records: Iterable[tuple[int, dict[str, Any]]], files: DataFiles | HFDataset, kind: TaskKind,
                 file: str | Path) -> tuple[list, list[Any], list[int]]:
    """Texts (a (text, pair) tuple for kinds that read two), targets as the kind parses them, and each record's line."""
    columns, reads = target_columns(files), text_columns(files, kind)
    texts, targets, lines = [], [], []
    for line, record in records:
        items = tuple(_text(record, column, file, line) for column in reads)
        targets.append(kind.parse(record, columns, Where(file, line, columns.columns[0])))
        texts.append(items if len(items) > 1 else items[0])
        lines.append(line)
    if not texts:
        raise InputError("no records", file=file)
    return texts, targets, lines


def text_columns(files: DataFiles | HFDataset, kind: TaskKind) -> tuple[str, ...]:
    return (files.text_column, files.pair_column)[: kind.text_columns]


def record_columns(files: DataFiles | HFDataset, kind: TaskKind) -> tuple[str, ...]:
    """Every column a record must have: its text(s) and, for kinds that read one, its target(s)."""
    return (*text_columns(files, kind), *(target_columns(files).columns if kind.reads_label_column else ()))


def read_file_split(path: Path, files: DataFiles, kind: TaskKind) -> tuple[list, list[Any], list[int]]:
    """One split's file, read as `read_records` reads records."""
    return read_records(iter_records(path, record_columns(files, kind)), files, kind, path)


SplitRead = tuple[list, list[Any], list[int]]
"""(texts, targets, lines) of one split, as `read_records` returns them."""


def fit_splits(kind: TaskKind, files: DataFiles | HFDataset, read: dict[str, SplitRead], where: dict[str, str | Path],
               label_order: list[str] | None = None) -> tuple[list[str], dict, dict[str, TextClassificationSplit]]:
    """The kind fitted on the training split, the other splits checked against it, validation carved when missing.

    `where` names each split's source for errors; `label_order` (a dataset's own class list) replaces the
    fitted order when it holds every fitted label, so output i is the source's label id i.
    """
    columns = target_columns(files)
    train_texts, train_targets, train_lines = read["train"]
    label_names, state = kind.fit(train_targets, columns, Where(where["train"], None, columns.columns[0]), train_lines)
    if label_order is not None and set(label_names) <= set(label_order):
        label_names = list(label_order)
    splits: dict[str, TextClassificationSplit] = {}
    for split in ("validation", "test"):
        if split not in read:
            continue
        texts, targets, lines = read[split]
        for target, line in zip(targets, lines):
            kind.check(target, label_names, Where(where[split], line, columns.columns[0]))
        splits[split] = TextClassificationSplit(texts, targets)
    if "validation" in splits:
        splits["train"] = TextClassificationSplit(train_texts, train_targets)
    else:
        carved = carve_validation(train_texts, train_targets, where["train"], kind)
        splits["train"] = TextClassificationSplit(carved["train"].texts + carved["test"].texts, carved["train"].labels + carved["test"].labels)
        splits["validation"] = carved["validation"]
    return label_names, state, splits


def _from_files(files: DataFiles, base: Path, kind: TaskKind) -> tuple[list[str], dict, dict[str, TextClassificationSplit], str]:
    def resolve(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else base / path

    paths = {split: resolve(getattr(files, split)) for split in ("train", "validation", "test") if getattr(files, split)}
    read = {split: read_file_split(path, files, kind) for split, path in paths.items()}
    label_names, state, splits = fit_splits(kind, files, read, paths)
    return label_names, state, splits, str(paths["train"])


MIN_ROWS_TO_CARVE = 6
"""Fewest training rows from which the automatic 80/10/10 split leaves a row in each part."""


def carve_validation(texts: list[str], labels: list, path: Path | str, kind: TaskKind | None = None) -> dict[str, TextClassificationSplit]:
    """The automatic validation split: stratified by class, or random (with a note) when a class is too rare for that.

    Targets that are not one class per text (numbers, label sets) are split at random.
    """
    if len(texts) < MIN_ROWS_TO_CARVE:
        rows = f"{len(texts)} row is" if len(texts) == 1 else f"{len(texts)} rows are"
        raise InputError(
            f"{rows} too few to split off a validation set (at least {MIN_ROWS_TO_CARVE} are needed); "
            "give a validation file (data.validation) or more training rows", file=path,
        )
    if kind is not None and not kind.stratify:
        return stratified_splits(texts, labels, stratify=False)
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


def _subset(split: TextClassificationSplit, limit: int | None) -> TextClassificationSplit:
    """A fixed, seeded random subset (the splits are in source order, which is not random)."""
    if limit is None or limit >= len(split):
        return split
    order = list(range(len(split)))
    random.Random(SPLIT_SEED).shuffle(order)
    keep = sorted(order[:limit])
    return TextClassificationSplit([split.texts[i] for i in keep], [split.labels[i] for i in keep])


def _builtin(name: str, task: TaskConfig) -> tuple[TaskKind, list[str], dict, dict[str, TextClassificationSplit], str]:
    if not datasets.is_builtin(task.data):  # type: ignore[arg-type]
        raise InputError(f"unknown built-in dataset {task.data!r}; choose one of {', '.join(datasets.BUILTIN_TASK_DATASETS)} or give files",
                         field=f"tasks.{name}.data")
    dataset = datasets.get(task.data)  # type: ignore[arg-type]
    if task.kind is not None and task.kind != dataset.kind:
        raise InputError(f"the built-in dataset {task.data!r} is a {dataset.kind} task, not {task.kind}; set kind: {dataset.kind} "
                         "or leave kind out", field=f"tasks.{name}.kind")
    kind = get_kind(dataset.kind)
    label_names, state = kind.fit(dataset.train.labels, TargetColumns(tuple(dataset.label_names)), Where(field=f"tasks.{name}.data"))
    return kind, label_names, state, dict(dataset.splits), str(task.data)


def load_task_data(name: str, task: TaskConfig, base: Path = Path(".")) -> TaskData:
    """Read, check and index one task's data; relative file paths resolve against `base`."""
    spec: str | dict | None
    if isinstance(task.data, HFDataset):
        from .hf_data import read_hf_task  # imports `datasets` only for a task that uses it

        kind = get_kind(task.kind)
        label_names, state, splits, source, spec = read_hf_task(name, task.data, base, kind)
    elif isinstance(task.data, str):
        kind, label_names, state, splits, source = _builtin(name, task)
        spec = task.data
    else:
        kind = get_kind(task.kind)
        label_names, state, splits, source = _from_files(task.data, base, kind)
        spec = {k: (str((base / v).resolve()) if k in ("train", "validation", "test") and v else v) for k, v in dataclasses.asdict(task.data).items()}
    if task.loss is not None:  # the kind of a built-in dataset is known only now
        check_loss(kind, task.loss, f"tasks.{name}.loss")
        state = {**state, "loss": task.loss}
    check_balance_settings(name, task, kind, label_names)
    limits = {"train": task.max_train_examples, "validation": task.max_eval_examples, "test": task.max_eval_examples}
    texts, pairs, targets = {}, {}, {}
    for split_name, split in splits.items():
        chosen = _subset(split, limits[split_name])
        if kind.text_columns > 1:  # (text, pair) tuples: the encoder embeds each column separately
            texts[split_name], pairs[split_name] = [t for t, _ in chosen.texts], [p for _, p in chosen.texts]
        else:
            texts[split_name] = list(chosen.texts)
        targets[split_name] = kind.index(list(chosen.labels), label_names)
    return TaskData(name=name, label_names=label_names, texts=texts, targets=targets, source=source, source_spec=spec,
                    kind=kind.name, state=state, pair_texts=pairs)
