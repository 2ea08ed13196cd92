"""The evaluation data of a saved model: what it was trained on, or files the user names."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..model import MultiTaskModel
from .config import DataFiles, HFDataset, TaskConfig
from .data import TaskData, load_task_data, read_file_split


def task_data_for_model(
    model: MultiTaskModel,
    split: str,
    overrides: dict[str, str],
    text_column: str = "text",
    label_column: str = "label",
    max_examples: int | None = None,
) -> dict[str, TaskData]:
    """Per task, its data with labels mapped to the model's own label order."""
    unknown = set(overrides) - set(model.tasks)
    if unknown:
        raise InputError(f"--data names unknown task(s) {sorted(unknown)}; the model has {model.task_names}")
    result = {}
    for name, spec in model.tasks.items():
        if name in overrides:
            result[name] = _from_file(name, Path(overrides[name]), spec.labels, split, text_column, label_column, max_examples)
            continue
        source: str | DataFiles | HFDataset
        if isinstance(spec.data, str):
            source = spec.data
        elif isinstance(spec.data, dict) and "hf" in spec.data:
            source = HFDataset(**spec.data)
        elif isinstance(spec.data, dict):
            source = DataFiles(**spec.data)
        else:
            raise InputError(f"the model does not record task {name!r}'s data; give it with --data {name}=FILE")
        limit = max_examples if split != "train" else None
        data = load_task_data(name, TaskConfig(data=source, max_train_examples=max_examples if split == "train" else None, max_eval_examples=limit), Path("."))
        result[name] = _align_labels(data, spec.labels, split, overrides.get(name))
    return result


def _from_file(name: str, path: Path, model_labels: list[str], split: str, text_column: str, label_column: str,
               max_examples: int | None) -> TaskData:
    """An evaluation file read against the model's labels: an unknown label names its line."""
    files = DataFiles(train=str(path), text_column=text_column, label_column=label_column)
    texts, labels, lines = read_file_split(path, files)
    position = {label: i for i, label in enumerate(model_labels)}
    for label, line in zip(labels, lines):
        if label not in position:
            raise InputError(f"label {label!r} is unknown to the model's task {name!r} (it knows {', '.join(model_labels)})",
                             file=path, line=line, field=label_column)
    if max_examples is not None:
        texts, labels = texts[:max_examples], labels[:max_examples]
    return TaskData(name, list(model_labels), {split: texts}, {split: [position[x] for x in labels]}, str(path), None)


def _align_labels(data: TaskData, model_labels: list[str], split: str, file: str | None) -> TaskData:
    """Re-index labels to the model's order; a label the model does not know is an error."""
    if not data.has(split):
        raise InputError(f"task {data.name!r} has no {split} split", file=file)
    position = {label: i for i, label in enumerate(model_labels)}
    names = [data.label_names[i] for i in data.labels[split]]
    missing = sorted(set(names) - set(position))
    if missing:
        raise InputError(f"labels {missing} of task {data.name!r} are unknown to the model (it knows {model_labels})", file=file)
    labels = dict(data.labels)
    labels[split] = [position[n] for n in names]
    return TaskData(data.name, list(model_labels), data.texts, labels, data.source, data.source_spec)
