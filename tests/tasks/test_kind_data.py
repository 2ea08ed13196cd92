"""Bad targets of each kind are errors naming file, line and field; good files load as the kind reads them."""

from __future__ import annotations

import json

import pytest

from polyhead.errors import InputError
from polyhead.training.config import DataFiles, TaskConfig
from polyhead.training.data import load_task_data


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path.name


def test_a_string_in_a_regression_column_names_its_line(tmp_path):
    (tmp_path / "train.csv").write_text("text,price\ncheap thing,1.5\nfancy thing,20\nodd thing,abc\n")
    with pytest.raises(InputError, match="expected a number") as caught:
        load_task_data("price", TaskConfig(data=DataFiles(train="train.csv", label_column="price"), kind="regression"), tmp_path)
    assert (caught.value.line, caught.value.field) == (4, "price") and caught.value.file.endswith("train.csv")


def test_regression_with_two_targets_loads_numbers(tmp_path):
    rows = [{"text": f"t{i}", "a": i, "b": 2.5 * i} for i in range(20)]
    files = DataFiles(train=_jsonl(tmp_path / "train.jsonl", rows), label_column=["a", "b"])
    data = load_task_data("two", TaskConfig(data=files, kind="regression"), tmp_path)
    assert data.label_names == ["a", "b"] and data.kind == "regression"
    assert data.state["mean"][1] == pytest.approx(2.5 * data.state["mean"][0], rel=0.2)
    assert all(len(target) == 2 for target in data.targets["train"])


def test_a_chosen_loss_travels_in_the_tasks_state_and_is_checked_against_a_builtin_datasets_kind(tmp_path):
    rows = [{"text": f"t{i}", "a": i} for i in range(20)]
    files = DataFiles(train=_jsonl(tmp_path / "train.jsonl", rows), label_column="a")
    data = load_task_data("price", TaskConfig(data=files, kind="regression", loss="huber"), tmp_path)
    assert data.state["loss"] == "huber"
    with pytest.raises(InputError, match="classification task has no loss 'huber'") as caught:
        load_task_data("topic", TaskConfig(data="rotten_tomatoes:sentiment", loss="huber"))
    assert caught.value.field == "tasks.topic.loss"


def test_an_unknown_label_in_a_multilabel_list_names_its_line(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"text": "a", "tags": ["x"]}, {"text": "b", "tags": ["x", "y"]}, {"text": "c", "tags": []}])
    test = _jsonl(tmp_path / "test.jsonl", [{"text": "d", "tags": ["y"]}, {"text": "e", "tags": ["x", "z"]}])
    files = DataFiles(train=train, validation=train, test=test, label_column="tags")
    with pytest.raises(InputError, match="'z' never appears in the training data") as caught:
        load_task_data("tags", TaskConfig(data=files, kind="multilabel"), tmp_path)
    assert (caught.value.line, caught.value.field) == (2, "tags") and caught.value.file.endswith("test.jsonl")


def test_multilabel_csv_cells_split_on_the_separator(tmp_path):
    (tmp_path / "train.csv").write_text('text,tags\none,news;sports\ntwo,news\nthree,\n' + "".join(f"t{i},news\n" for i in range(20)))
    files = DataFiles(train="train.csv", label_column="tags", label_separator=";")
    data = load_task_data("tags", TaskConfig(data=files, kind="multilabel"), tmp_path)
    assert data.label_names == ["news", "sports"]
    everything = data.targets["train"] + data.targets["validation"]
    assert [0, 1] in everything and [] in everything


def test_a_builtin_dataset_of_another_kind_says_which(tmp_path):
    with pytest.raises(InputError, match="is a regression task") as caught:
        load_task_data("v", TaskConfig(data="jeopardy:value", kind="classification"))
    assert caught.value.field == "tasks.v.kind"


def test_builtin_regression_and_multilabel_data():
    value = load_task_data("value", TaskConfig(data="jeopardy:value", max_eval_examples=50))
    assert value.kind == "regression" and value.label_names == ["value"] and value.state["mean"][0] > 100
    tags = load_task_data("aid", TaskConfig(data="disaster_response", max_eval_examples=50))
    assert tags.kind == "multilabel" and len(tags.label_names) == 34 and tags.size("train") > 20000
    assert sum(len(t) >= 2 for t in tags.targets["train"]) > 0.4 * tags.size("train")


def test_an_unknown_kind_is_a_config_error(tmp_path):
    from polyhead.training.config import load_config

    (tmp_path / "c.yaml").write_text("tasks:\n  t:\n    data: jeopardy\n    kind: ranking\n")
    with pytest.raises(InputError, match="unknown task kind 'ranking'"):
        load_config(tmp_path / "c.yaml")


def test_a_pair_row_with_its_positive_missing_names_its_line(tmp_path):
    rows = [{"text": "q1", "text_pair": "a1"}, {"text": "q2", "text_pair": "a2"}, {"text": "q3", "text_pair": ""}]
    files = DataFiles(train=_jsonl(tmp_path / "train.jsonl", rows))
    with pytest.raises(InputError, match="empty text") as caught:
        load_task_data("qa", TaskConfig(data=files, kind="contrastive"), tmp_path)
    assert (caught.value.line, caught.value.field) == (3, "text_pair")


def test_builtin_contrastive_pairs_keep_the_category_splits():
    qa = load_task_data("qa", TaskConfig(data="jeopardy:answer", max_eval_examples=100))
    topic = load_task_data("topic", TaskConfig(data="jeopardy"))
    assert qa.kind == "contrastive" and qa.streams() == ["qa", "qa.pair"]
    assert set(qa.texts["test"]) <= set(topic.texts["test"])  # no test question is a training question of the other task
    assert len(qa.pair_texts["train"]) == qa.size("train") > 7000
