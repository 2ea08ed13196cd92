"""`make demo`'s module end to end on a tiny budget: it trains, tests, predicts and says what it measured."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # the demo module end to end: `make test-slow`, run by CI


def test_demo_runs_on_a_tiny_budget(tmp_path):
    import subprocess
    import sys

    from tests.training.conftest import REPO

    overrides = [f"output_dir={tmp_path / 'demo'}", "training.max_steps=4", "training.eval_every=4", "training.log_every=2",
                 "tasks.topic.max_train_examples=64", "tasks.sentiment.max_train_examples=64",
                 "tasks.topic.max_eval_examples=40", "tasks.sentiment.max_eval_examples=40", "training.progress=false"]
    done = subprocess.run([sys.executable, "-m", "polyhead.demo", *overrides], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "4 steps in" in out
    assert "test metrics of the best model (SUBSETS of the test splits: topic 40, sentiment 40 texts)" in out
    predictions = out.split("predictions (")[1].split("lee similarity")[0]
    plain, harder = predictions.split("harder:")
    assert plain.count("sentiment=") == 6 and harder.count("sentiment=") == 1
    assert plain.count(" ✓") + plain.count(" ✗") == 3  # the three texts with a reader's label are checked
    assert harder.count(" ✓") + harder.count(" ✗") == 1
    assert "lee similarity (Spearman) of the encoder:" in out
    # The worst errors: printed per task, every one in errors_test.csv, each really wrong.
    import csv

    worst = out.split("worst errors on the test splits")[1].split("lee similarity")[0]
    rows = list(csv.DictReader((tmp_path / "demo" / "errors_test.csv").open(encoding="utf-8")))
    assert rows and all(r["true_label"] != r["predicted_label"] for r in rows)
    assert {r["task"] for r in rows} <= {"topic", "sentiment"} and len(rows) <= 80
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert f"all {len(rows)} in" in worst and rows[0]["predicted_label"] in worst
    assert (tmp_path / "demo" / "model" / "README.md").is_file()
