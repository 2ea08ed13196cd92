"""The real default model trained on slices of both real datasets: it learns, saves, reloads."""

from __future__ import annotations

import json

import pytest
import torch

import polyhead
from polyhead.training import load_config, train

from .conftest import write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("integration")
    config = {
        "model": {"max_seq_length": 64},
        "tasks": {
            "topic": {"data": "jeopardy", "max_train_examples": 2000, "max_eval_examples": 300},
            "sentiment": {"data": "rotten_tomatoes:sentiment", "max_train_examples": 2000, "max_eval_examples": 300},
        },
        "training": {"max_steps": 48, "batch_size": 16, "eval_every": 48, "log_every": 8, "mixing": "round_robin", "progress": False},
        "output_dir": str(root / "run"),
    }
    result = train(load_config(write_config(root / "config.yaml", config)))
    return result


def test_each_task_beats_its_majority_rate(trained):
    for task, metrics in trained.validation_metrics.items():
        assert metrics["accuracy"] > metrics["majority_rate"], (task, metrics["accuracy"], metrics["majority_rate"])
    assert set(trained.test_metrics) == {"topic", "sentiment"}
    assert len(trained.test_metrics["topic"]["confusion_matrix"]) == 40


def test_run_directory_has_everything(trained):
    run = trained.run_dir
    for name in ("config.yaml", "metrics.jsonl", "report.md", "test_metrics.json", "model/polyhead_model.json",
                 "checkpoints/last/module.safetensors", "checkpoints/best/heads.safetensors", "plots/loss.png"):
        assert (run / name).exists(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = {r["type"] for r in records}
    assert {"event", "train", "eval", "test"} <= kinds
    train_lines = [r for r in records if r["type"] == "train"]
    assert [r["step"] for r in train_lines] == [8, 16, 24, 32, 40, 48]
    # round_robin: each task saw the same number of examples
    assert train_lines[-1]["examples_total"] == {"topic": 24 * 16, "sentiment": 24 * 16}
    assert "topic" in (run / "report.md").read_text()


def test_save_load_predict_gives_same_probabilities(trained, tmp_path):
    model = polyhead.load(trained.model_dir)
    texts = ["A tender, funny and beautifully acted film.", "This river flows through Vienna and Budapest.", "Dull."]
    before = model.predict_probabilities(texts)
    model.save(tmp_path / "copy")
    again = polyhead.load(tmp_path / "copy").predict_probabilities(texts)
    for task in before:
        assert torch.allclose(before[task], again[task], atol=1e-6)
    predictions = model.predict(texts)
    assert predictions[0]["sentiment"].label in ("fresh", "rotten")
    assert abs(sum(predictions[1]["topic"].probabilities.values()) - 1.0) < 1e-4


def test_evaluate_command_prints_and_writes_metrics(trained, tmp_path):
    from .conftest import run_polyhead

    output = tmp_path / "eval.json"
    result = run_polyhead("evaluate", str(trained.model_dir), "--split", "validation", "--max-examples", "80", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "topic" in result.stdout and "sentiment" in result.stdout
    written = json.loads(output.read_text())
    assert written["split"] == "validation"
    assert written["tasks"]["topic"]["support"] == 80
    assert len(written["tasks"]["sentiment"]["confusion_matrix"]) == 2


def test_evaluate_command_on_a_file_with_an_unknown_label(trained, tmp_path):
    from .conftest import run_polyhead

    data = tmp_path / "reviews.csv"
    data.write_text("text,label\nloved it,fresh\nhated it,meh\n")
    result = run_polyhead("evaluate", str(trained.model_dir), "--data", f"sentiment={data}")
    assert result.returncode == 2
    assert "meh" in result.stderr and "sentiment" in result.stderr and "reviews.csv:3" in result.stderr


def test_predict_command_prints_json_lines(trained, tmp_path):
    from .conftest import run_polyhead

    texts = tmp_path / "texts.txt"
    texts.write_text("A triumph.\nThis mountain range separates Europe from Asia.\n")
    result = run_polyhead("predict", str(trained.model_dir), "--input", str(texts), "--all-probabilities")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["A triumph.", "This mountain range separates Europe from Asia."]
    for line in lines:
        assert set(line) == {"text", "topic", "sentiment"}
        assert abs(sum(line["sentiment"]["probabilities"].values()) - 1) < 1e-4
    bad = run_polyhead("predict", str(trained.model_dir), "hello", "--tasks", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr
