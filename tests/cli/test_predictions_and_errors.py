"""`predict -o` tables, `evaluate --errors`, and the one-line errors raised before any model loads."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from polyhead import SentenceEncoder
from polyhead.cli import EXIT_BAD_INPUT, main

from .test_cli import REPO


@pytest.fixture(scope="module")
def model_dir(tiny_st_dir, tmp_path_factory) -> Path:
    """A saved tiny MultiTaskModel with the real sentiment labels (fresh/rotten), untrained: it gets many wrong."""
    from polyhead import MultiTaskModel, TaskSpec

    directory = tmp_path_factory.mktemp("model") / "model"
    MultiTaskModel(SentenceEncoder(tiny_st_dir, device="cpu"), [TaskSpec("sentiment", ["fresh", "rotten"])]).save(directory)
    return directory


@pytest.fixture(scope="module")
def reviews(sentiment, tmp_path_factory) -> Path:
    """40 real Rotten Tomatoes validation reviews with an id column, their text and their label."""
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    split = sentiment.validation
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review_id", "review", "label"])
        for index, (text, label) in enumerate(zip(split.texts[:40], split.labels[:40])):
            writer.writerow([f"rt-{index}", text, label])
    return path


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(capsys, *args) -> str:
    code, _, err = _cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == EXIT_BAD_INPUT and len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_output_keeps_the_input_columns_beside_each_tasks_answer(capsys, tmp_path, model_dir, reviews, suffix):
    out = tmp_path / f"predictions{suffix}"
    code, stdout, err = _cli(capsys, "predict", model_dir, "--input", reviews, "--text-column", "review", "-o", out,
                             "--backend", "torch")
    assert code == 0, err
    assert stdout == "" and "wrote 40 rows with the predictions of sentiment" in err
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
    elif suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == 40
    assert list(rows[0]) == ["review_id", "review", "label", "sentiment_label", "sentiment_probability"]
    source = list(csv.DictReader(reviews.open(encoding="utf-8")))
    assert [r["review_id"] for r in rows] == [s["review_id"] for s in source]
    assert [r["review"] for r in rows] == [s["review"] for s in source]
    # The same answers as printing them.
    code, printed, _ = _cli(capsys, "predict", model_dir, "--input", reviews, "--text-column", "review", "--backend", "torch")
    answers = [json.loads(line)["sentiment"] for line in printed.splitlines()]
    assert [r["sentiment_label"] for r in rows] == [a["label"] for a in answers]
    assert all(abs(float(r["sentiment_probability"]) - a["probability"]) < 1e-6 for r, a in zip(rows, answers))


def test_predict_output_with_every_probability(capsys, tmp_path, model_dir, reviews):
    out = tmp_path / "p.csv"
    assert _cli(capsys, "predict", model_dir, "--input", reviews, "--text-column", "review", "-o", out, "--all-probabilities")[0] == 0
    row = next(csv.DictReader(out.open(encoding="utf-8")))
    fresh, rotten = float(row["sentiment_probabilities_fresh"]), float(row["sentiment_probabilities_rotten"])
    assert abs(fresh + rotten - 1) < 1e-5


def test_evaluate_errors_lists_the_misclassified_examples_most_confident_first(capsys, tmp_path, model_dir, reviews):
    errors = tmp_path / "errors.csv"
    code, out, err = _cli(capsys, "evaluate", model_dir, "--data", f"sentiment={reviews}", "--text-column", "review",
                          "-o", tmp_path / "metrics.json", "--errors", errors)
    assert code == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())["tasks"]["sentiment"]
    rows = list(csv.DictReader(errors.open(encoding="utf-8")))
    assert len(rows) == round((1 - metrics["accuracy"]) * 40) > 0  # exactly the wrong ones
    truth = {s["review"]: s["label"] for s in csv.DictReader(reviews.open(encoding="utf-8"))}
    for row in rows:
        assert row["true_label"] == truth[row["text"]] != row["predicted_label"]
        assert 0.5 <= float(row["confidence"]) <= 1 and abs(float(row["confidence"]) + float(row["true_label_probability"]) - 1) < 1e-5
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    worst = out.split("worst errors")[1]
    assert rows[0]["text"][:40] in worst and f"wrote {len(rows)} misclassified examples" in out


def test_checks_before_any_model_loads(capsys, tmp_path, model_dir, reviews):
    # A directory that names a model but would fail to load: every check below must answer before trying.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "polyhead_model.json").write_text((model_dir / "polyhead_model.json").read_text())
    assert "sentimnt" in _one_error_line(capsys, "predict", broken, "a text", "--tasks", "sentimnt")
    assert "field 'nope': missing column" in _one_error_line(capsys, "predict", broken, "--input", reviews, "--text-column", "nope")
    assert "unsupported output type '.txt'" in _one_error_line(capsys, "predict", broken, "--input", reviews,
                                                               "--text-column", "review", "-o", tmp_path / "x.txt")
    assert "unsupported output type '.txt'" in _one_error_line(capsys, "encode", reviews, "-o", tmp_path / "x.txt",
                                                               "--text-column", "review", "--model", broken)
    assert "field 'nope': missing column" in _one_error_line(capsys, "encode", reviews, "-o", tmp_path / "x.npy",
                                                             "--text-column", "nope", "--model", broken)
    assert "--errors file type '.txt'" in _one_error_line(capsys, "evaluate", broken, "--errors", tmp_path / "e.txt")
    assert "unknown device 'gpu'" in _one_error_line(capsys, "predict", broken, "a text", "--device", "gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_an_unavailable_device_is_one_line(capsys, model_dir, reviews):
    assert "no usable CUDA GPU" in _one_error_line(capsys, "predict", model_dir, "a text", "--device", "cuda")
    assert "no usable CUDA GPU" in _one_error_line(capsys, "encode", reviews, "-o", "x.npy", "--text-column", "review", "--device", "cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_places_the_model(capsys, model_dir, reviews, tmp_path):
    out = tmp_path / "p.jsonl"
    assert _cli(capsys, "predict", model_dir, "--input", reviews, "--text-column", "review", "-o", out, "--device", "cuda:0")[0] == 0
    count = torch.cuda.device_count()
    assert f"has {count} CUDA device(s)" in _one_error_line(capsys, "predict", model_dir, "x", "--device", f"cuda:{count}")


def _train_error(tmp_path: Path, *overrides: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    config = tmp_path / "c.yaml"
    config.write_text("tasks:\n  sentiment:\n    data: rotten_tomatoes:sentiment\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "polyhead", "train", str(config), *overrides], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    return done, time.monotonic() - start


@pytest.mark.parametrize("override, message", [
    ("model.pooling=avg", "field 'model.pooling': unknown pooling 'avg'"),
    ("model.name=nosuch/model", "nosuch/model: no such model directory"),
    ("training.device=gpu", "training.device=gpu: must be cpu, cuda or cuda:N"),
])
def test_train_fails_in_one_line_before_the_model_loads(tmp_path, override, message):
    done, took = _train_error(tmp_path, override)
    assert done.returncode == EXIT_BAD_INPUT and message in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert took < 30  # seconds, with the CLI's imports on a loaded 2-core machine; the hub retries took 96 s


def test_an_unknown_hub_name_fails_fast_without_the_offline_switch(tmp_path):
    # No HF_HUB_OFFLINE: the quick connectivity probe decides, not transformers' retries.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    done, took = _train_error(tmp_path, "model.name=nosuch/model", env=env)
    assert done.returncode == EXIT_BAD_INPUT and "nosuch/model" in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert took < 30


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed on a GPU")
def test_fp16_on_a_cpu_is_an_error(tmp_path):
    done, _ = _train_error(tmp_path, "training.mixed_precision=fp16")
    assert done.returncode == EXIT_BAD_INPUT and "fp16 needs a CUDA GPU" in done.stderr, done.stderr


def test_push_without_a_network_is_one_line(tmp_path, model_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN="hf_not_a_real_token")  # nothing listens on port 9
    done = subprocess.run([sys.executable, "-m", "polyhead", "push", str(model_dir), "me/model"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr[-2000:]
    assert "cannot reach the Hugging Face Hub" in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr[-2000:]


def test_python_warnings_in_the_cli_are_one_clean_line(capsys):
    import warnings

    from polyhead.cli import _one_line_warning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _one_line_warning("encode")
        warnings.warn("the tokenizer\n   changed", UserWarning)
    assert capsys.readouterr().err == "polyhead encode: warning: the tokenizer changed\n"


def test_an_onnx_backend_says_it_builds_its_graph_first(capsys, tmp_path, tiny_st_dir, reviews):
    code, _, err = _cli(capsys, "encode", reviews, "-o", tmp_path / "e.npy", "--text-column", "review", "--model", tiny_st_dir,
                        "--backend", "onnx", "--no-progress")
    assert code == 0, err
    assert err.index("building the ONNX graph (fp32) before the first batch") < err.index("graph ready after") < err.index("wrote 40 embeddings")


def test_the_graph_build_heartbeat_ticks_until_the_first_batch_returns():
    import io
    from types import SimpleNamespace

    from polyhead.cli.build_ticker import graph_build_ticker

    encoder, stream = SimpleNamespace(last_encode_stats=object()), io.StringIO()
    with graph_build_ticker(encoder, "the ONNX graph (int8)", tick_s=0.5, stream=stream):
        time.sleep(1.3)  # building: no batch yet
        encoder.last_encode_stats = object()  # the first batch returned
        time.sleep(0.8)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "building the ONNX graph (int8) before the first batch..."
    assert 1 <= sum(line.startswith("  still building the ONNX graph (int8):") for line in lines) <= 3
    assert sum(line.startswith("graph ready after") for line in lines) == 1 and lines[-1].startswith("graph ready after")
