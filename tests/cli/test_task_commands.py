"""The `polyhead` commands that work on a saved multi-task model: predict, evaluate, train's reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from polyhead import SentenceEncoder
from polyhead.cli import EXIT_BAD_INPUT, main

from .test_cli import REPO


@pytest.fixture(scope="module")
def task_model_dir(tiny_st_dir, tmp_path_factory) -> Path:
    """A saved tiny MultiTaskModel with one task 'sentiment' (fresh/rotten), untrained."""
    from polyhead import MultiTaskModel, TaskSpec

    encoder = SentenceEncoder(tiny_st_dir, device="cpu")
    directory = tmp_path_factory.mktemp("task-model") / "model"
    MultiTaskModel(encoder, [TaskSpec("sentiment", ["fresh", "rotten"])]).save(directory)
    return directory


def _one_error_line(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(err) == 1, err
    return err[0]


def test_model_directory_errors_are_one_line(capsys, tmp_path, task_model_dir):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    assert "nope: no such model directory" in _one_error_line(capsys, "predict", tmp_path / "nope", "x")
    assert "is a file" in _one_error_line(capsys, "predict", tmp_path / "file.txt", "x")
    assert "not a polyhead model directory" in _one_error_line(capsys, "evaluate", tmp_path / "empty")
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "polyhead_onnx.json").write_text("{}")
    assert "exported ONNX directory" in _one_error_line(capsys, "evaluate", tmp_path / "exported")
    assert "runs/x/final: no such model directory" in _one_error_line(capsys, "similarity", "a", "b", "--model", "runs/x/final")
    # A plausible hub id without a network (HF_HUB_OFFLINE here) fails at once, not after retries.
    assert "not in the local hub cache" in _one_error_line(capsys, "similarity", "a", "b", "--model", "someone/no-such-model")


def test_evaluate_data_keeps_the_model_metrics_and_maps_labels(capsys, tmp_path, task_model_dir):
    reviews = tmp_path / "shop reviews.csv"
    reviews.write_text("body,stars\ngreat phone,great\nbroke in a day,other\nlove it,great\n")
    own = task_model_dir / "eval_test.json"
    own.write_text('{"kept": true}')
    args = ["evaluate", task_model_dir, "--data", f"sentiment={reviews}", "--text-column", "body", "--label-column", "stars"]
    message = _one_error_line(capsys, *args)
    assert "shop reviews.csv:2" in message and "'great'" in message and "--label-map" in message
    assert "frsh" in _one_error_line(capsys, *args, "--label-map", "great=frsh,other=rotten")
    assert main([str(a) for a in [*args, "--label-map", "great=fresh,other=rotten"]]) == 0
    out = capsys.readouterr().out
    assert f"sentiment: {reviews} (3 examples, labels mapped great->fresh, other->rotten)" in out
    assert re.search(r"sentiment\s+test\s+3\s+0\s+0\.0", out), out
    written = json.loads((task_model_dir / "eval_sentiment-shop_reviews.json").read_text())
    assert written["data"]["sentiment"]["file"] == str(reviews.resolve())
    assert len(written["data"]["sentiment"]["sha256"]) == 64
    assert "accuracy" in written["tasks"]["sentiment"]
    assert json.loads(own.read_text()) == {"kept": True}


def test_label_map_from_a_file(tmp_path):
    from polyhead.cli.evaluate import parse_label_map

    (tmp_path / "map.yaml").write_text("great: fresh\nother: rotten\n")
    assert parse_label_map(str(tmp_path / "map.yaml")) == {"great": "fresh", "other": "rotten"}
    assert parse_label_map("a=b, c=d") == {"a": "b", "c": "d"}


def test_label_map_files_keep_words_as_written_and_refuse_tags_and_alias_bombs(tmp_path):
    from polyhead.cli.evaluate import parse_label_map
    from polyhead.errors import InputError

    (tmp_path / "words.yaml").write_text("yes: positive\nno: negative\n1: 'on'\n")
    assert parse_label_map(str(tmp_path / "words.yaml")) == {"yes": "positive", "no": "negative", "1": "on"}
    (tmp_path / "json.json").write_text('{"pos": "fresh", "neg": "rotten"}')
    assert parse_label_map(str(tmp_path / "json.json")) == {"pos": "fresh", "neg": "rotten"}
    (tmp_path / "tag.yaml").write_text('a: !!python/name:os.system ""\n')
    with pytest.raises(InputError, match="tag"):
        parse_label_map(str(tmp_path / "tag.yaml"))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    (tmp_path / "bomb.yaml").write_text(bomb)
    with pytest.raises(InputError, match="aliases"):
        parse_label_map(str(tmp_path / "bomb.yaml"))


def test_train_reports_truncation_at_the_start_and_in_the_report(capsys, tmp_path, tiny_model_dir):
    rows = [(f"{'header line ' * 30}body {i}", "spam" if i % 2 else "ham") for i in range(24)]
    with open(tmp_path / "mails.csv", "w", newline="") as handle:
        handle.write("body,kind\n" + "".join(f'"{text}",{label}\n' for text, label in rows))
    config = {
        "model": {"name": str(tiny_model_dir("bert")), "max_seq_length": 32, "truncation": "head+tail"},
        "tasks": {"mail": {"data": {"train": "mails.csv", "text_column": "body", "label_column": "kind"}}},
        "training": {"max_steps": 2, "batch_size": 8, "eval_every": 2, "progress": False},
        "output_dir": str(tmp_path / "run"),
    }
    (tmp_path / "config.yaml").write_text(json.dumps(config))
    assert main(["train", str(tmp_path / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "max_seq_length 32, truncation: head+tail" in out
    assert re.search(r"mail\s+train\s+\d+\s+\d+\s+100\.0", out), out
    assert "note: 100% of mail's train texts are cut at 32 tokens" in out
    assert "no task has test data; validation metrics of the kept model (the best validation step" in out
    assert re.search(r"\n2 steps in \d+s \(max_steps\); best validation step 2\n", out), out
    config["training"]["progress"], config["output_dir"] = True, str(tmp_path / "shown")
    (tmp_path / "shown.yaml").write_text(json.dumps(config))
    assert main(["train", str(tmp_path / "shown.yaml")]) == 0
    shown = capsys.readouterr().out
    assert shown.count("max_steps") == 1 and "stopped at step 2 (epoch" in shown, "the reason is said once"
    assert re.search(r"\n2 steps in \d+s\n", shown), shown
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Text lengths" in report and "| mail | validation |" in report
    assert json.loads((tmp_path / "run" / "model" / "polyhead_model.json").read_text())["truncation"] == "head+tail"
    assert f"task mail: train {tmp_path / 'mails.csv'}" in out and f"run directory: {tmp_path / 'run'}" in out
    message = _one_error_line(capsys, "train", "--resume", tmp_path / "run")
    assert "the run finished at step 2" in message and "training.max_steps=4" in message
    assert "no such run directory" in _one_error_line(capsys, "train", "--resume", tmp_path / "nope")


def test_no_transformers_notice_a_user_cannot_act_on(tiny_model_dir):
    """MPNet under bf16 makes transformers log a notice about its attention implementation: not shown."""
    result = subprocess.run(
        [sys.executable, "-m", "polyhead", "similarity", "a b", "c d", "--model", str(tiny_model_dir("mpnet")), "--backend", "torch-bf16"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert "attention implementation" not in result.stderr, result.stderr


def test_predict_on_an_exported_directory(capsys, tmp_path, task_model_dir):
    from polyhead.inference import export_onnx

    export_onnx(task_model_dir, tmp_path / "onnx")
    assert main(["predict", str(tmp_path / "onnx"), "a fine film", "--all-probabilities"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert main(["predict", str(task_model_dir), "a fine film", "--all-probabilities", "--backend", "torch"]) == 0
    reference = json.loads(capsys.readouterr().out)
    assert exported["sentiment"]["label"] == reference["sentiment"]["label"]
    for label, probability in reference["sentiment"]["probabilities"].items():
        assert abs(exported["sentiment"]["probabilities"][label] - probability) < 1e-4


def test_options_and_texts_mix_in_any_order(capsys, task_model_dir):
    assert main(["predict", str(task_model_dir), "--backend", "torch", "a fine film", "--batch-size", "2", "a dull one"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["a fine film", "a dull one"]
