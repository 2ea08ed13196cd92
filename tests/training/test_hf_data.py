"""Hugging Face `datasets` as a task's data: a save_to_disk directory, a DatasetDict from Python, a hub name."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from polyhead.cli import main
from polyhead.errors import InputError
from polyhead.training.config import HFDataset, TaskConfig, config_from_dict, load_config
from polyhead.training.data import load_task_data

from .conftest import run_polyhead, small_config, write_config

datasets = pytest.importorskip("datasets")

CLASSES = ["rotten", "fresh"]
"""A ClassLabel whose order is not alphabetical: kept, the model's class i is the dataset's id i."""
SIZES = {"train": 96, "validation": 32, "test": 32}
COLUMNS = {"text_column": "review", "label_column": "verdict"}


def _split(texts: list[str], labels: list[int]):
    features = datasets.Features({"review": datasets.Value("string"), "verdict": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset.from_dict({"review": texts, "verdict": labels}, features=features)


@pytest.fixture(scope="module")
def reviews(sentiment):
    """Real Rotten Tomatoes snippets, as a DatasetDict with their own column names and a ClassLabel."""
    parts = {}
    for name, size in SIZES.items():
        split = getattr(sentiment, name)
        parts[name] = _split(split.texts[:size], [CLASSES.index(label) for label in split.labels[:size]])
    return datasets.DatasetDict(parts)


def _config(model: Path, output_dir: Path, data: dict) -> dict:
    config = small_config(str(model), output_dir, max_steps=4, eval_every=4)
    config["tasks"] = {"sentiment": {"data": data, "head": {"dropout": 0.0}}}
    return config


def test_a_saved_dataset_reads_row_for_row_with_its_class_names(reviews, tmp_path):
    reviews.save_to_disk(str(tmp_path / "reviews"))
    config = load_config(write_config(tmp_path / "config.yaml", {"tasks": {"s": {"data": {"hf": "reviews", **COLUMNS}}}}))
    data = load_task_data("s", config.tasks["s"], tmp_path)
    assert data.label_names == CLASSES
    for split in SIZES:
        assert data.texts[split] == reviews[split]["review"][:]
        assert data.targets[split] == reviews[split]["verdict"][:]  # class i is the dataset's label id i
    assert data.source_spec["hf"] == str((tmp_path / "reviews").resolve())


def test_trains_from_a_saved_dataset_through_the_cli_and_evaluates_it(reviews, tiny_bert_dir, tmp_path, capsys):
    reviews.save_to_disk(str(tmp_path / "reviews"))
    write_config(tmp_path / "config.yaml", _config(tiny_bert_dir, tmp_path / "run", {"hf": "reviews", **COLUMNS}))
    assert main(["train", str(tmp_path / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"task sentiment: Hugging Face dataset {tmp_path / 'reviews'} (train train, validation validation, test test)" in out
    model_dir = tmp_path / "run" / "model"
    saved = json.loads((model_dir / "polyhead_model.json").read_text())
    task = next(t for t in saved["tasks"] if t["name"] == "sentiment")
    assert task["labels"] == CLASSES
    assert main(["evaluate", str(model_dir)]) == 0  # the saved model finds its data again
    evaluated = json.loads((model_dir / "eval_test.json").read_text())
    assert evaluated["tasks"]["sentiment"]["support"] == SIZES["test"]


def test_trains_from_a_dataset_dict_passed_from_python(reviews, tiny_bert_dir, tmp_path):
    from polyhead.training import train

    config = config_from_dict(_config(tiny_bert_dir, tmp_path / "run", {"hf": reviews, **COLUMNS}))
    result = train(config)
    assert result.test_metrics["sentiment"]["support"] == SIZES["test"]
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["tasks"]["sentiment"]["data"]["hf"] == "<a dataset passed from Python>"
    with pytest.raises(InputError, match="passed from Python, which config.yaml cannot hold; resume from Python"):
        load_task_data("sentiment", load_config(tmp_path / "run" / "config.yaml").tasks["sentiment"])


def _error(dataset, **options) -> str:
    with pytest.raises(InputError) as caught:
        load_task_data("s", TaskConfig(data=HFDataset(dataset, **{**COLUMNS, **options})))
    return str(caught.value)


def test_row_errors_name_dataset_split_row_and_field(reviews):
    where = "dataset 's' (passed from Python)"
    texts = reviews["validation"]["review"][:]
    texts[3] = "  "
    empty = datasets.DatasetDict({"train": reviews["train"], "validation": _split(texts, reviews["validation"]["verdict"][:])})
    assert _error(empty) == f"{where}, split validation, row 3, field 'review': empty text"

    unlabelled = datasets.DatasetDict({"train": reviews["train"], "test": _split(reviews["test"]["review"][:], [-1] * SIZES["test"])})
    assert _error(unlabelled).startswith(f"{where}, split test, row 0, field 'verdict': no class label (-1;")

    plain = {name: split.cast_column("verdict", datasets.Value("string")) for name, split in reviews.items()}
    assert plain["train"]["verdict"][0] in ("0", "1")
    odd = list(plain["validation"]["verdict"][:])
    odd[5] = "meh"
    plain["validation"] = plain["validation"].remove_columns("verdict").add_column("verdict", odd)
    assert _error(datasets.DatasetDict(plain)).startswith(f"{where}, split validation, row 5, field 'verdict': label 'meh' never appears")

    assert _error(reviews, text_column="body") == f"{where}, split train, field 'body': missing column; the split has review, verdict"
    assert _error(reviews, splits={"train": "train", "validation": "dev"}) == f"{where}, field 'splits.validation': no split 'dev' (it has train, validation, test)"


def test_non_class_labels_are_class_names_as_text(reviews):
    words = {name: split.cast_column("verdict", datasets.Value("string")) for name, split in reviews.items()}
    data = load_task_data("s", TaskConfig(data=HFDataset(datasets.DatasetDict(words), **COLUMNS)))
    assert data.label_names == ["0", "1"]  # sorted, as for files
    assert data.targets["train"] == reviews["train"]["verdict"][:]


def test_a_single_dataset_is_the_training_split_and_validation_is_carved(reviews):
    data = load_task_data("s", TaskConfig(data=HFDataset(reviews["train"], **COLUMNS)))
    assert sorted(data.texts) == ["train", "validation"]
    assert data.size("train") + data.size("validation") == SIZES["train"]


def test_a_hub_name_is_downloaded_only_when_the_config_allows_it(tmp_path):
    data = {"hf": "cornell-movie-review-data/rotten_tomatoes", "config": "default"}
    write_config(tmp_path / "config.yaml", {"tasks": {"s": {"data": data}}, "output_dir": str(tmp_path / "run")})
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    result = run_polyhead("train", str(tmp_path / "config.yaml"), env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "is not a local directory nor in the local cache; set download: true" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_hub_name_is_one_line_and_exit_2(tmp_path):
    data = {"hf": "cornell-movie-review-data/rotten_tomatoes", "config": "default", "download": True}
    write_config(tmp_path / "config.yaml", {"tasks": {"s": {"data": data}}, "output_dir": str(tmp_path / "run")})
    result = run_polyhead("train", str(tmp_path / "config.yaml"), env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("polyhead train: error: field 'tasks.s.data.hf': could not load 'cornell-movie-review-data/rotten_tomatoes (default)' from the Hugging Face Hub")
    assert "HF_HUB_OFFLINE" in lines[0] and "save_to_disk" in lines[0]
    assert not (tmp_path / "run").exists()


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what Python does for a package that is not installed
    with pytest.raises(InputError, match=r"needs the optional package 'datasets': pip install 'polyhead\[datasets\]'"):
        load_task_data("s", TaskConfig(data=HFDataset("imdb")))


def test_every_kind_reads_a_dataset_as_it_reads_files():
    """Real clues with their dollar values (regression), real aid requests with their categories as a list of
    ClassLabels (multi-label, the dataset's label order kept) and real question -> answer pairs (contrastive)."""
    value = load_task_data("value", TaskConfig(data="jeopardy:value", max_train_examples=60, max_eval_examples=20))
    values = datasets.DatasetDict({split: datasets.Dataset.from_dict({"clue": value.texts[split], "dollars": [t for t, in value.targets[split]]})
                                   for split in ("train", "validation")})
    read = load_task_data("v", TaskConfig(data=HFDataset(values, text_column="clue", label_column="dollars"), kind="regression"))
    dollars = [t for t, in value.targets["train"]]
    assert read.targets["train"] == value.targets["train"] and read.state["mean"] == pytest.approx([sum(dollars) / len(dollars)])

    aid = load_task_data("aid", TaskConfig(data="disaster_response", max_train_examples=80, max_eval_examples=30))
    order = list(reversed(aid.label_names))  # not the sorted order a file would give
    features = datasets.Features({"message": datasets.Value("string"), "needs": datasets.Sequence(datasets.ClassLabel(names=order))})
    def ids(split):  # the dataset's ids of each text's labels
        return [[order.index(aid.label_names[i]) for i in row] for row in aid.targets[split]]
    tagged = datasets.DatasetDict({split: datasets.Dataset.from_dict({"message": aid.texts[split], "needs": ids(split)}, features=features)
                                   for split in ("train", "validation")})
    read = load_task_data("aid", TaskConfig(data=HFDataset(tagged, text_column="message", label_column="needs"), kind="multilabel"))
    assert read.label_names == order
    assert [sorted(read.label_names[i] for i in row) for row in read.targets["train"]] == [sorted(order[i] for i in row) for row in ids("train")]

    qa = load_task_data("qa", TaskConfig(data="jeopardy:answer", max_train_examples=40, max_eval_examples=20))
    pairs = datasets.DatasetDict({split: datasets.Dataset.from_dict({"question": qa.texts[split], "answer": qa.pair_texts[split]})
                                  for split in ("train", "validation")})
    read = load_task_data("qa", TaskConfig(data=HFDataset(pairs, text_column="question", pair_column="answer"), kind="contrastive"))
    assert read.texts["train"] == qa.texts["train"] and read.pair_texts["validation"] == qa.pair_texts["validation"]

    where = "dataset 'v' (passed from Python), split validation, row 4, field 'dollars': expected a number, got 'abc'"
    bad = [t for t, in value.targets["validation"]]
    bad[4] = "abc"
    values["validation"] = datasets.Dataset.from_dict({"clue": value.texts["validation"], "dollars": [str(v) for v in bad]})
    with pytest.raises(InputError) as caught:
        load_task_data("v", TaskConfig(data=HFDataset(values, text_column="clue", label_column="dollars"), kind="regression"))
    assert str(caught.value) == where
    missing = list(qa.pair_texts["train"])
    missing[2] = None
    pairs["train"] = datasets.Dataset.from_dict({"question": qa.texts["train"], "answer": missing})
    with pytest.raises(InputError, match=r"split train, row 2, field 'answer'"):
        load_task_data("qa", TaskConfig(data=HFDataset(pairs, text_column="question", pair_column="answer"), kind="contrastive"))
