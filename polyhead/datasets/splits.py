"""Fixed, stratified, seeded 80/10/10 splits: the same on every machine."""

from __future__ import annotations

from .types import TextClassificationSplit

SPLIT_SEED = 20261122
"""Seed of every built-in split; changing it changes every published figure."""


def stratified_splits(
    texts: list[str], labels: list[str], seed: int = SPLIT_SEED, *, stratify: bool = True
) -> dict[str, TextClassificationSplit]:
    """80% train, 10% validation, 10% test, each with the label proportions of the whole.

    `stratify=False` splits at random: the only choice when a class is too rare to appear
    in every part (scikit-learn refuses to stratify a class with a single example).
    """
    from sklearn.model_selection import train_test_split  # imported here: config checks stay fast

    indices = list(range(len(texts)))
    train_idx, rest_idx = train_test_split(indices, test_size=0.2, random_state=seed, stratify=labels if stratify else None)
    rest_labels = [labels[i] for i in rest_idx]
    val_idx, test_idx = train_test_split(rest_idx, test_size=0.5, random_state=seed, stratify=rest_labels if stratify else None)

    def take(idx: list[int]) -> TextClassificationSplit:
        ordered = sorted(idx)
        return TextClassificationSplit([texts[i] for i in ordered], [labels[i] for i in ordered])

    return {"train": take(train_idx), "validation": take(val_idx), "test": take(test_idx)}
