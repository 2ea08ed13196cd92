"""A training file too small to carve a validation split from says so, instead of a scikit-learn traceback."""

from __future__ import annotations

import pytest

from polyhead.errors import InputError
from polyhead.training.config import DataFiles, TaskConfig
from polyhead.training.data import MIN_ROWS_TO_CARVE, load_task_data


from .conftest import run_polyhead, write_config


@pytest.mark.parametrize("rows", [2, 3, 4, MIN_ROWS_TO_CARVE - 1])
def test_too_few_rows_without_a_validation_file(tmp_path, rows):
    body = "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(rows))
    (tmp_path / "train.csv").write_text("text,label\n" + body)
    with pytest.raises(InputError) as caught:
        load_task_data("review", TaskConfig(data=DataFiles(train="train.csv"), kind="classification"), tmp_path)
    message = str(caught.value)
    assert "train.csv" in message and f"{rows} row" in message and "validation" in message and str(MIN_ROWS_TO_CARVE) in message


def test_a_regression_file_too_small_too(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,1.0\nb,2.0\nc,3.5\n")
    with pytest.raises(InputError) as caught:
        load_task_data("score", TaskConfig(data=DataFiles(train="train.csv"), kind="regression"), tmp_path)
    assert "3 rows" in str(caught.value)


def test_just_enough_rows_are_carved(tmp_path):
    body = "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(MIN_ROWS_TO_CARVE))
    (tmp_path / "train.csv").write_text("text,label\n" + body)
    data = load_task_data("review", TaskConfig(data=DataFiles(train="train.csv")), tmp_path)
    assert data.has("validation") and data.size("train") + data.size("validation") == MIN_ROWS_TO_CARVE


def test_the_cli_says_it_in_one_line(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nfine,pos\nbad,neg\n")
    config = {"tasks": {"review": {"data": {"train": "train.csv"}}}, "output_dir": str(tmp_path / "run")}
    result = run_polyhead("train", str(write_config(tmp_path / "config.yaml", config)), timeout=300)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "2 rows" in result.stderr
