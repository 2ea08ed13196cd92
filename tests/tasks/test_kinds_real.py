"""The real default model learns a regression and a multi-label task on real data (small slices, frozen encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from polyhead.training import load_config, train

from ..training.conftest import write_config


pytestmark = pytest.mark.slow  # the real model on three real slices: `make test-slow`, run by CI


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds-real")
    config = {
        "model": {"max_seq_length": 64},
        "tasks": {
            "value": {"data": "jeopardy:value", "max_train_examples": 4000, "max_eval_examples": 500},
            "aid": {"data": "disaster_response", "max_train_examples": 1500, "max_eval_examples": 300},
        },
        "freeze": {"backbone": True},  # heads on cached embeddings: seconds of training after one encoding pass
        "training": {"epochs": 6, "batch_size": 32, "eval_every": 47, "log_every": 47, "progress": False},
        "output_dir": str(root / "run"),
    }
    return train(load_config(write_config(root / "config.yaml", config)))


def test_regression_predictions_follow_the_values(trained):
    value = trained.test_metrics["value"]
    assert value["kind"] == "regression" and value["support"] == 500
    assert value["spearman"] > 0.1, value["spearman"]  # frozen embeddings know a little about a clue's difficulty
    assert value["per_target"]["value"]["rmse"] < value["per_target"]["value"]["mean_baseline_rmse"] * 1.05


def test_multilabel_beats_always_answering_the_commonest_label(trained):
    aid = trained.test_metrics["aid"]
    # Answering "related" for every text: precision = its share, recall = its share of all labels.
    related = aid["per_class"]["related"]["support"]
    total = sum(row["support"] for row in aid["per_class"].values())
    baseline = 2 * related / (aid["support"] + total)
    assert aid["micro_f1"] > baseline + 0.05, (aid["micro_f1"], baseline)
    thresholds = np.asarray(aid["thresholds"])
    assert len(thresholds) == 34 and (thresholds != 0.5).any()  # tuned on validation, not left at the default


def test_report_draws_each_kind(trained):
    plots = {p.name for p in (trained.run_dir / "plots").iterdir()}
    assert {"predicted_vs_true_value.png", "label_f1_aid.png"} <= plots
    report = (trained.run_dir / "report.md").read_text()
    assert "Spearman" in report and "micro-F1" in report
