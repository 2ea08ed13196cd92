"""Two CPU processes (torch.distributed with gloo, launched by torchrun) equal one process."""

from __future__ import annotations

import pytest

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from polyhead.training import load_config, train

from .conftest import REPO, small_config, write_config

pytestmark = pytest.mark.slow  # two real processes: `make test-slow`, run by CI


def _launch(config: Path, timeout: float) -> subprocess.CompletedProcess:
    """torchrun with 2 CPU processes on a free loopback port."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = Path(shutil.which("torchrun") or "torchrun")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
               "-m", "polyhead", "train", str(config)]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_processes_give_the_same_weights_as_one(tmp_path, tiny_bert_dir):
    # One evaluation, at the end: the first always improves, so even processes whose weights had
    # drifted apart would take the same path through it (and the comparison below decides).
    # fp32: under bf16 autocast (auto, on a CPU with AVX-512 BF16) half batches round differently from whole ones.
    exact = {"max_steps": 8, "eval_every": 8, "mixed_precision": "no"}
    single = write_config(tmp_path / "single.yaml", small_config(str(tiny_bert_dir), tmp_path / "single", **exact))
    double = write_config(tmp_path / "double.yaml", small_config(str(tiny_bert_dir), tmp_path / "double", **exact))
    train(load_config(single))  # one process: this one
    two = _launch(double, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    start = [line for line in (tmp_path / "double" / "metrics.jsonl").read_text().splitlines() if '"start"' in line]
    assert '"processes": 2' in start[0]
    # The tolerance comes from how far training moved the weights: 8 Adam steps move the encoder by
    # about 2e-4, so a run whose processes skipped the gradient all-reduce (each stepping on its
    # half batch) lands a sizeable fraction of that away; synchronized runs differ by float
    # rounding only (6e-8 seen), far below 1% of the update.
    initial = {"model.safetensors": load_file(str(tiny_bert_dir / "model.safetensors"))}
    for name in ("model.safetensors", "heads.safetensors"):
        a = load_file(str(tmp_path / "single" / "model" / name))
        b = load_file(str(tmp_path / "double" / "model" / name))
        assert a.keys() == b.keys()
        worst = max(float((a[k] - b[k]).abs().max()) for k in a)
        if name in initial:
            update = max(float((a[k] - initial[name][k]).abs().max()) for k in a if k in initial[name])
            assert update > 1e-4, "training moved the encoder"
            tolerance = update / 100
        else:
            tolerance = 1e-6
        assert worst < tolerance, (name, worst, tolerance)


def test_batch_not_divisible_by_processes_is_an_error(tmp_path, tiny_bert_dir):
    config = write_config(tmp_path / "c.yaml", small_config(str(tiny_bert_dir), tmp_path / "run", batch_size=7))
    result = _launch(config, timeout=300)
    assert result.returncode != 0
    assert "not divisible by the 2 processes" in result.stderr
