"""Imbalanced tasks: the run start's note, the settings' checks, and a run with class weights and balanced sampling."""

from __future__ import annotations

import csv
import json

import pytest

from polyhead import datasets
from polyhead.errors import InputError
from polyhead.training import train
from polyhead.training.config import config_from_dict
from polyhead.training.data import load_task_data
from polyhead.training.imbalance import IMBALANCE_RATIO, imbalance, imbalance_lines

from .conftest import small_config


def _cut_sentiment(folder, keep_every: int = 10) -> dict:
    """Real Rotten Tomatoes texts, `rotten` cut to one in `keep_every` in train (validation and test as they are, sliced)."""
    data = datasets.get("rotten_tomatoes:sentiment")
    files = {}
    for split, rows in data.splits.items():
        pairs = list(zip(rows.texts, rows.labels))
        if split == "train":
            pairs = [p for i, p in enumerate(pairs) if p[1] == "fresh" or i % keep_every == 0][:600]
        path = folder / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *pairs[:600]])
        files[split] = str(path)
    return files


def test_the_note_names_the_imbalance_and_what_to_set(tmp_path):
    files = _cut_sentiment(tmp_path)
    config = config_from_dict({"tasks": {"sentiment": {"data": files}, "balanced": {"data": "rotten_tomatoes:sentiment"}}})
    data = {name: load_task_data(name, task, tmp_path) for name, task in config.tasks.items()}
    found = imbalance(config, data)
    assert list(found) == ["sentiment"]  # full Rotten Tomatoes is 1.4x: no note
    info = found["sentiment"]
    assert info["largest"] == "fresh" and info["small"] == ["rotten"] and info["ratio"] > IMBALANCE_RATIO
    assert info["counts"]["fresh"] / info["counts"]["rotten"] == pytest.approx(info["ratio"], rel=0.01)
    (line,) = imbalance_lines(found)
    assert "task 'sentiment' is imbalanced" in line and "tasks.sentiment.class_weights=balanced" in line
    config.tasks["sentiment"].class_weights = "balanced"
    assert "Using class_weights: balanced." in imbalance_lines(imbalance(config, data))[0]


@pytest.mark.parametrize("task, field, message", [
    ({"data": "disaster_response", "sampling": "balanced"}, "tasks.t.sampling", "needs one class per text"),
    ({"data": "jeopardy:value", "class_weights": "balanced"}, "tasks.t.class_weights", "no classes to weigh"),
    ({"data": "rotten_tomatoes:sentiment", "class_weights": {"meh": 2}}, "tasks.t.class_weights.meh", "not one of the task's labels"),
])
def test_settings_that_do_not_fit_the_task_are_refused_with_the_field(task, field, message, tmp_path):
    config = config_from_dict({"tasks": {"t": task}})
    with pytest.raises(InputError, match=message) as error:
        load_task_data("t", config.tasks["t"], tmp_path)
    assert error.value.field == field


@pytest.mark.parametrize("value, message", [("inverse", "must be `balanced`"), ({"a": 0}, "must be > 0")])
def test_bad_class_weight_values_are_refused(value, message):
    with pytest.raises(InputError, match=message):
        config_from_dict({"tasks": {"t": {"class_weights": value}}})
    with pytest.raises(InputError, match="sampling"):
        config_from_dict({"tasks": {"t": {"sampling": "oversample"}}})


def test_a_run_with_class_weights_and_balanced_sampling_reports_the_small_classes(tmp_path, tiny_bert_dir, capsys):
    files = _cut_sentiment(tmp_path)
    data = small_config(str(tiny_bert_dir), tmp_path / "run", tasks=("sentiment",))
    data["tasks"]["sentiment"].update(data=files, class_weights="balanced", sampling="balanced", max_train_examples=None)
    result = train(config_from_dict(data))
    assert "Using class_weights: balanced and sampling: balanced." in capsys.readouterr().out
    start = next(json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines() if '"start"' in line)
    assert start["imbalance"]["sentiment"]["small"] == ["rotten"]
    report = (result.run_dir / "report.md").read_text()
    section = report.split("## Small classes (test")[1].split("\n## ")[0]
    assert "### sentiment: largest class" in section and "class_weights: balanced, sampling: balanced" in section
    rotten = result.test_metrics["sentiment"]["per_class"]["rotten"]
    assert f"| rotten | {start['imbalance']['sentiment']['counts']['rotten']:,} | {rotten['precision']:.3f} | {rotten['recall']:.3f}" in section
