"""A task's data from Hugging Face `datasets`: a `save_to_disk` directory, a hub name, or a DatasetDict from Python.

`datasets` is an optional extra (`pip install 'polyhead[datasets]'`) imported only when a task
uses it, so `polyhead --help` and config errors stay fast. Every row is checked as a file's
records are, and an error names the dataset, split, row (0-based, as `dataset[split][row]`) and
field. A ClassLabel column keeps its class names in its own order, so class i of the head is
the dataset's label id i.
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
from .config import HF_IN_MEMORY, HF_SPLITS, HFDataset
from ..tasks.classification import label_text as _label_text
from .data import carve_validation

EXTRA = "pip install 'polyhead[datasets]'"


def _import_datasets(task: str) -> ModuleType:
    try:
        import datasets
    except ImportError:
        raise InputError(f"task {task!r} reads a Hugging Face dataset, which needs the optional package 'datasets': {EXTRA}",
                         field=f"tasks.{task}.data.hf") from None
    return datasets


def read_hf_task(task: str, source: HFDataset, base: Path) -> tuple[list[str], dict[str, TextClassificationSplit], str, dict | None]:
    """(label names, splits with string labels, a readable source, the spec the saved model records)."""
    hf = _import_datasets(task)
    dataset, shown, spec = _open(task, source, base, hf)
    chosen = _choose_splits(dataset, source, shown)
    read = {split: _read_split(dataset[name], f"dataset {shown}, split {name}", source, hf) for split, name in chosen.items()}
    train_texts, train_labels, class_names = read["train"]
    seen = set(train_labels)
    label_names = list(class_names) if class_names is not None else sorted(seen)
    if len(seen) < 2:
        raise InputError(f"task {task!r} needs at least 2 distinct labels in training, found {sorted(seen)}",
                         file=f"dataset {shown}, split {chosen['train']}", field=source.label_column)
    if class_names is None:
        _check_fractional(train_labels, f"dataset {shown}, split {chosen['train']}", source.label_column)
    splits: dict[str, TextClassificationSplit] = {"train": TextClassificationSplit(train_texts, train_labels)}
    known = set(label_names)
    for split in ("validation", "test"):
        if split not in read:
            continue
        texts, labels, _ = read[split]
        for row, label in enumerate(labels):
            if label not in known:
                raise InputError(f"label {label!r} never appears in the training split ({chosen['train']}); known labels: {', '.join(label_names)}",
                                 file=f"dataset {shown}, split {chosen[split]}, row {row}", field=source.label_column)
        splits[split] = TextClassificationSplit(texts, labels)
    if "validation" not in splits:
        carved = carve_validation(train_texts, train_labels, f"dataset {shown}")  # type: ignore[arg-type]
        splits["train"] = TextClassificationSplit(carved["train"].texts + carved["test"].texts, carved["train"].labels + carved["test"].labels)
        splits["validation"] = carved["validation"]
    if spec is not None:
        spec["splits"] = dict(chosen)
    return label_names, splits, shown, spec


def _open(task: str, source: HFDataset, base: Path, hf: ModuleType) -> tuple[Any, str, dict | None]:
    """The DatasetDict, how errors name it, and its spec (None for an object: a saved model cannot reload it)."""
    where = f"tasks.{task}.data.hf"
    if not isinstance(source.hf, str):
        return _as_dict(source.hf, hf, where), f"{task!r} (passed from Python)", None
    if source.hf == HF_IN_MEMORY:
        raise InputError(f"task {task!r} was trained on a dataset passed from Python, which config.yaml cannot hold; "
                         "resume from Python: polyhead.training.train(config, resume=True) with the same dataset in the config", field=where)
    spec = {"hf": source.hf, "config": source.config, "splits": None, "text_column": source.text_column, "label_column": source.label_column}
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


def _read_split(split: Any, where: str, source: HFDataset, hf: ModuleType) -> tuple[list[str], list[str], list[str] | None]:
    """Texts, labels as class names, and the ClassLabel's names when the label column is one."""
    for column in (source.text_column, source.label_column):
        if column not in split.column_names:
            raise InputError(f"missing column; the split has {', '.join(split.column_names)}", file=where, field=column)
    if len(split) == 0:
        raise InputError("no rows", file=where)
    table = split.with_format("arrow")  # whole columns at once: row by row is ~100 times slower
    texts, raw = table[source.text_column].to_pylist(), table[source.label_column].to_pylist()
    feature = split.features[source.label_column]
    names = list(feature.names) if isinstance(feature, hf.ClassLabel) else None
    labels: list[str] = []
    for row, (text, label) in enumerate(zip(texts, raw)):
        at = f"{where}, row {row}"
        if not isinstance(text, str):
            raise InputError(f"expected a string, got {type(text).__name__}", file=at, field=source.text_column)
        if not text.strip():
            raise InputError("empty text", file=at, field=source.text_column)
        if names is not None:
            if label is None or not 0 <= label < len(names):
                raise InputError(f"no class label ({label}; -1 marks an unlabelled row, as in many hub test splits): "
                                 "map only labelled splits in splits", file=at, field=source.label_column)
            labels.append(names[label])
            continue
        if label is None or (isinstance(label, str) and not label.strip()):
            raise InputError("empty label", file=at, field=source.label_column)
        if isinstance(label, (dict, list)):
            raise InputError(f"a label must be a single value, got {type(label).__name__}", file=at, field=source.label_column)
        labels.append(_label_text(label))
    return texts, labels, names


def _check_fractional(labels: list[str], where: str, column: str) -> None:
    """As for files: fractional numbers are a regression target, which a classification head cannot learn."""
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return
    for row, (value, label) in enumerate(zip(values, labels)):
        if not value.is_integer():
            raise InputError(f"label {label!r} is a fractional number: this looks like a regression target, and polyhead's tasks "
                             "are classification; bin the values into classes or round them", file=f"{where}, row {row}", field=column)
