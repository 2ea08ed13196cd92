"""Class weights as scikit-learn computes them, and the losses that use them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from polyhead import datasets
from polyhead.errors import InputError
from polyhead.tasks import get_kind
from polyhead.task_spec import TaskSpec


@pytest.fixture(scope="module")
def disaster():
    data = datasets.get("disaster_response")
    kind = get_kind("multilabel")
    return kind, data.label_names, kind.index(list(data.splits["train"].labels[:3000]), data.label_names)


def test_balanced_class_weights_are_scikit_learns():
    """Real Rotten Tomatoes labels with `rotten` cut to a tenth."""
    data = datasets.get("rotten_tomatoes:sentiment")
    labels = [label for i, label in enumerate(data.splits["train"].labels) if label == "fresh" or i % 10 == 0]
    kind = get_kind("classification")
    stored = kind.index(labels, data.label_names)
    weights = kind.class_weights(stored, data.label_names, "balanced", "f")
    expected = compute_class_weight("balanced", classes=np.arange(len(data.label_names)), y=np.asarray(stored))
    assert torch.allclose(weights, torch.tensor(expected, dtype=torch.float32))
    assert weights[data.label_names.index("rotten")] > 4 * weights[data.label_names.index("fresh")]
    assert kind.class_counts(stored, data.label_names) == np.bincount(stored).tolist()


def test_multilabel_balanced_weights_are_each_labels_two_class_balance(disaster):
    kind, labels, stored = disaster
    weights = kind.class_weights(stored, labels, "balanced", "f")
    hot = np.zeros((len(stored), len(labels)), dtype=int)
    for row, indices in enumerate(stored):
        hot[row, indices] = 1
    for i in range(len(labels)):
        if 0 < hot[:, i].sum() < len(hot):
            expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=hot[:, i])
            assert weights[:, i].tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    rare = int(np.argmin(hot.sum(axis=0) + (hot.sum(axis=0) == 0) * 10**9))
    assert weights[1, rare] > 10 * weights[0, rare]  # a rare label's positives weigh much more than its negatives
    assert kind.class_counts(stored, labels) == hot.sum(axis=0).tolist()


def test_a_mapping_weighs_the_labels_it_names_and_leaves_the_rest_at_one(disaster):
    kind, labels, stored = disaster
    weights = kind.class_weights(stored, labels, {"fire": 3.0}, "tasks.d.class_weights")
    assert weights[1, labels.index("fire")] == 3.0 and weights[0].eq(1).all() and weights[1].sum() == len(labels) + 2
    cls = get_kind("classification")
    assert cls.class_weights([0, 1, 1], ["a", "b"], {"b": 0.5}, "f").tolist() == [1.0, 0.5]
    with pytest.raises(InputError, match="'c' is not one of the task's labels") as error:
        cls.class_weights([0, 1], ["a", "b"], {"c": 2.0}, "tasks.t.class_weights")
    assert error.value.field == "tasks.t.class_weights.c"


def test_weighted_losses():
    torch.manual_seed(0)
    cls = get_kind("classification")
    spec = TaskSpec("t", ["a", "b", "c"])
    logits, targets = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    weights = torch.tensor([0.5, 2.0, 2.0])
    per_example = F.cross_entropy(logits, targets, reduction="none") * weights[targets]
    assert torch.allclose(cls.loss(logits, targets, spec, weights), per_example.sum() / weights[targets].sum())
    assert torch.allclose(cls.loss(logits, targets, spec), F.cross_entropy(logits, targets))

    multi = get_kind("multilabel")
    logits, hot = torch.randn(5, 2), torch.tensor([[1, 0], [0, 0], [0, 1], [0, 0], [1, 1]], dtype=torch.float32)
    pair = torch.tensor([[0.6, 0.7], [3.0, 2.0]])  # [negative weight, positive weight] per label
    terms = F.binary_cross_entropy_with_logits(logits, hot, reduction="none") * torch.where(hot == 1, pair[1], pair[0])
    assert torch.allclose(multi.loss(logits, hot, TaskSpec("m", ["x", "y"], kind="multilabel"), pair), terms.mean())


@pytest.mark.parametrize("kind", ["regression", "contrastive"])
def test_kinds_without_classes_refuse_class_weights(kind):
    assert get_kind(kind).class_counts([1.0, 2.0], ["v"]) is None
    with pytest.raises(InputError, match="no classes to weigh"):
        get_kind(kind).class_weights([1.0, 2.0], ["v"], "balanced", "tasks.v.class_weights")
