"""Each kind's loss, outputs and metrics against values worked out by hand on a tiny batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polyhead.task_spec import TaskSpec
from polyhead.tasks import KIND_NAMES, get_kind


def test_the_built_in_kinds_are_registered():
    assert {"classification", "regression", "multilabel", "contrastive", "pair_classification", "pair_regression"} <= set(KIND_NAMES)
    assert get_kind(None).name == "classification"  # models saved before kinds existed
    with pytest.raises(KeyError, match="unknown task kind"):
        get_kind("ranking")


def test_classification_loss_outputs_and_answer():
    kind, spec = get_kind("classification"), TaskSpec("t", ["neg", "pos"])
    logits = torch.tensor([[0.0, math.log(3.0)]])
    assert kind.loss(logits, torch.tensor([1]), spec).item() == pytest.approx(-math.log(0.75))
    probabilities = kind.outputs(logits, spec)
    assert probabilities.tolist()[0] == pytest.approx([0.25, 0.75])
    answer = kind.answer(probabilities.tolist()[0], spec)
    assert answer["label"] == "pos" and answer["probability"] == pytest.approx(0.75)
    metrics = kind.metrics(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 1], spec)
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["score"] == metrics["macro_f1"]


def test_regression_learns_standardized_targets_and_answers_in_their_units():
    kind = get_kind("regression")
    spec = TaskSpec("price", ["value"], kind="regression", state={"mean": [2.0], "std": [2.0]})
    logits, targets = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [6.0]])
    # standardized targets (2-2)/2 = 0 and (6-2)/2 = 2: squared errors 0 and 1
    assert kind.loss(logits, targets, spec).item() == pytest.approx(0.5)
    outputs = kind.outputs(logits, spec)
    assert outputs.ravel().tolist() == pytest.approx([2.0, 4.0])
    metrics = kind.metrics(outputs.numpy(), [[2.0], [6.0]], spec)
    assert metrics["rmse"] == pytest.approx(math.sqrt(2.0)) and metrics["mae"] == pytest.approx(1.0)
    assert metrics["r2"] == pytest.approx(1 - 4 / 8) and metrics["score"] == metrics["spearman"] == pytest.approx(1.0)
    assert kind.answer([4.0], spec) == {"value": 4.0, "values": {"value": 4.0}}


def test_regression_huber_loss_is_linear_beyond_one_standard_deviation():
    kind = get_kind("regression")
    spec = TaskSpec("price", ["value"], kind="regression", state={"mean": [2.0], "std": [2.0], "loss": "huber"})
    logits, targets = torch.tensor([[0.0], [1.0], [0.0]]), torch.tensor([[2.0], [6.0], [10.0]])
    # standardized errors 0, 1 and 4: Huber (delta 1) gives 0, 0.5 * 1 = 0.5 and 1 * (4 - 0.5) = 3.5
    assert kind.loss(logits, targets, spec).item() == pytest.approx((0 + 0.5 + 3.5) / 3)
    spec.state["loss"] = "mse"
    assert kind.loss(logits, targets, spec).item() == pytest.approx((0 + 1 + 16) / 3)


def test_a_loss_the_kind_does_not_offer_is_an_error_naming_the_field():
    from polyhead.errors import InputError
    from polyhead.training.config import config_from_dict

    with pytest.raises(InputError, match="no loss 'huber'.*one fixed loss") as caught:
        config_from_dict({"tasks": {"t": {"kind": "classification", "loss": "huber"}}})
    assert "loss" in str(caught.value)
    with pytest.raises(InputError, match="choose one of mse, huber"):
        config_from_dict({"tasks": {"t": {"kind": "regression", "loss": "l1"}}})
    config = config_from_dict({"tasks": {"t": {"kind": "regression", "loss": "huber"}}})
    assert config.tasks["t"].loss == "huber"


def test_regression_fit_scales_each_target_and_refuses_a_constant_one():
    from polyhead.errors import InputError
    from polyhead.tasks import TargetColumns, Where

    kind = get_kind("regression")
    names, state = kind.fit([[1.0, 10.0], [3.0, 30.0]], TargetColumns(("a", "b")), Where("f.csv"))
    assert names == ["a", "b"] and state == {"mean": [2.0, 20.0], "std": [1.0, 10.0]}
    with pytest.raises(InputError, match="same value") as caught:
        kind.fit([[1.0], [1.0]], TargetColumns(("a",)), Where("f.csv"))
    assert caught.value.field == "a"


def test_multilabel_loss_metrics_and_thresholds():
    kind = get_kind("multilabel")
    spec = TaskSpec("tags", ["a", "b"], kind="multilabel", state={"thresholds": [0.5, 0.5]})
    targets = kind.target_tensor([[0], [1]], spec)
    assert targets.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert kind.loss(torch.zeros(2, 2), targets, spec).item() == pytest.approx(math.log(2.0))
    outputs = np.array([[0.9, 0.2], [0.6, 0.7]])  # predicted {a}, {a, b}; true {a}, {b}
    metrics = kind.metrics(outputs, [[0], [1]], spec)
    assert metrics["subset_accuracy"] == pytest.approx(0.5)
    assert metrics["hamming_loss"] == pytest.approx(0.25)
    assert metrics["micro_f1"] == pytest.approx(0.8)  # tp 2, fp 1, fn 0
    assert metrics["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert kind.answer([0.9, 0.2], spec) == {"labels": ["a"], "probabilities": {"a": 0.9, "b": 0.2}}
    # On validation, a's threshold moves above 0.6 (the false positive) and below 0.9 (the true one).
    tuned = kind.tune(outputs, [[0], [1]], spec)["thresholds"]
    assert 0.6 < tuned[0] <= 0.9 and tuned[1] <= 0.7
    spec.state = {"thresholds": tuned}
    assert kind.metrics(outputs, [[0], [1]], spec)["subset_accuracy"] == 1.0


def test_multilabel_thresholds_are_each_labels_best_f1_on_the_grid_nearest_half_on_ties():
    """The one-call-per-threshold tuning picks what scoring each label and threshold on its own picks."""
    from sklearn.metrics import f1_score

    from polyhead.tasks.multilabel import DEFAULT_THRESHOLD, THRESHOLD_GRID

    kind, rng = get_kind("multilabel"), np.random.default_rng(7)
    truth = (rng.random((120, 12)) < np.linspace(0.02, 0.6, 12)).astype(int)
    truth[:, 3] = 0  # a label with no positives keeps the default
    outputs = np.clip(truth * rng.random(truth.shape) * 0.7 + rng.random(truth.shape) * 0.5, 0, 1)
    spec = TaskSpec("tags", [f"l{i}" for i in range(12)], kind="multilabel")
    tuned = kind.tune(outputs, [list(np.flatnonzero(row)) for row in truth], spec)["thresholds"]
    expected = [max((f1_score(truth[:, i], outputs[:, i] >= t, zero_division=0), -abs(t - 0.5), float(t)) for t in THRESHOLD_GRID)[2]
                if truth[:, i].any() else DEFAULT_THRESHOLD for i in range(12)]
    assert tuned == expected and tuned[3] == DEFAULT_THRESHOLD and len(set(tuned)) > 2


def test_multilabel_reads_lists_and_separated_strings():
    from polyhead.tasks import TargetColumns, Where

    kind, columns = get_kind("multilabel"), TargetColumns(("tags",), "|")
    assert kind.parse({"tags": ["b", "a", "a"]}, columns, Where()) == ["a", "b"]
    assert kind.parse({"tags": "news| sports"}, columns, Where()) == ["news", "sports"]
    assert kind.parse({"tags": ""}, columns, Where()) == []


def test_contrastive_loss_is_cross_entropy_over_the_batch_positives():
    import torch.nn.functional as F

    kind, spec = get_kind("contrastive"), TaskSpec("qa", [], kind="contrastive")
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    logits = kind.logits(None, [anchors, positives])
    cosine = torch.tensor([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]])
    assert torch.allclose(logits, 20.0 * cosine, atol=1e-5)
    expected = F.cross_entropy(20.0 * cosine, torch.tensor([0, 1]))
    assert kind.loss(logits, torch.tensor([0, 1]), spec).item() == pytest.approx(expected.item(), rel=1e-5)
    # the same positive twice in a batch is not a negative of itself
    same = kind.loss(logits, torch.tensor([0, 0]), spec).item()
    assert same == pytest.approx(0.0, abs=1e-6)


def test_contrastive_metrics_rank_against_the_distinct_positives():
    kind, spec = get_kind("contrastive"), TaskSpec("qa", [], kind="contrastive")
    assert kind.index(["paris", "rome", "paris", "oslo"], []) == [0, 1, 0, 3]
    # rows: anchors; columns: the positives of each pair (column 2 repeats "paris")
    similarity = np.array([[0.9, 0.1, 0.9, 0.2],    # finds paris first: rank 1
                           [0.8, 0.5, 0.8, 0.1],    # rome ranked after paris: rank 2
                           [0.3, 0.4, 0.3, 0.1],    # paris after rome: rank 2
                           [0.1, 0.2, 0.1, 0.05]])  # oslo last of 3 distinct: rank 3
    metrics = kind.metrics(similarity, [0, 1, 0, 3], spec)
    assert metrics["corpus"] == 3 and metrics["recall_at_1"] == pytest.approx(0.25)
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0.5 + 1 / 3) / 4) and metrics["score"] == metrics["mrr"]


def test_cosent_loss_orders_pairs_by_their_rating():
    kind, spec = get_kind("pair_regression"), TaskSpec("sim", ["similarity"], kind="pair_regression")
    cosines = torch.tensor([0.9, 0.1])
    # rated 1.0 and 0.0: the higher-rated pair already has the higher cosine, so the loss is log(1 + e^-16)
    assert kind.loss(cosines, torch.tensor([1.0, 0.0]), spec).item() == pytest.approx(math.log1p(math.exp(-16.0)), abs=1e-6)
    assert kind.loss(cosines, torch.tensor([0.0, 1.0]), spec).item() == pytest.approx(math.log1p(math.exp(16.0)), rel=1e-5)
    assert kind.loss(cosines, torch.tensor([0.5, 0.5]), spec).item() == pytest.approx(0.0)  # no ordered pair: log(1)
    u, v = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert kind.logits(None, [u, v]).item() == pytest.approx(1 / math.sqrt(2))
    metrics = kind.metrics(np.array([[0.9], [0.5], [0.1]]), [3.0, 2.0, 1.0], spec)
    assert metrics["spearman"] == pytest.approx(1.0) and metrics["score"] == metrics["spearman"]


def test_pair_classification_head_sees_u_v_difference_and_product():
    from polyhead.heads import HeadConfig

    kind, spec = get_kind("pair_classification"), TaskSpec("nli", ["no", "yes"], kind="pair_classification")
    head = kind.make_head(HeadConfig(type="linear", dropout=0.0), 3, spec.labels)
    assert head.layers[-1].in_features == 12 and head.layers[-1].out_features == 2
    u, v = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])
    from polyhead.tasks.pairs import pair_features

    assert pair_features([u, v]).tolist() == [[1.0, 2.0, 3.0, 3.0, 2.0, 1.0, 2.0, 0.0, 2.0, 3.0, 4.0, 3.0]]
    assert kind.logits(head, [u, v]).shape == (1, 2) and not kind.answers_single_texts


def test_each_kind_has_a_distillation_loss_that_is_zero_only_at_the_teacher():
    import torch

    from polyhead.task_spec import TaskSpec

    torch.manual_seed(0)
    for kind_name, outputs in (("classification", 3), ("multilabel", 4), ("regression", 2)):
        kind, spec = get_kind(kind_name), TaskSpec("t", [f"o{i}" for i in range(outputs)], kind=kind_name)
        teacher = torch.randn(8, outputs)
        same = kind.distillation_loss(teacher.clone(), teacher, spec, 2.0)
        moved = kind.distillation_loss(teacher + torch.randn(8, outputs), teacher, spec, 2.0)
        assert moved > same + 1e-3, kind_name
        if kind_name != "multilabel":  # soft binary targets keep their own entropy: the minimum is not 0
            assert float(same) == pytest.approx(0.0, abs=1e-6), kind_name
