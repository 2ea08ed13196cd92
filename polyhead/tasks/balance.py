"""Class weights for imbalanced tasks, computed as scikit-learn computes them."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def balanced_weights(classes: np.ndarray, count: int) -> list[float]:
    """n / (classes present x each class's count) for the `count` classes (scikit-learn's "balanced"); an absent class weighs 1."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(classes)
    weights = np.ones(count)
    weights[present] = compute_class_weight("balanced", classes=present, y=classes)
    return weights.tolist()


def mapped_weights(mapping: dict[str, float], labels: list[str], field: str) -> list[float]:
    """A label -> weight mapping in head order; labels it does not name weigh 1."""
    unknown = sorted(set(map(str, mapping)) - set(labels))
    if unknown:
        raise InputError(f"label {unknown[0]!r} is not one of the task's labels ({', '.join(labels)})", field=f"{field}.{unknown[0]}")
    return [float(mapping.get(label, 1.0)) for label in labels]
