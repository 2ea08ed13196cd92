"""The evaluation data of a saved model: what it was trained on, or a file the user names.

Targets are read by the task's kind and indexed in the model's own output order, so a
model evaluates on data whose labels come in another order, or on a file of another
domain whose labels a `label_map` renames.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..task_spec import TaskSpec
from .config import DataFiles, HFDataset, TaskConfig
from .data import TaskData, load_task_data, read_file_split

if TYPE_CHECKING:
    from ..model import MultiTaskModel


def task_data_for_model(model: "MultiTaskModel", split: str, max_examples: int | None = None) -> dict[str, TaskData]:
    """Per task, the data it was trained on (as its saved model records it), targets in the model's order."""
    result = {}
    for name, spec in model.tasks.items():
        source = recorded_source(spec, f"give it with --data {name}=FILE")
        limit = max_examples if split != "train" else None
        config = TaskConfig(data=source, kind=spec.kind, max_train_examples=max_examples if split == "train" else None,
                            max_eval_examples=limit)
        data = load_task_data(name, config, Path("."))
        if not data.has(split):
            raise InputError(f"task {name!r} has no {split} split")
        if not spec.task_kind.reads_label_column:  # targets are the pairs themselves: nothing to re-index
            result[name] = data
            continue
        names = data.task_kind.names(data.targets[split], data.label_names)
        result[name] = _in_model_order(spec, data.columns(split), names, split, data.source, None)
    return result


def recorded_source(spec: TaskSpec, hint: str) -> str | DataFiles | HFDataset:
    """The data a saved task records (a built-in name, files or a Hugging Face dataset) as a task config's `data`."""
    if isinstance(spec.data, str):
        return spec.data
    if isinstance(spec.data, dict) and "hf" in spec.data:
        return HFDataset(**spec.data)
    if isinstance(spec.data, dict):
        return DataFiles(**spec.data)
    raise InputError(f"the model does not record task {spec.name!r}'s data; {hint}")


def read_eval_file(spec: TaskSpec, path: Path, split: str, text_column: str = "text", label_column: str | list[str] = "label",
                   label_map: dict[str, str] | None = None, max_examples: int | None = None, pair_column: str = "text_pair") -> TaskData:
    """A file of texts and targets for one of the model's tasks; a target the model cannot answer names its line."""
    files = DataFiles(train=str(path), text_column=text_column, label_column=label_column, pair_column=pair_column)
    texts, targets, lines = read_file_split(path, files, spec.task_kind)
    if label_map:
        targets = [_renamed(target, label_map) for target in targets]
    if max_examples is not None:
        texts, targets, lines = texts[:max_examples], targets[:max_examples], lines[:max_examples]
    columns = [list(column) for column in zip(*texts)] if spec.task_kind.text_columns > 1 else [texts]
    hint = "; map the data's labels to the model's with --label-map DATA_LABEL=MODEL_LABEL,..." if label_map is not None else ""
    return _in_model_order(spec, columns, targets, split, str(path), (path, lines, label_column, hint))


def _renamed(target, label_map: dict[str, str]):
    """Class names and label lists renamed; numbers left alone."""
    if isinstance(target, str):
        return label_map.get(target, target)
    if isinstance(target, list) and all(isinstance(x, str) for x in target):
        return sorted({label_map.get(x, x) for x in target})
    return target


def _in_model_order(spec: TaskSpec, columns: list[list[str]], targets: list, split: str, source: str, located) -> TaskData:
    """`columns`: the texts of each text column (one, or two for pair kinds)."""
    kind = spec.task_kind
    for row, target in enumerate(targets):
        try:
            kind.check(target, spec.labels, _where(located, row))
        except InputError as error:
            hint = located[3] if located else ""
            raise InputError(f"{error.reason} (task {spec.name!r} of the model){hint}", file=error.file, line=error.line,
                             field=error.field) from None
    return TaskData(spec.name, list(spec.labels), {split: columns[0]}, {split: kind.index(targets, spec.labels)}, source, None,
                    kind=spec.kind, state=dict(spec.state), pair_texts={split: columns[1]} if len(columns) > 1 else {})


def _where(located, row: int):
    from ..tasks import Where

    if located is None:
        return Where()
    path, lines, column, _ = located
    return Where(path, lines[row], column if isinstance(column, str) else column[0])
