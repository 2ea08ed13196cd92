"""Dataset containers shared by the built-in datasets and user files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class TextClassificationSplit:
    """Texts and their targets, aligned by position: class names, or what the task's kind reads (numbers, label lists)."""

    texts: list[str]
    labels: list

    def __len__(self) -> int:
        return len(self.texts)

    def label_counts(self) -> Counter:
        return Counter(self.labels)

    def head(self, n: int) -> "TextClassificationSplit":
        return TextClassificationSplit(self.texts[:n], self.labels[:n])


@dataclass(frozen=True)
class TextClassificationDataset:
    """A task's three splits and its output names: class names (sorted, fixed), or a regression's target names."""

    name: str
    label_names: list[str]
    splits: dict[str, TextClassificationSplit]
    source: Path | None = None
    dropped_empty: int = 0
    """Rows dropped because their text was empty."""
    notes: dict[str, str] = field(default_factory=dict)
    kind: str = "classification"
    """The task kind (polyhead.tasks) its targets are for."""

    @property
    def train(self) -> TextClassificationSplit:
        return self.splits["train"]

    @property
    def validation(self) -> TextClassificationSplit:
        return self.splits["validation"]

    @property
    def test(self) -> TextClassificationSplit:
        return self.splits["test"]

    def split(self, name: str) -> TextClassificationSplit:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {name!r}; it has {', '.join(self.splits)}")
        return self.splits[name]

    def sizes(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.splits.items()}


@dataclass(frozen=True)
class SimilarityDataset:
    """Documents and human similarity ratings of document pairs (i < j)."""

    name: str
    documents: list[str]
    pairs: list[tuple[int, int, float]]
