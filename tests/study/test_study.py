"""`polyhead study` end to end on a tiny model: seeds, resumption after a kill, the report's verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polyhead.study.report import compare, stat, winner_line, write_study_report
from polyhead.study.strategies import Budget, build_strategies
from polyhead.training.config import config_from_dict
from tests.training.conftest import REPO, small_config, write_config

STRATEGIES = "frozen_encoder,full"


def _study_command(config: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "polyhead", "study", str(config), "--strategies", STRATEGIES, "--seeds", "2",
            "--epochs", "1", "--probe-epochs", "2", "--evals-per-epoch", "1", "-o", str(output), "--no-progress"]


def _tiny_study_config(tmp_path: Path, model: Path) -> Path:
    raw = small_config(str(model), tmp_path / "unused", max_steps=None, batch_size=16)
    for task in raw["tasks"].values():
        task["max_train_examples"], task["max_eval_examples"] = 64, 40
    return write_config(tmp_path / "study.yaml", raw)


@pytest.mark.slow  # real processes killed and resumed: `make test-slow`, run by CI
def test_a_killed_study_continues_and_reports(tmp_path, tiny_model_dir):
    config, output = _tiny_study_config(tmp_path, tiny_model_dir("bert")), tmp_path / "study"
    results = output / "results.json"
    process = subprocess.Popen(_study_command(config, output), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:  # kill once the baseline and one run are recorded
        if results.exists() and len(json.loads(results.read_text()).get("runs", [])) >= 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stdout.read() if process.stdout else ""
    first = json.loads(results.read_text())["runs"]
    assert len(first) < 5

    finished = subprocess.run(_study_command(config, output), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    content = json.loads(results.read_text())
    runs = content["runs"]
    keys = [(r["strategy"], r["seed"]) for r in runs]
    assert sorted(keys, key=str) == sorted([("logistic_regression", None), ("frozen_encoder", 42), ("frozen_encoder", 43),
                                            ("full", 42), ("full", 43)], key=str)
    assert runs[: len(first)] == first  # finished runs were kept, not trained again
    assert finished.stdout.count("\n=== ") == 5 - len(first)
    full = [r for r in runs if r["strategy"] == "full"]
    assert full[0]["tasks"] != full[1]["tasks"] or full[0]["best_validation"] != full[1]["best_validation"]  # seeds differ
    for row in runs:
        assert set(row["tasks"]) == {"topic", "sentiment"}
        assert row["wall_s"] > 0 and sum(row["examples_seen"].values()) > 0
    frozen = [r for r in runs if r["strategy"] == "frozen_encoder"]
    assert all(r["lee_spearman_after"] == pytest.approx(content["lee_spearman_before"], abs=1e-6) for r in frozen)
    report = (output / "study.md").read_text()
    assert "mean ± standard deviation over seeds" in report and "full test split" in report
    assert "`full`" in report and "`frozen_encoder`" in report and (output / "study.png").stat().st_size > 10_000
    assert not list((output / "runs").glob("*/*/checkpoints"))  # finished runs keep their model, not their resume state


def _results(values: dict[str, list[float]]) -> dict:
    runs = [{"strategy": name, "seed": None if name == "logistic_regression" else i, "tasks": {"t": {"macro_f1": v, "accuracy": v}}}
            for name, vs in values.items() for i, v in enumerate(vs)]
    return {"tasks": ["t"], "runs": runs}


def test_winners_are_named_only_beyond_the_noise():
    noisy = _results({"a": [0.80, 0.70, 0.75], "b": [0.74, 0.72, 0.73]})
    assert not compare(noisy, "a", "b", "t").decided
    assert "tied" in winner_line(noisy, "t")
    clear = _results({"a": [0.80, 0.81, 0.79], "b": [0.70, 0.71, 0.69]})
    c = compare(clear, "a", "b", "t")
    assert c.decided and c.difference == pytest.approx(0.10)
    assert "`a` wins" in winner_line(clear, "t")
    one_seed = _results({"a": [0.90], "b": [0.50]})
    assert not compare(one_seed, "a", "b", "t").decided  # one seed has no noise estimate: never a winner
    assert compare(one_seed, "a", "b", "t").verdict().startswith("undecided (+40.0 pt from one seed")
    deterministic = _results({"a": [0.80, 0.81, 0.79], "logistic_regression": [0.70]})
    assert compare(deterministic, "a", "logistic_regression", "t").decided
    s = stat([1.0, 2.0, 3.0])
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3)


def test_every_default_strategy_builds_on_the_real_config():
    from polyhead.study.strategies import DEFAULT_STRATEGIES

    base = config_from_dict({"tasks": {"topic": {"data": "jeopardy"}, "sentiment": {"data": "rotten_tomatoes:sentiment"}}})
    strategies = build_strategies(base, list(DEFAULT_STRATEGIES), 6, Budget(epochs=3, probe_epochs=20))
    names = [s.name for s in strategies]
    assert "single_task:topic" in names and "single_task:sentiment" in names and len(names) == len(DEFAULT_STRATEGIES) + 1
    by_name = {s.name: s for s in strategies}
    assert by_name["frozen_encoder"].config.training.epochs == 20 and by_name["full"].config.training.epochs == 3
    assert by_name["lp_ft"].starts_from == "frozen_encoder"
    assert by_name["lora"].config.model.lora is not None
    recipe_a = by_name["recipe:a_cls_pooler_lower_half"].config
    assert recipe_a.model.pooling == "cls_pooler" and recipe_a.freeze.lower == 3 and recipe_a.training.learning_rate == 1e-5
    assert len(by_name["recipe:c_gradual_layer_decay"].config.phases) == 4
    assert all(s.config.training.early_stopping.patience == Budget().patience for s in strategies)


def test_the_imbalance_and_auto_strategies_set_only_what_applies():
    from polyhead.training.budget import plan_budget

    base = config_from_dict({"tasks": {"topic": {"data": "jeopardy"}, "value": {"data": "jeopardy:value"},
                                       "disaster": {"data": "disaster_response"}}})
    by_name = {s.name: s for s in build_strategies(base, ["class_weights", "balanced_sampling", "epochs_auto"], 6, Budget(epochs=2))}
    weighted = by_name["class_weights"].config.tasks
    assert (weighted["topic"].class_weights, weighted["disaster"].class_weights, weighted["value"].class_weights) == ("balanced", "balanced", None)
    sampled = by_name["balanced_sampling"].config.tasks
    assert [sampled[t].sampling for t in ("topic", "disaster", "value")] == ["balanced", "natural", "natural"]
    assert by_name["class_weights"].config.training.epochs == 2
    auto = by_name["epochs_auto"]
    budget = plan_budget(auto.config, 100.0)
    assert budget.auto and budget.patience == 4 and auto.evals_per_epoch == auto.config.training.evals_per_epoch == 4
    assert auto.tags == ["own_budget"] and by_name["class_weights"].tags == []


def test_written_report_says_when_the_study_is_incomplete(tmp_path):
    results = _results({"full": [0.8, 0.82], "logistic_regression": [0.7]})
    for row in results["runs"]:
        row.update(wall_s=10.0, cpu_s=20.0, examples_seen={"t": 100}, trainable_parameters=5, best_validation=0.8,
                   best_epoch=1.0, lee_spearman_after=0.6)
    results.update(budget={"epochs": 3, "probe_epochs": 20, "evals_per_epoch": 2, "patience": 2}, seeds=[0, 1, 2],
                   strategies=[{"name": "full", "description": "d"}], train_examples={"t": 100}, batch_size=32,
                   max_seq_length=128, lee_spearman_before=0.7)
    text = write_study_report(results, tmp_path, "polyhead study x").read_text()
    assert "Incomplete: 1 of 3 runs still to go" in text
    assert "0.810 ± 0.014" in text
