"""Experiment trackers: TensorBoard and MLflow (file store) get metrics.jsonl's scalars and the config, offline."""

from __future__ import annotations

import json

import pytest

from polyhead.errors import InputError
from polyhead.training import train
from polyhead.training.config import config_from_dict
from polyhead.training.trackers import record_scalars
from tests.training.conftest import small_config


def test_tensorboard_and_mlflow_read_back_what_metrics_jsonl_has(tmp_path, tiny_model_dir, monkeypatch):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw = small_config(str(tiny_model_dir("bert")), tmp_path / "run", max_steps=4, eval_every=2, log_every=2,
                       report_to=["tensorboard", "mlflow"])
    result = train(config_from_dict(raw))
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in records if r["type"] == "train"]
    evals = [r for r in records if r["type"] == "eval"]
    assert len(train_lines) == 2 and len(evals) == 2

    accumulators = [EventAccumulator(str(p.parent)) for p in (result.run_dir / "trackers").rglob("events.out.tfevents.*")]
    for accumulator in accumulators:
        accumulator.Reload()
    (events,) = [a for a in accumulators if "train/total_loss" in a.Tags()["scalars"]]
    total = events.Scalars("train/total_loss")
    assert [e.step for e in total] == [r["step"] for r in train_lines]
    assert [e.value for e in total] == pytest.approx([r["total_loss"] for r in train_lines], rel=1e-6)
    for task in ("topic", "sentiment"):  # a task's loss is logged at the steps that drew its batches
        logged = [r for r in train_lines if task in r["loss"]]
        scalars = events.Scalars(f"train/loss/{task}")
        assert [e.step for e in scalars] == [r["step"] for r in logged]
        assert [e.value for e in scalars] == pytest.approx([r["loss"][task] for r in logged], rel=1e-6)
    accuracy = events.Scalars("validation/tasks/sentiment/accuracy")
    assert [e.value for e in accuracy] == pytest.approx([r["tasks"]["sentiment"]["accuracy"] for r in evals], rel=1e-6)
    assert "test/tasks/topic/macro_f1" in events.Tags()["scalars"]

    client = MlflowClient(tracking_uri=(result.run_dir / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "run"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["training.max_steps"] == "4" and run.data.params["tasks.topic.data"] == "jeopardy"
    history = client.get_metric_history(run.info.run_id, "train/total_loss")
    assert [m.value for m in history] == pytest.approx([r["total_loss"] for r in train_lines], rel=1e-6)
    assert run.data.metrics["test/tasks/topic/accuracy"] == pytest.approx(result.test_metrics["topic"]["accuracy"])


def test_unknown_or_missing_tracker_fails_before_training(tmp_path):
    raw = small_config(None, tmp_path / "run", report_to=["tensorbored"])
    with pytest.raises(InputError, match="unknown tracker 'tensorbored'.*tensorboard, mlflow, wandb") as error:
        config_from_dict(raw)
    assert error.value.field == "training.report_to"


def test_scalars_skip_per_class_tables():
    record = {"type": "eval", "step": 3, "split": "validation", "score": 0.5,
              "tasks": {"t": {"accuracy": 0.7, "per_class": {"a": {"f1": 0.1}}, "confusion_matrix": [[1]]}}}
    assert record_scalars(record) == {"validation/score": 0.5, "validation/tasks/t/accuracy": 0.7}
    assert record_scalars({"type": "event", "step": 1, "message": "x"}) == {}
