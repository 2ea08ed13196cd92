"""classification_metrics against small cases worked out by hand, and its text renderings."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.metrics import classification_report

from polyhead.metrics import classification_metrics
from polyhead.tasks.tables import format_classification_report, format_metrics_table

# true:  a a a b b c      pred: a a b b b a
# rows = true, cols = predicted: a -> (a 2, b 1), b -> (b 2), c -> (a 1); c is never predicted.
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 1, 0]
NAMES = ["a", "b", "c"]


def test_hand_checked_case() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero_division=0: a never-predicted class must not warn
        m = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["support"] == 6
    assert m["majority_rate"] == pytest.approx(3 / 6)
    assert m["labels"] == NAMES
    a, b, c = (m["per_class"][name] for name in NAMES)
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 3))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((2 / 3, 1.0, 0.8, 2))
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # never predicted: 0, not an error
    assert m["macro_precision"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.8 + 1 * 0) / 6)


def test_per_class_matches_sklearn_report_and_is_plain_json() -> None:
    rng = np.random.default_rng(0)
    names = [f"category {i}" for i in range(40)]
    y_true = rng.integers(0, 40, size=500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 40, size=500))
    m = classification_metrics(y_true, y_pred, names)
    report = classification_report(
        y_true, y_pred, labels=range(40), target_names=names, output_dict=True, zero_division=0
    )
    for name in names:
        for key in ("precision", "recall", "f1"):
            assert m["per_class"][name][key] == pytest.approx(report[name][f"{key}-score" if key == "f1" else key])
        assert m["per_class"][name]["support"] == report[name]["support"]
    assert m["macro_f1"] == pytest.approx(report["macro avg"]["f1-score"])  # every class occurs here
    assert m["weighted_f1"] == pytest.approx(report["weighted avg"]["f1-score"])
    assert json.loads(json.dumps(m)) == m  # no numpy scalars left
    assert m == classification_metrics(y_true.tolist(), y_pred.tolist(), names)


def test_class_absent_from_split_stays_listed_but_out_of_the_macro_average() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, NAMES + ["d"])
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert m["macro_f1"] == pytest.approx(classification_metrics(Y_TRUE, Y_PRED, NAMES)["macro_f1"])


def test_predicted_class_with_no_true_examples_counts_against_macro_precision() -> None:
    m = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], ["a", "b", "c"])
    assert m["per_class"]["c"]["precision"] == 0.0
    assert m["macro_precision"] == pytest.approx((1 + 1 + 0) / 3)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "names", "message"),
    [
        ([0, 1], [0], ["a", "b"], "2 labels but y_pred has 1"),
        ([0, 3], [0, 1], ["a", "b"], "label index 3"),
        ([0, -1], [0, 1], ["a", "b"], "label index -1"),
        ([0.0, 1.0], [0, 1], ["a", "b"], "integer"),
        ([], [], ["a", "b"], "empty"),
        ([[0, 1]], [[0, 1]], ["a", "b"], "flat"),
        ([0, 1], [0, 1], ["a", "a"], "duplicates"),
        ([0], [0], [], "label_names is empty"),
    ],
)
def test_bad_input_is_refused_with_a_reason(y_true, y_pred, names, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, names)


def test_metrics_table_lists_each_task_in_aligned_columns() -> None:
    table = format_metrics_table(
        {
            "topic": classification_metrics(Y_TRUE, Y_PRED, NAMES),
            "sentiment": classification_metrics([0, 1, 1, 1], [0, 1, 1, 0], ["fresh", "rotten"]),
        }
    )
    header, rule, topic, sentiment = table.splitlines()
    assert header.split() == ["task", "accuracy", "macro-F1", "majority", "rate", "support"]
    assert topic.split() == ["topic", "0.667", "0.489", "0.500", "6"]
    assert sentiment.split() == ["sentiment", "0.750", "0.733", "0.750", "4"]
    assert len(header) == len(rule) == len(topic) == len(sentiment)


def test_classification_report_has_a_row_per_class_and_the_averages() -> None:
    text = format_classification_report(classification_metrics(Y_TRUE, Y_PRED, NAMES))
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "F1", "support"]
    assert lines[2].split() == ["a", "0.667", "0.667", "0.667", "3"]
    assert lines[3].split() == ["b", "0.667", "1.000", "0.800", "2"]
    assert lines[4].split() == ["c", "0.000", "0.000", "0.000", "1"]
    assert "macro-F1 0.489" in text and "majority rate 0.500" in text
