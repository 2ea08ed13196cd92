"""Every kind trains together through the one training loop (a tiny random backbone: speed, not quality)."""

from __future__ import annotations

import json

import pytest
import torch

import polyhead
from polyhead.training import load_config, train

from ..training.conftest import small_config, write_config


@pytest.fixture(scope="module")
def four_kinds_run(tiny_bert_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("four-kinds")
    config = small_config(str(tiny_bert_dir), root / "run", tasks=("sentiment",), max_steps=16, eval_every=8)
    small = {"max_train_examples": 200, "max_eval_examples": 60}
    config["tasks"].update({"value": {"data": "jeopardy:value", **small}, "aid": {"data": "disaster_response", **small},
                            "qa": {"data": "jeopardy:answer", **small}, "sim": {"data": "lee:pairs", **small}})
    config["training"]["mixing"] = "round_robin"
    return train(load_config(write_config(root / "config.yaml", config)))


def test_each_kind_is_trained_and_scored(four_kinds_run):
    metrics = four_kinds_run.test_metrics
    assert {task: m["kind"] for task, m in metrics.items()} == {
        "sentiment": "classification", "value": "regression", "aid": "multilabel", "qa": "contrastive", "sim": "pair_regression"}
    assert metrics["qa"]["corpus"] <= 60 and 0 < metrics["qa"]["mrr"] <= 1
    log = [json.loads(line) for line in (four_kinds_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [value for r in log if r["type"] == "train" for value in r["loss"].items()]
    assert {task for task, _ in losses} == {"sentiment", "value", "aid", "qa", "sim"}
    assert all(value == value and value >= 0 for _, value in losses)


def test_the_contrastive_task_changes_the_encoder_and_answers_no_single_text(four_kinds_run, tiny_bert_dir):
    model = polyhead.load(four_kinds_run.model_dir)
    assert sorted(model.answering_tasks) == ["aid", "sentiment", "value"]
    prediction = model.predict(["Water please, we need water"])[0]
    assert set(prediction) == {"sentiment", "value", "aid"}
    with pytest.raises(KeyError, match="answer no single text"):
        model.predict(["x"], tasks=["qa"])
    before = polyhead.SentenceEncoder(str(tiny_bert_dir), device="cpu").encode(["a clue"], output="torch")
    after = model.encoder.encode(["a clue"], output="torch")
    assert not torch.allclose(before, after, atol=1e-4)


def test_evaluate_reads_every_kind_back_from_the_saved_model(four_kinds_run):
    from polyhead.training.evaluation import evaluate_tasks
    from polyhead.training.saved_data import task_data_for_model

    model = polyhead.load(four_kinds_run.model_dir)
    data = task_data_for_model(model, "test", max_examples=60)
    again = evaluate_tasks(model, data, "test")
    for task, metrics in four_kinds_run.test_metrics.items():
        assert again[task]["score"] == pytest.approx(metrics["score"], abs=1e-4), task
