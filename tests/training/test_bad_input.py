"""Bad data and configs fail before training, naming file, line and field; the CLI exits 2."""

from __future__ import annotations

import pytest

from polyhead.errors import InputError
from polyhead.training import load_config
from polyhead.training.config import DataFiles, TaskConfig
from polyhead.training.data import load_task_data

from .conftest import run_polyhead, write_config

GOOD_TRAIN = "text,label\nlovely film,pos\nawful film,neg\ngreat fun,pos\nboring mess,neg\n"


def _files(tmp_path, train=GOOD_TRAIN, validation="text,label\nnice,pos\nbad,neg\n", suffix=".csv"):
    (tmp_path / f"train{suffix}").write_bytes(train.encode() if isinstance(train, str) else train)
    (tmp_path / f"validation{suffix}").write_bytes(validation.encode() if isinstance(validation, str) else validation)
    return TaskConfig(data=DataFiles(train=f"train{suffix}", validation=f"validation{suffix}"))


def _error(tmp_path, **files) -> InputError:
    with pytest.raises(InputError) as caught:
        load_task_data("review", _files(tmp_path, **files), tmp_path)
    return caught.value


def test_label_unseen_in_training(tmp_path):
    error = _error(tmp_path, validation="text,label\nnice,pos\nso-so,meh\n")
    assert error.file.endswith("validation.csv") and error.line == 3 and error.field == "label"
    assert "'meh'" in str(error) and "never appears in the training data" in str(error)


def test_empty_text(tmp_path):
    error = _error(tmp_path, train="text,label\nfine,pos\n  ,neg\nok,neg\n")
    assert error.file.endswith("train.csv") and error.line == 3 and error.field == "text"
    assert "empty text" in str(error)


def test_missing_column(tmp_path):
    error = _error(tmp_path, train="sentence,label\nfine,pos\nbad,neg\n")
    assert error.file.endswith("train.csv") and error.line == 1 and error.field == "text"


def test_unparseable_jsonl(tmp_path):
    error = _error(tmp_path, suffix=".jsonl", train='{"text": "a", "label": "x"}\n{"text": "b", "label": \n', validation='{"text": "c", "label": "x"}\n')
    assert error.file.endswith("train.jsonl") and error.line == 2 and "not valid JSON" in str(error)


def test_bad_csv_row(tmp_path):
    error = _error(tmp_path, train="text,label\nfine,pos\nbad,neg,extra\n")
    assert error.line == 3 and "3 fields" in str(error)


def test_one_label_only(tmp_path):
    error = _error(tmp_path, train="text,label\nfine,pos\ngood,pos\n", validation="text,label\nok,pos\n")
    assert "at least 2 distinct labels" in str(error)


def test_good_files_load_with_labels_from_training(tmp_path):
    data = load_task_data("review", _files(tmp_path), tmp_path)
    assert data.label_names == ["neg", "pos"]
    assert data.targets["validation"] == [1, 0]


def test_config_errors_name_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  a:\n    data: jeopardy\ntraining:\n  batch_size: 8\n  learning_rat: 1e-4\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.line == 6 and caught.value.field == "training.learning_rat"
    with pytest.raises(InputError) as caught:
        load_config(path, ["training.learning_rat=null", "training.mixing=shuffled"])
    assert "training.learning_rat" in str(caught.value)


def test_cli_exits_2_before_training(tmp_path):
    _files(tmp_path, validation="text,label\nnice,pos\nso-so,meh\n")
    config = {"tasks": {"review": {"data": {"train": "train.csv", "validation": "validation.csv"}}},
              "output_dir": str(tmp_path / "run")}
    result = run_polyhead("train", str(write_config(tmp_path / "config.yaml", config)), timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "validation.csv:3" in lines[0] and "'meh'" in lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_unknown_builtin_dataset(tmp_path):
    config = {"tasks": {"x": {"data": "imdb"}}, "output_dir": str(tmp_path / "run")}
    result = run_polyhead("train", str(write_config(tmp_path / "config.yaml", config)), timeout=300)
    assert result.returncode == 2 and "tasks.x.data" in result.stderr and "imdb" in result.stderr


def test_a_misspelt_key_inside_data_files_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  a:\n    data:\n      train: t.csv\n      text_colum: body\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.field == "tasks.a.data.text_colum" and caught.value.line == 5
    assert "did you mean 'text_column'" in str(caught.value)


def test_an_override_error_names_the_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  a:\n    data: jeopardy\ntraining:\n  batch_size: 8\n")
    for override, reason in [("training.max_steps=abc", "expected int"), ("training.max_steps=0", "must be >= 1")]:
        with pytest.raises(InputError) as caught:
            load_config(path, [override])
        assert str(caught.value).startswith(f"command line: {override}: {reason}"), caught.value


def test_a_validation_error_names_its_yaml_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  a:\n    data: jeopardy\ntraining:\n  batch_size: 8\n  max_steps: 0\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.line == 6 and caught.value.field == "training.max_steps"


def test_a_rare_class_falls_back_to_a_random_validation_split(tmp_path, capsys):
    rows = "".join(f"text {i},{'a' if i % 2 else 'b'}\n" for i in range(40)) + "lonely text,c\n"
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    data = load_task_data("t", TaskConfig(data=DataFiles(train="train.csv")), tmp_path)
    assert data.label_names == ["a", "b", "c"]
    assert data.size("train") + data.size("validation") == 41 and data.has("validation")
    note = capsys.readouterr().err
    assert "train.csv" in note and "'c'" in note and "random" in note


def test_fractional_labels_are_an_error_that_suggests_binning(tmp_path):
    (tmp_path / "train.csv").write_text("text,score\ngood,4.5\nbad,1\nfine,3\n")
    with pytest.raises(InputError) as caught:
        load_task_data("t", TaskConfig(data=DataFiles(train="train.csv", label_column="score")), tmp_path)
    assert caught.value.line == 2 and caught.value.field == "score" and "regression" in str(caught.value)


def test_integer_valued_floats_are_the_same_class_as_integers(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 1.0}\n{"text": "b", "label": 2}\n')
    (tmp_path / "v.csv").write_text("text,label\nc,1\nd,2\n")
    data = load_task_data("t", TaskConfig(data=DataFiles(train="train.jsonl", validation="v.csv")), tmp_path)
    assert data.label_names == ["1", "2"]


def test_model_from_is_read_relative_to_the_config_and_a_misspelt_protect_key_is_named(tmp_path):
    config = tmp_path / "sub" / "run.yaml"
    config.parent.mkdir()
    config.write_text("model:\n  from: ../runs/base/model\ntasks:\n  new: {data: rotten_tomatoes:subjectivity}\n"
                      "protect:\n  strategy: isolate\n  rehersal_share: 0.2\n", encoding="utf-8")
    with pytest.raises(InputError, match="did you mean 'rehearsal_share'") as error:
        load_config(config)
    assert error.value.line == 7
    config.write_text("model:\n  from: ../runs/base/model\ntasks:\n  new: {data: rotten_tomatoes:subjectivity}\n", encoding="utf-8")
    loaded = load_config(config)
    assert loaded.model.start_from == str((tmp_path / "runs" / "base" / "model").resolve())
    assert loaded.to_dict()["model"]["from"] == loaded.model.start_from  # config.yaml writes it back under its own key
    with pytest.raises(InputError, match="did you mean 'from'"):
        load_config(config, ["model.fromm=x"])
