"""The run report on a synthetic but realistic metrics log: a 40-class and a 2-class task."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from polyhead.errors import InputError
from polyhead.metrics import classification_metrics
from polyhead.training.metrics_log import read_metrics_log
from polyhead.training.report import best_validation, write_report

TOPICS = [
    "AMERICAN HISTORY", "AMERICANA", "ANIMALS", "ART", "ART & ARTISTS", "BALLET", "BEFORE & AFTER",
    "BODIES OF WATER", "BOOKS & AUTHORS", "BUSINESS & INDUSTRY", "COLLEGES & UNIVERSITIES", "COMMON BONDS",
    "FICTIONAL CHARACTERS", "FOOD", "HISTORY", "ISLANDS", "LANGUAGES", "LITERATURE", "MUSEUMS", "OPERA",
    "PEOPLE", "POTPOURRI", "RELIGION", "RHYME TIME", "SCIENCE", "SCIENCE & NATURE", "SHAKESPEARE", "SPORTS",
    "STATE CAPITALS", "STUPID ANSWERS", "TELEVISION", "THE BIBLE", "TRANSPORTATION", "U.S. CITIES",
    "U.S. GEOGRAPHY", "U.S. HISTORY", "WORD ORIGINS", "WORLD CAPITALS", "WORLD GEOGRAPHY", "WORLD HISTORY",
]  # fmt: skip
SENTIMENT = ["fresh", "rotten"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _predictions(rng: np.random.Generator, y_true: np.ndarray, n_labels: int, skill: float) -> np.ndarray:
    """Right with probability `skill`, else a uniformly random label."""
    guess = rng.integers(0, n_labels, size=len(y_true))
    return np.where(rng.random(len(y_true)) < skill, y_true, guess)


def _task_metrics(rng: np.random.Generator, step: int, size: int) -> dict:
    topic_true = np.repeat(np.arange(40), size // 40)
    sentiment_true = (rng.random(size) < 0.42).astype(int)  # rotten is the minority, as in the real data
    return {
        "topic": classification_metrics(topic_true, _predictions(rng, topic_true, 40, 0.15 + step / 400), TOPICS),
        "sentiment": classification_metrics(
            sentiment_true, _predictions(rng, sentiment_true, 2, 0.2 + step / 300), SENTIMENT
        ),
    }


def _synthetic_log(with_test: bool = True) -> list[dict]:
    rng = np.random.default_rng(7)
    lines: list[dict] = [{"type": "event", "step": 0, "message": "phase 1: heads only, encoder frozen"}]
    for step in range(10, 201, 10):
        loss = {"topic": 3.7 * math.exp(-step / 150) + 0.05 * rng.random()}
        if step % 30:  # sentiment was not sampled in every window
            loss["sentiment"] = 0.69 * math.exp(-step / 300) + 0.02 * rng.random()
        lines.append(
            {
                "type": "train", "step": step, "epoch": step / 50, "loss": loss,
                "total_loss": sum(loss.values()), "lr": 2e-5 * (1 - step / 200), "elapsed_s": step * 0.6,
                "examples": {task: 80 for task in loss},
            }
        )  # fmt: skip
        if step % 50 == 0:
            tasks = _task_metrics(rng, step, 400)
            score = float(np.mean([m["macro_f1"] for m in tasks.values()]))
            lines.append(
                {"type": "eval", "step": step, "split": "validation", "tasks": tasks, "score": score,
                 "elapsed_s": step * 0.6 + 2}
            )  # fmt: skip
    lines.append({"type": "checkpoint", "step": 200, "path": "checkpoints/step-200"})  # unknown type: ignored
    if with_test:
        tasks = _task_metrics(rng, 200, 1000)  # the loop tests the model it kept: step 150 (say, by min_delta)
        lines.append({"type": "test", "step": 200, "split": "test", "best_step": 150, "tasks": tasks, "elapsed_s": 131.5})
    return lines


def _write_log(run_dir: Path, lines: list, tail: str = "\n") -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "metrics.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + tail)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    log = _synthetic_log()
    _write_log(run_dir, log)
    write_report(run_dir, test_metrics=log[-1]["tasks"], title="jeopardy + sentiment")  # as the loop calls it
    return run_dir


def test_report_covers_every_task_with_results_and_per_class_tables(run_dir: Path) -> None:
    text = (run_dir / "report.md").read_text()
    test_tasks = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["tasks"]
    assert text.startswith("# jeopardy + sentiment\n")
    assert "topic (40 classes)" in text and "sentiment (2 classes)" in text
    assert "## Results (test, step 200)" in text
    acc, f1 = test_tasks["topic"]["accuracy"], test_tasks["topic"]["macro_f1"]
    assert f"| topic | {acc:.3f} | {f1:.3f} | 0.025 | 1000 |" in text
    assert "**training time**: 2 min 12 s" in text
    assert "**best validation step**: 150 (" in text and "At the best validation step (150):" in text
    for name in TOPICS:  # one per-class row per topic, with the real support
        assert f"| {name} | " in text and f" | {test_tasks['topic']['per_class'][name]['support']} |" in text
    assert "| rotten | " in text
    assert "phase 1: heads only, encoder frozen" in text
    assert "checkpoints/step-200" not in text  # an unknown line type is ignored


def test_every_linked_plot_is_a_real_png(run_dir: Path) -> None:
    text = (run_dir / "report.md").read_text()
    expected = ["loss.png", "validation.png", "confusion_topic.png", "confusion_sentiment.png"]
    for name in expected:
        assert f"](plots/{name})" in text
        data = (run_dir / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000, f"{name} is suspiciously small"
    topic_png = (run_dir / "plots" / "confusion_topic.png").read_bytes()
    width, height = int.from_bytes(topic_png[16:20], "big"), int.from_bytes(topic_png[20:24], "big")
    assert width >= 1200 and height >= 1200  # 40 classes get a big enough canvas to read
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(expected)  # no temp files left
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.jsonl", "plots", "report.md"]


def test_best_validation_step_is_highest_mean_macro_f1_earliest_on_tie() -> None:
    def record(step: int, *scores: float) -> dict:
        return {"step": step, "tasks": {f"t{i}": {"accuracy": 0.5, "macro_f1": s} for i, s in enumerate(scores)}}

    evals = [record(50, 0.2, 0.4), record(100, 0.5, 0.3), record(150, 0.6, 0.2), record(200, 0.1, 0.1)]
    assert best_validation(evals)["step"] == 100
    assert best_validation(evals, best_step=200)["step"] == 200  # the step the run says it kept wins
    assert best_validation(evals, best_step=999)["step"] == 100  # an unknown step falls back to ranking
    assert best_validation([]) is None


def test_best_validation_step_follows_the_loops_score_when_logged() -> None:
    evals = [
        {"step": 50, "score": 0.9, "tasks": {"t": {"accuracy": 0.5, "macro_f1": 0.1}}},
        {"step": 100, "score": 0.2, "tasks": {"t": {"accuracy": 0.5, "macro_f1": 0.8}}},
    ]
    assert best_validation(evals)["step"] == 50  # e.g. the loop selects by accuracy or by loss


def test_without_a_test_line_the_best_validation_step_is_reported(tmp_path: Path) -> None:
    log = _synthetic_log(with_test=False)
    for record in log:  # the 2-class task alone keeps this test quick
        record.get("tasks", {}).pop("topic", None)
    _write_log(tmp_path, log)
    best = best_validation([r for r in log if r["type"] == "eval"])
    text = write_report(tmp_path).read_text()
    assert f"## Results (validation, best step {best['step']})" in text
    assert (tmp_path / "plots" / "confusion_sentiment.png").read_bytes().startswith(PNG_MAGIC)


def test_test_metrics_argument_overrides_the_log_and_task_names_become_safe_file_names(tmp_path: Path) -> None:
    _write_log(tmp_path, [{"type": "train", "step": 5, "loss": {"a:b": 0.7}}])
    given = {
        "a:b": classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], ["no", "yes"]),
        "a/b": classification_metrics([0, 1, 1, 1], [0, 1, 1, 1], ["no", "yes"]),
    }
    text = write_report(tmp_path, test_metrics=given).read_text()
    assert "## Results (test)" in text and "| a:b | 0.750 |" in text and "| a/b | 1.000 |" in text
    assert "](plots/confusion_a_b.png)" in text and "](plots/confusion_a_b_2.png)" in text
    assert "validation.png" not in text  # nothing was evaluated, so no empty plot is linked
    with pytest.raises(InputError, match="missing 'macro_f1'"):
        write_report(tmp_path, test_metrics={"a:b": {"accuracy": 0.5}})


def test_log_without_evaluation_still_reports_training(tmp_path: Path) -> None:
    _write_log(tmp_path, [{"type": "train", "step": s, "loss": {"topic": 3.0 / s}} for s in (1, 2, 3)])
    text = write_report(tmp_path).read_text()
    assert "No evaluation was logged" in text and "](plots/loss.png)" in text


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    path = _write_log(tmp_path, [{"type": "train", "step": 1, "loss": {"t": 1.0}}, "", '{"type": "train", "step": 2,'])
    path.write_text(path.read_text() + json.dumps({"type": "train", "step": 3, "loss": {"t": 0.5}}) + "\n")
    with pytest.raises(InputError) as caught:
        read_metrics_log(path)
    assert caught.value.line == 3 and caught.value.file == str(path)
    assert f"{path}:3" in str(caught.value) and "not valid JSON" in str(caught.value)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"type": "train", "step": "ten", "loss": {}}, "step", "non-negative integer"),
        ({"type": "train", "step": 1, "loss": {"topic": "high"}}, "loss.topic", "number"),
        ({"type": "train", "step": 1}, "loss", "task -> loss"),
        ({"step": 1}, "type", "type"),
        ({"type": "eval", "step": 1, "tasks": {}}, "tasks", "non-empty"),
        ({"type": "eval", "step": 1, "tasks": {"t": {"accuracy": 0.5}}}, "tasks.t", "macro_f1"),
        (
            {"type": "test", "step": 1, "tasks": {"t": {"accuracy": 1, "macro_f1": 1, "labels": ["a", "b"], "confusion_matrix": [[1, 0]]}}},
            "tasks.t.confusion_matrix",
            "2 x 2",
        ),
    ],
)
def test_bad_record_shape_names_line_and_field(tmp_path: Path, record: dict, field: str, message: str) -> None:
    path = _write_log(tmp_path, [{"type": "event", "message": "start"}, record])
    with pytest.raises(InputError, match=message) as caught:
        read_metrics_log(path)
    assert (caught.value.line, caught.value.field) == (2, field)


def test_non_object_line_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="JSON object") as caught:
        read_metrics_log(_write_log(tmp_path, ["[1, 2]"]))
    assert caught.value.line == 1


def test_unfinished_last_line_from_a_crash_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = _write_log(tmp_path, [{"type": "train", "step": 1, "loss": {"t": 1.0}}, '{"type": "tra'], tail="")
    with pytest.warns(UserWarning, match="unfinished last line"):
        records = read_metrics_log(path)
    assert [r["step"] for r in records] == [1]


def test_missing_and_empty_logs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no metrics log"):
        write_report(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="empty"):
        write_report(tmp_path)
    assert not (tmp_path / "report.md").exists()
