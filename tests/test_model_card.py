"""Every saved model carries a Hugging Face model card; `polyhead push` sends it, or says exactly why not."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from polyhead.model_card import DEFAULT_MODEL_HUB_ID, read_card_metadata
from polyhead.training import train
from polyhead.training.config import config_from_dict
from tests.training.conftest import run_polyhead, small_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("card") / "run"
    return train(config_from_dict(small_config(None, run_dir, max_steps=2, eval_every=2)))


def test_a_trained_model_card_has_metadata_metrics_and_usage(trained):
    card = ModelCard.load(trained.model_dir / "README.md")  # the hub's own parser reads it
    data = card.data.to_dict()
    assert data["library_name"] == "polyhead" and data["pipeline_tag"] == "text-classification"
    assert data["base_model"] == DEFAULT_MODEL_HUB_ID
    assert data["datasets"] == ["cornell-movie-review-data/rotten_tomatoes"]
    results = {(r.task_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    saved = json.loads((trained.run_dir / "test_metrics.json").read_text())["tasks"]
    for task in ("topic", "sentiment"):
        assert results[(task, "accuracy")] == pytest.approx(saved[task]["accuracy"], abs=1e-4)
        assert results[(task, "f1")] == pytest.approx(saved[task]["macro_f1"], abs=1e-4)
    text = card.text
    assert f"| topic | {saved['topic']['accuracy']:.3f} | {saved['topic']['macro_f1']:.3f} |" in text
    assert "SentenceTransformer(" in text and "polyhead predict" in text and "Intended use and limits" in text
    assert "learning rates: backbone 5e-05" in text and "2 optimizer steps" in text


def test_a_model_trained_from_a_saved_one_names_the_original_base(trained, tmp_path):
    from polyhead.model import load

    model = load(trained.model_dir)
    model.save(tmp_path / "copy")
    assert read_card_metadata(tmp_path / "copy")["base_model"] == DEFAULT_MODEL_HUB_ID
    assert "No test metrics were recorded" in (tmp_path / "copy" / "README.md").read_text()


def test_push_dry_run_lists_the_files_and_offline_push_is_one_line(trained):
    dry = run_polyhead("push", str(trained.model_dir), "me/topic-sentiment", "--dry-run", timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "README.md" in dry.stdout and "model.safetensors" in dry.stdout and "heads.safetensors" in dry.stdout
    assert f"base model {DEFAULT_MODEL_HUB_ID}" in dry.stdout
    offline = run_polyhead("push", str(trained.model_dir), "me/topic-sentiment", timeout=120)  # the suite runs with HF_HUB_OFFLINE=1
    assert offline.returncode == 2
    assert offline.stderr.strip().count("\n") == 0 and "HF_HUB_OFFLINE=1" in offline.stderr
    bad = run_polyhead("push", str(trained.run_dir), "no-owner", timeout=120)
    assert bad.returncode == 2 and "not a polyhead model directory" in bad.stderr


def test_the_card_names_the_length_rule_and_the_imbalance_settings():
    from polyhead.model_card import TrainingFacts, _recipe_lines
    from polyhead.training.config import RunConfig, TaskConfig

    config = RunConfig(tasks={"topic": TaskConfig(data="jeopardy", class_weights="balanced"),
                              "sentiment": TaskConfig(sampling="balanced"), "plain": TaskConfig()})
    lines = "\n".join(_recipe_lines(TrainingFacts(recipe=config.to_dict(), steps=10, best_step=8)))
    assert "- length: epochs auto (stops when validation stops improving, at most 10 epochs)" in lines
    assert "- imbalanced classes: topic: class_weights balanced; sentiment: sampling balanced" in lines
    config.training.epochs, config.tasks = 2.0, {"plain": TaskConfig()}
    lines = "\n".join(_recipe_lines(TrainingFacts(recipe=config.to_dict())))
    assert "epochs auto" not in lines and "imbalanced" not in lines
