"""Where a task's data comes from: files (one per split) or a Hugging Face dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError


@dataclass
class DataFiles:
    """A task's data as files: .csv, .jsonl or .parquet, one file per split."""

    train: str
    """Training file."""
    validation: str | None = None
    """Validation file; None carves a stratified 10% out of the training file."""
    test: str | None = None
    """Test file; None means the task has no test metrics."""
    text_column: str = "text"
    """Column holding the text."""
    label_column: str | list[str] = "label"
    """Column holding the target: a class name (any scalar, compared as a string), a list of labels (multilabel),
    or a number; a regression task may name several columns (one target each)."""
    label_separator: str = "|"
    """Separates the labels of one text in a CSV cell (`news|sports`) of a multilabel task."""
    pair_column: str = "text_pair"
    """Column holding the second text of a pair task (a contrastive task's positive)."""

    def __post_init__(self) -> None:
        if isinstance(self.label_column, list) and not self.label_column:
            raise InputError("name at least one column", field="label_column")
        if not self.label_separator:
            raise InputError("must not be empty", field="label_separator")


HF_SPLITS = ("train", "validation", "test")
HF_IN_MEMORY = "<a dataset passed from Python>"
"""What config.yaml records for a dataset object given in Python: YAML cannot hold the data itself."""


@dataclass
class HFDataset:
    """A task's data as a Hugging Face `datasets` dataset (needs `pip install 'polyhead[datasets]'`)."""

    hf: str | Any
    """A directory written by `save_to_disk` (relative to the config file), a hub name (`imdb`, `owner/name`),
    or, from Python, a `datasets.DatasetDict` (or a `Dataset`, used as the training split)."""
    config: str | None = None
    """The hub dataset's configuration (subset), e.g. `sst2` of `glue`."""
    splits: dict[str, str] | None = None
    """polyhead split (train, validation, test) -> the dataset's split name; None takes train, validation and
    test where the dataset has them. Without validation a stratified 10% of train is carved out."""
    text_column: str = "text"
    """Column holding the text."""
    label_column: str | list[str] = "label"
    """Column holding the target as the task's kind reads it (a class, a list of labels, a number; a regression task
    may name several columns); a ClassLabel (or a list of ClassLabels) keeps its class names, in its order."""
    pair_column: str = "text_pair"
    """Column holding the second text of a pair task (a contrastive task's positive)."""
    download: bool = False
    """Let a hub name be fetched from the Hugging Face Hub (network); off, only local directories and the cache are read."""

    def __post_init__(self) -> None:
        if isinstance(self.hf, str) and not self.hf.strip():
            raise InputError("hf must name a directory or a hub dataset, got an empty string")
        if self.splits is not None:
            unknown = sorted(set(self.splits) - set(HF_SPLITS))
            if unknown:
                raise InputError(f"splits: unknown split {unknown[0]!r}; map any of {', '.join(HF_SPLITS)} to the dataset's split names")
            if "train" not in self.splits:
                raise InputError("splits must map train (e.g. splits: {train: train, test: test})")
