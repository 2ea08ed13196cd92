"""A task's data from Hugging Face `datasets`: a `save_to_disk` directory, a hub name, or a DatasetDict from Python.

`datasets` is an optional extra (`pip install 'polyhead[datasets]'`) imported only when a task
uses it, so `polyhead --help` and config errors stay fast. Every row is checked as a file's
records are, by the task's kind (any kind: classification, regression, multi-label, pairs,
contrastive), and an error names the dataset, split, row (0-based, as `dataset[split][row]`) and
field. A ClassLabel column (or a list of ClassLabels) keeps its class names in its own order, so
output i of the head is the dataset's label id i.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from ..datasets import TextClassificationSplit
from ..errors import InputError
from ..tasks import TaskKind
from .data_sources import HF_IN_MEMORY, HF_SPLITS, HFDataset
from .data import fit_splits, read_records, record_columns, target_columns

EXTRA = "pip install 'polyhead[datasets]'"


def _import_datasets(task: str) -> ModuleType:
    try:
        import datasets
    except ImportError:
        raise InputError(f"task {task!r} reads a Hugging Face dataset, which needs the optional package 'datasets': {EXTRA}",
                         field=f"tasks.{task}.data.hf") from None
    return datasets


def read_hf_task(task: str, source: HFDataset, base: Path, kind: TaskKind
                 ) -> tuple[list[str], dict, dict[str, TextClassificationSplit], str, dict | None]:
    """(output names, the kind's fitted state, splits, a readable source, the spec the saved model records).

    Rows are read, parsed and checked by the task's kind exactly as a file's records are; an error's
    place is the dataset, split and row.
    """
    hf = _import_datasets(task)
    dataset, shown, spec = _open(task, source, base, hf)
    chosen = _choose_splits(dataset, source, shown)
    where = {split: f"dataset {shown}, split {name}" for split, name in chosen.items()}
    with _rows_named():
        read, orders = {}, {}
        for split, name in chosen.items():
            records, orders[split] = _records(dataset[name], where[split], source, kind, hf)
            read[split] = read_records(records, source, kind, where[split])
        label_names, state, splits = fit_splits(kind, source, read, where, orders["train"])
    if spec is not None:
        spec["splits"] = dict(chosen)
    return label_names, state, splits, shown, spec


@contextlib.contextmanager
def _rows_named() -> Iterator[None]:
    """A dataset's records are rows, not lines: "dataset X, split Y, row N" instead of "dataset X, split Y:N"."""
    try:
        yield
    except InputError as error:
        if error.line is None or error.file is None:
            raise
        raise InputError(error.reason, file=f"{error.file}, row {error.line}", field=error.field) from None


def _open(task: str, source: HFDataset, base: Path, hf: ModuleType) -> tuple[Any, str, dict | None]:
    """The DatasetDict, how errors name it, and its spec (None for an object: a saved model cannot reload it)."""
    where = f"tasks.{task}.data.hf"
    if not isinstance(source.hf, str):
        return _as_dict(source.hf, hf, where), f"{task!r} (passed from Python)", None
    if source.hf == HF_IN_MEMORY:
        raise InputError(f"task {task!r} was trained on a dataset passed from Python, which config.yaml cannot hold; "
                         "resume from Python: polyhead.training.train(config, resume=True) with the same dataset in the config", field=where)
    spec = {"hf": source.hf, "config": source.config, "splits": None, "text_column": source.text_column, "label_column": source.label_column,
            "pair_column": source.pair_column}
    path = Path(source.hf).expanduser()
    path = path if path.is_absolute() else base / path
    if path.is_dir():
        if source.config is not None:
            raise InputError("config chooses a hub dataset's subset; a save_to_disk directory has none", field=f"tasks.{task}.data.config")
        try:
            loaded = hf.load_from_disk(str(path))
        except FileNotFoundError:
            raise InputError("not a dataset directory written by save_to_disk (no dataset_dict.json or state.json)", file=path) from None
        spec["hf"] = str(path.resolve())
        return _as_dict(loaded, hf, where), str(path), spec
    if _looks_like_a_path(source.hf):
        raise InputError("no such directory (a hub dataset is named `name` or `owner/name`)", file=path)
    return _from_hub(source, hf, where), _hub_name(source), spec


def _looks_like_a_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def _hub_name(source: HFDataset) -> str:
    return f"{source.hf} ({source.config})" if source.config else str(source.hf)


def _from_hub(source: HFDataset, hf: ModuleType, where: str) -> Any:
    """A hub dataset: downloaded only when the config says `download: true`, else read from the local cache."""
    if not source.download:
        with _hub_offline():
            try:
                return _as_dict(hf.load_dataset(source.hf, source.config), hf, where)
            except Exception:  # noqa: BLE001 - not cached: say how to allow the download
                raise InputError(f"{_hub_name(source)!r} is not a local directory nor in the local cache; set "
                                 "download: true to fetch it from the Hugging Face Hub, or give a save_to_disk directory",
                                 field=where) from None
    try:
        loaded = hf.load_dataset(source.hf, source.config)
    except Exception as error:  # noqa: BLE001 - network, unknown name or config: one line for the user
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        hint = ("; the hub is switched off (HF_HUB_OFFLINE) and no copy is cached: where the hub is reachable, "
                "save the dataset with save_to_disk and give that directory") if offline else ""
        raise InputError(f"could not load {_hub_name(source)!r} from the Hugging Face Hub: {reason}{hint}", field=where) from None
    return _as_dict(loaded, hf, where)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """No network for this load (datasets reads its offline switch at call time); the user's setting is restored."""
    import datasets.config

    previous = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = previous


def _as_dict(dataset: Any, hf: ModuleType, where: str) -> Any:
    if isinstance(dataset, hf.DatasetDict):
        return dataset
    if isinstance(dataset, hf.Dataset):
        return hf.DatasetDict({"train": dataset})
    if isinstance(dataset, dict) and dataset and all(isinstance(part, hf.Dataset) for part in dataset.values()):
        return hf.DatasetDict(dataset)  # a plain {split: Dataset}, or a DatasetDict the config reader made plain
    if isinstance(dataset, (hf.IterableDataset, hf.IterableDatasetDict)):
        raise InputError("a streaming (iterable) dataset cannot be split and shuffled for training; load it without streaming=True", field=where)
    raise InputError(f"expected a directory, a hub name or a datasets.DatasetDict, got {type(dataset).__name__}", field=where)


def _choose_splits(dataset: Any, source: HFDataset, shown: str) -> dict[str, str]:
    """polyhead split -> the dataset's split name."""
    have = list(dataset.keys())
    if source.splits is None:
        chosen = {split: split for split in HF_SPLITS if split in dataset}
        if "train" not in chosen:
            raise InputError(f"no split 'train' (it has {', '.join(have)}); name one with splits: {{train: NAME}}", file=f"dataset {shown}")
        return chosen
    for split, name in source.splits.items():
        if name not in dataset:
            raise InputError(f"no split {name!r} (it has {', '.join(have)})", file=f"dataset {shown}", field=f"splits.{split}")
    return dict(source.splits)


def _records(split: Any, where: str, source: HFDataset, kind: TaskKind, hf: ModuleType
             ) -> tuple[Iterator[tuple[int, dict[str, Any]]], list[str] | None]:
    """The split's rows as records (0-based row numbers), class ids as class names; and the ClassLabel's names, if any."""
    needed = record_columns(source, kind)
    label_fields = target_columns(source).columns if kind.reads_label_column else ()
    for column in needed:
        if column not in split.column_names:
            raise InputError(f"missing column; the split has {', '.join(split.column_names)}", file=where, field=column)
    if len(split) == 0:
        raise InputError("no rows", file=where)
    table = split.with_format("arrow")  # whole columns at once: row by row is ~100 times slower
    values = {column: table[column].to_pylist() for column in dict.fromkeys(needed)}
    names = {column: _class_names(split.features[column], hf) for column in label_fields}
    for column, classes in names.items():
        if classes is not None:
            values[column] = [_class_name(value, classes, f"{where}, row {row}", column) for row, value in enumerate(values[column])]
    records = ({column: values[column][row] for column in values} for row in range(len(split)))
    order = next((classes for classes in names.values() if classes is not None), None)
    return enumerate(records), order


def _class_names(feature: Any, hf: ModuleType) -> list[str] | None:
    """A ClassLabel's names, or those of a list of ClassLabels (multi-label); None for other columns."""
    inner = getattr(feature, "feature", None)
    if isinstance(feature, hf.ClassLabel):
        return list(feature.names)
    if isinstance(inner, hf.ClassLabel) or isinstance(feature, list) and feature and isinstance(feature[0], hf.ClassLabel):
        return list((inner if isinstance(inner, hf.ClassLabel) else feature[0]).names)
    return None


def _class_name(value: Any, classes: list[str], at: str, column: str) -> Any:
    if isinstance(value, list):
        return [_class_name(v, classes, at, column) for v in value]
    if value is None or not 0 <= value < len(classes):
        raise InputError(f"no class label ({value}; -1 marks an unlabelled row, as in many hub test splits): "
                         "map only labelled splits in splits", file=at, field=column)
    return classes[value]
