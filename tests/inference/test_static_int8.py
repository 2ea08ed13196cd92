"""Calibrated int8: the sensitivity search meets its budget, and the recorded cost holds on other texts."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.inference import OnnxEncoder, OnnxManifest, export_onnx
from polyhead.inference.cost import label_changes
from polyhead.inference.export import ExportOptions
from polyhead.inference.static_int8 import Int8Budget, StaticInt8Options
from polyhead.similarity import row_cosines

BUDGET = Int8Budget(min_cosine=0.99, mean_cosine=0.998)


@pytest.fixture(scope="module")
def calibrated(tiny_st_dir, rt_texts, tmp_path_factory):
    """The tiny BERT exported with a static int8 graph: 32 calibration texts, 32 probe texts, cost on 60 more."""
    out = tmp_path_factory.mktemp("static") / "onnx"
    options = ExportOptions(
        quantize=True,
        reference_texts=rt_texts[:60],
        reference_source="rt train 0-60",
        int8=StaticInt8Options(calibration_texts=32, probe_texts=32, budget=BUDGET),
    )
    export_onnx(tiny_st_dir, out, options)
    return out


def test_static_graph_records_method_calibration_and_budget(calibrated):
    cost = OnnxManifest.load(calibrated).graphs["int8"].cost
    assert cost.method == "static" and cost.texts == 60 and cost.source == "rt train 0-60"
    assert "rotten_tomatoes:sentiment train" in cost.calibration
    assert cost.budget == {"min_cosine": 0.99, "mean_cosine": 0.998}
    assert 0.0 <= cost.int8_share <= 1.0
    assert cost.min_cosine >= BUDGET.min_cosine - 0.01 and cost.mean_cosine >= BUDGET.mean_cosine - 0.002
    assert "static int8" in cost.summary()
    assert cost.budget_met == (cost.min_cosine >= 0.99 and cost.mean_cosine >= 0.998)


def test_outputs_on_other_texts_stay_within_the_recorded_cost(calibrated, rt_texts):
    cost = OnnxManifest.load(calibrated).graphs["int8"].cost
    others = rt_texts[100:200]
    encoder = OnnxEncoder(calibrated)
    cosines = row_cosines(encoder.encode(others, backend="onnx-int8"), encoder.encode(others))
    # Other texts are not the measured ones: allow them a small margin below the recorded figures.
    assert cosines.min() >= cost.min_cosine - 0.01
    assert cosines.mean() >= cost.mean_cosine - 0.002


def test_auto_takes_int8_only_within_the_users_budget(calibrated):
    cost = OnnxManifest.load(calibrated).graphs["int8"].cost
    assert OnnxEncoder(calibrated, backend="auto").backend == "onnx"  # no budget given: never int8
    assert OnnxEncoder(calibrated, backend="auto", max_int8_loss=cost.loss + 1e-6).backend == "onnx-int8"
    assert OnnxEncoder(calibrated, backend="auto", max_int8_loss=cost.loss / 2 - 1e-9).backend == "onnx"


def test_label_changes_per_task_kind():
    before = {"probabilities_0": np.array([[0.9, 0.1], [0.4, 0.6]]), "probabilities_1": np.array([[0.7, 0.2], [0.1, 0.9]]),
              "probabilities_2": np.array([[3.0], [4.0]])}
    after = {"probabilities_0": np.array([[0.6, 0.4], [0.6, 0.4]]), "probabilities_1": np.array([[0.7, 0.6], [0.1, 0.9]]),
             "probabilities_2": np.array([[3.5], [4.0]])}
    tasks = [{"name": "sentiment"}, {"name": "tags", "kind": "multilabel", "state": {"thresholds": [0.5, 0.5]}},
             {"name": "value", "kind": "regression"}]
    assert label_changes(before, after, list(before), tasks) == {"sentiment": 0.5, "tags": 0.5}


def test_budget_is_checked():
    with pytest.raises(ValueError, match="min_cosine"):
        Int8Budget(min_cosine=1.5)
    with pytest.raises(ValueError, match="int8_method"):
        ExportOptions(int8_method="fast")
