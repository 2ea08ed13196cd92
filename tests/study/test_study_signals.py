"""A signal stops `polyhead study` at once, fresh run or resumed, and keeps the run's checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polyhead.study.runner import run_dir_of
from tests.training.conftest import REPO, small_config, write_config


def _command(config: Path, output: Path) -> list[str]:
    # One strategy, one seed, many short steps: a checkpoint every 10 steps, long enough to be signalled mid-run.
    return [sys.executable, "-m", "polyhead", "study", str(config), "--strategies", "full", "--seeds", "1",
            "--epochs", "1", "--evals-per-epoch", "20", "--no-baseline", "-o", str(output), "--no-progress"]


def _wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, process.communicate()[0][-3000:]
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"condition not met within {timeout}s")


def _signal_and_wait(process: subprocess.Popen, signum: int) -> tuple[int, str, float]:
    sent = time.monotonic()
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    return process.returncode, output, time.monotonic() - sent


def test_a_signal_stops_the_study_and_keeps_the_checkpoint_also_when_resumed(tmp_path, tiny_model_dir):
    raw = small_config(str(tiny_model_dir("bert")), tmp_path / "unused", tasks=("sentiment",), max_steps=None, batch_size=8)
    raw["tasks"]["sentiment"]["max_train_examples"] = 1600  # 200 steps an epoch
    config, output = write_config(tmp_path / "study.yaml", raw), tmp_path / "study"
    run_dir = run_dir_of(output, "full", 42)
    metrics = run_dir / "metrics.jsonl"

    # A fresh run: Ctrl-C after its first checkpoint.
    first = subprocess.Popen(_command(config, output), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: (run_dir / "checkpoints" / "last").exists(), first)
    code, text, _ = _signal_and_wait(first, signal.SIGINT)
    assert code == 130, text[-3000:]
    assert "run the same `polyhead study` command again" in text and "polyhead train --resume" not in text
    assert (run_dir / "checkpoints" / "last").exists()

    # The study again: it resumes the run; SIGTERM during the resumed run stops everything, keeping the checkpoint.
    second = subprocess.Popen(_command(config, output), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: metrics.exists() and "resumed from step" in metrics.read_text(), second)
    code, text, took = _signal_and_wait(second, signal.SIGTERM)
    assert code == 130, text[-3000:]
    assert "starting it again" not in text and "cannot resume" not in text
    assert "run the same `polyhead study` command again" in text
    assert took < 60
    assert (run_dir / "checkpoints" / "last").exists()
    events = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert sum(e.get("message") == "start" for e in events) == 1  # never started from scratch
    results = json.loads((output / "results.json").read_text())
    assert results["runs"] == []  # the interrupted run is not recorded as finished
