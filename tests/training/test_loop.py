"""The loop's promises: accumulation equals a larger batch, a signal writes a checkpoint first,
and a non-finite loss stops the run keeping the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polyhead.training import load_config, train
from polyhead.training.loop import TrainingError, TrainingInterrupted

from .conftest import REPO, small_config, write_config


def _last_checkpoint(run_dir: Path) -> tuple[int, dict[str, torch.Tensor]]:
    """(step, weights) of the run's newest checkpoint."""
    last = run_dir / "checkpoints" / "last"
    step = json.loads((last / "trainer_state.json").read_text())["step"]
    return step, load_file(str(last / "module.safetensors"))


def _one_task(model: Path, output_dir: Path, **training) -> dict:
    """Sentiment alone on 16 training texts: a batch of 16, or two micro-batches of 8, is one epoch."""
    config = small_config(str(model), output_dir, **training)
    config["tasks"] = {"sentiment": {**config["tasks"]["sentiment"], "max_train_examples": 16, "max_eval_examples": 16}}
    return config


def test_accumulating_micro_batches_equals_one_larger_batch(tmp_path, tiny_bert_dir):
    """2 micro-batches of 8 give the weights of 1 batch of 16 (same examples each step); 8 alone do not."""
    runs = {}
    for name, batch_size, accumulate in (("large", 16, 1), ("accumulated", 8, 2), ("micro-batch alone", 8, 1)):
        # fp32: under bf16 autocast (auto, on a CPU with AVX-512 BF16) a batch of 16 and two of 8 round differently.
        config = _one_task(tiny_bert_dir, tmp_path / name, batch_size=batch_size, grad_accum_steps=accumulate,
                           max_steps=3, eval_every=3, log_every=3, mixed_precision="no")
        train(load_config(write_config(tmp_path / f"{name}.yaml", config)))
        runs[name] = _last_checkpoint(tmp_path / name)
    initial = load_file(str(tiny_bert_dir / "model.safetensors"))
    step, large = runs["large"]
    assert step == runs["accumulated"][0] == 3

    def worst(a: dict, b: dict) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    update = max(float((large[k] - initial[k.removeprefix("model.encoder.backbone.")]).abs().max())
                 for k in large if k.removeprefix("model.encoder.backbone.") in initial)
    assert update > 5e-5, "training moved the encoder (3 Adam steps of at most 5e-5)"
    assert worst(runs["accumulated"][1], large) < 0.02 * update
    assert worst(runs["micro-batch alone"][1], large) > 0.1 * update, "the tolerance tells a different gradient apart"


NEVER = 1_000_000


def _endless(model: Path, output_dir: Path) -> dict:
    """A run that never ends by itself and falls due for no periodic checkpoint or evaluation."""
    config = small_config(str(model), output_dir, max_steps=NEVER, eval_every=NEVER, checkpoint_every=NEVER, log_every=1)
    config["tasks"] = {"sentiment": config["tasks"]["sentiment"]}
    return config


def _wait_for_steps(run_dir: Path, steps: int, running: Callable[[], bool], timeout: float = 300) -> None:
    """Block until the run has logged `steps` training steps (while `running()` holds)."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running():
        if metrics.exists() and sum('"type": "train"' in line for line in metrics.read_text().splitlines()) >= steps:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach step {steps}")


def test_sigterm_during_polyhead_train_writes_a_checkpoint_first(tmp_path, tiny_bert_dir):
    """The real command: SIGTERM mid-run, exit status 130, a checkpoint at the step it stopped at."""
    run_dir = tmp_path / "run"
    log_file = tmp_path / "train.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "polyhead", "train", str(write_config(tmp_path / "c.yaml", _endless(tiny_bert_dir, run_dir)))],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_steps(run_dir, 3, lambda: process.poll() is None)
        assert not (run_dir / "checkpoints" / "last").exists(), "no periodic checkpoint was due"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130, log_file.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    stopped = [line for line in log_file.read_text().splitlines() if "stopped by signal" in line]
    step, weights = _last_checkpoint(run_dir)
    assert stopped and f"stopped by signal {int(signal.SIGTERM)} at step {step}; checkpoint written" in stopped[0]
    assert f"--resume {run_dir}" in stopped[0]
    assert step >= 3 and weights
    assert not (run_dir / "test_metrics.json").exists()


def test_sigint_during_train_writes_a_checkpoint_then_raises(tmp_path, tiny_bert_dir):
    """Ctrl-C (a real SIGINT to this process) between steps: checkpoint first, then TrainingInterrupted."""
    run_dir = tmp_path / "run"
    config = load_config(write_config(tmp_path / "c.yaml", _endless(tiny_bert_dir, run_dir)))
    finished = threading.Event()

    def interrupt() -> None:
        try:
            _wait_for_steps(run_dir, 3, lambda: not finished.is_set())
        finally:  # even after a timeout, so that the endless run always ends
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background
    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    try:
        with pytest.raises(TrainingInterrupted, match=f"stopped by signal {int(signal.SIGINT)} at step (\\d+); checkpoint written") as stopped:
            train(config)
    finally:
        finished.set()
        sender.join(timeout=10)
    step, weights = _last_checkpoint(run_dir)
    assert f"at step {step};" in str(stopped.value) and step >= 3 and weights
    assert signal.getsignal(signal.SIGINT) is before, "the handler is restored"


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_bert_dir):
    """Learning rates of 1e30 make step 1's weights overflow step 2's loss."""
    config = small_config(str(tiny_bert_dir), tmp_path / "run", max_steps=12, checkpoint_every=1, eval_every=100,
                          learning_rate=1e30, head_learning_rate=1e30, warmup_ratio=0.0, max_grad_norm=None)
    with pytest.raises(TrainingError) as stopped:
        train(load_config(write_config(tmp_path / "c.yaml", config)))
    message = str(stopped.value)
    assert "became non-finite at step 2; training stopped" in message
    assert f"last good checkpoint is kept in {tmp_path / 'run' / 'checkpoints' / 'last'} (step 1)" in message
    step, weights = _last_checkpoint(tmp_path / "run")
    assert step == 1
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["last", "step-00000001"]
    assert not (tmp_path / "run" / "test_metrics.json").exists()
