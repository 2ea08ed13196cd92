"""`epochs: auto`: validations per epoch, the stop on a plateau, the max_epochs cap, and exact resumption."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest

from polyhead.errors import InputError
from polyhead.training import train
from polyhead.training.budget import AUTO_PATIENCE, FIXED_EVAL_EVERY, plan_budget
from polyhead.training.config import config_from_dict
from polyhead.training.loop import Trainer
from polyhead.training.outcome import TrainingInterrupted

from .conftest import small_config

EPOCH_STEPS = 200 / 8  # 200 sentiment training texts in batches of 8


def _auto(model: str, run_dir, **training) -> dict:
    data = small_config(model, run_dir, tasks=("sentiment",), **training)
    data["training"].pop("max_steps")
    data["training"].pop("eval_every")
    return data


def _evals(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"type": "eval"' in line]


def test_auto_is_the_default_and_validates_four_times_per_epoch():
    config = config_from_dict({"tasks": {"sentiment": {}}})
    budget = plan_budget(config, EPOCH_STEPS)
    assert config.training.epochs == "auto" and budget.auto
    assert budget.eval_every == math.ceil(EPOCH_STEPS / 4)
    assert budget.patience == AUTO_PATIENCE
    assert budget.total_steps == math.ceil(config.training.max_epochs * EPOCH_STEPS)
    assert "epochs: auto" in budget.describe() and f"at most {config.training.max_epochs:g} epochs" in budget.describe()


def test_fixed_budgets_keep_working():
    fixed = plan_budget(config_from_dict({"tasks": {"s": {}}, "training": {"epochs": 2}}), EPOCH_STEPS)
    assert not fixed.auto and fixed.total_steps == 50 and fixed.eval_every == FIXED_EVAL_EVERY and fixed.patience is None
    steps = plan_budget(config_from_dict({"tasks": {"s": {}}, "training": {"max_steps": 7, "eval_every": 3}}), EPOCH_STEPS)
    assert not steps.auto and steps.total_steps == 7 and steps.eval_every == 3
    phased = config_from_dict({"tasks": {"s": {}}, "phases": [{"steps": 4}, {"epochs": 1}]})
    assert plan_budget(phased, EPOCH_STEPS).total_steps == 4 + 25


@pytest.mark.parametrize("value", ["aut", 0, -1])
def test_bad_epochs_are_refused_with_the_field(value):
    with pytest.raises(InputError, match="training.epochs"):
        config_from_dict({"tasks": {"s": {}}, "training": {"epochs": value}})


def test_auto_stops_on_a_plateau(tmp_path, tiny_bert_dir):
    """Learning rates too small to move the score: the first validation stays best, `patience` more end the run."""
    data = _auto(str(tiny_bert_dir), tmp_path / "run", learning_rate=1e-12, head_learning_rate=1e-12, max_epochs=5)
    result = train(config_from_dict(data))
    every = math.ceil(EPOCH_STEPS / 4)
    assert result.best_step == every
    assert result.steps == every * (AUTO_PATIENCE + 1) < math.ceil(5 * EPOCH_STEPS)
    assert result.stop_reason.startswith("epochs: auto: score did not improve for 4 evaluations")
    stopped = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"stop"' in line]
    assert stopped[-1]["stop"]["step"] == result.steps and stopped[-1]["stop"]["best_step"] == every
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"- **stopped**: step {result.steps} (epoch {result.steps / EPOCH_STEPS:.2f}): epochs: auto" in report


def test_auto_never_trains_past_max_epochs(tmp_path, tiny_bert_dir):
    data = _auto(str(tiny_bert_dir), tmp_path / "run", max_epochs=1.5)
    data["training"]["early_stopping"] = {"patience": 1000}
    result = train(config_from_dict(data))
    assert result.steps == math.ceil(1.5 * EPOCH_STEPS)
    assert result.stop_reason == "max_epochs (1.5) reached"
    assert _evals(tmp_path / "run")[-1]["step"] == result.steps  # the last step is validated too


def test_an_interrupted_auto_run_resumes_to_the_same_stop(tmp_path, tiny_bert_dir, monkeypatch):
    """Stopped by a signal after its third validation, resumed: the same validations, stop, best step and test metrics."""
    straight = train(config_from_dict(_auto(str(tiny_bert_dir), tmp_path / "straight", max_epochs=3, early_stopping={"patience": 2})))
    every = math.ceil(EPOCH_STEPS / 4)
    original = Trainer.train_step

    def step_then_signal(self):
        original(self)
        if self.state.step == 3 * every + 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    config = config_from_dict(_auto(str(tiny_bert_dir), tmp_path / "resumed", max_epochs=3, early_stopping={"patience": 2}))
    with pytest.raises(TrainingInterrupted):
        train(config)
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = train(config, resume=True)
    assert (resumed.steps, resumed.best_step, resumed.stop_reason) == (straight.steps, straight.best_step, straight.stop_reason)
    assert resumed.test_metrics == straight.test_metrics
    strip = lambda evals: [(e["step"], e["score"]) for e in evals]  # noqa: E731
    assert strip(_evals(tmp_path / "resumed")) == strip(_evals(tmp_path / "straight"))
