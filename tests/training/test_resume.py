"""A run killed mid-way (a real process, SIGKILL) and resumed ends exactly like one never stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO, run_polyhead, small_config, write_config


def _final(run_dir):
    """Test metrics, and every weight of the final model: heads and encoder."""
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    weights = load_file(str(run_dir / "model" / "heads.safetensors"))
    weights.update({f"encoder.{k}": v for k, v in load_file(str(run_dir / "model" / "model.safetensors")).items()})
    return metrics, weights


@pytest.mark.slow  # real processes killed and resumed: `make test-slow`, run by CI
@pytest.mark.parametrize("freeze", [{}, {"lower": 1}], ids=["grouped-batches", "cached-lower-layer"])
def test_killed_run_resumes_to_the_same_result(tmp_path, tiny_bert_dir, freeze):
    """Length-grouped batches (the default) and, frozen lower layers' cache rebuilt after the kill."""
    settings = dict(max_steps=30, eval_every=10, checkpoint_every=5, backbone_dropout=0.1)
    straight = small_config(str(tiny_bert_dir), tmp_path / "straight", **settings)
    killed = small_config(str(tiny_bert_dir), tmp_path / "killed", **settings)
    straight["freeze"] = killed["freeze"] = freeze
    done = run_polyhead("train", str(write_config(tmp_path / "straight.yaml", straight)))
    assert done.returncode == 0, done.stderr

    process = subprocess.Popen(
        [sys.executable, "-m", "polyhead", "train", str(write_config(tmp_path / "killed.yaml", killed))],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    state_file = tmp_path / "killed" / "checkpoints" / "last" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    killed_state = json.loads(state_file.read_text())
    killed_at = killed_state["step"]
    assert 10 <= killed_at < 30
    assert not (tmp_path / "killed" / "test_metrics.json").exists()

    resumed = run_polyhead("train", "--resume", str(tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr
    metrics_a, weights_a = _final(tmp_path / "straight")
    metrics_b, weights_b = _final(tmp_path / "killed")
    assert metrics_a["tasks"] == metrics_b["tasks"]
    assert metrics_a["best_step"] == metrics_b["best_step"]
    assert killed_state["cpu_s"] > 0
    assert metrics_b["cpu_time_s"] > killed_state["cpu_s"], "CPU time before the kill counts in the resumed run's total"
    for key in weights_a:
        assert (weights_a[key] == weights_b[key]).all(), key
    log = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["type"] == "event" and r["message"].startswith("resumed") for r in log)
    steps = [r["step"] for r in log if r["type"] == "train"]
    assert steps == sorted(set(steps)), "a resumed log must not repeat steps"
    cuts = {r["frozen_cache"]["cut"] for r in log if r["type"] == "event" and "frozen_cache" in r}
    assert cuts == ({"layer"} if freeze else {"none"})


def test_same_seed_same_metrics(tmp_path, tiny_bert_dir):
    from polyhead.training import load_config, train

    results = []
    for name in ("a", "b"):
        config = small_config(str(tiny_bert_dir), tmp_path / name, max_steps=8, backbone_dropout=0.1)
        results.append(train(load_config(write_config(tmp_path / f"{name}.yaml", config))))
    assert results[0].test_metrics == results[1].test_metrics
    assert results[0].validation_metrics == results[1].validation_metrics


def test_a_frozen_encoder_is_written_once_a_run_and_linked_by_later_checkpoints(tmp_path, tiny_bert_dir):
    import os

    from polyhead.linked_weights import load_tensors
    from polyhead.training import load_config, train

    config = small_config(str(tiny_bert_dir), tmp_path / "run", tasks=("sentiment",), max_steps=12, eval_every=4)
    config["freeze"] = {"backbone": True}
    train(load_config(write_config(tmp_path / "run.yaml", config)))
    kept = sorted(p for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert [p.name for p in kept] == ["step-00000008", "step-00000012"]
    frozen = [p / "frozen.safetensors" for p in kept]
    assert os.stat(frozen[0]).st_ino == os.stat(frozen[1]).st_ino, "the later checkpoint links the frozen encoder"
    manifests = [json.loads((p / "manifest.json").read_text())["files"] for p in kept]
    assert manifests[0]["frozen.safetensors"] == manifests[1]["frozen.safetensors"]
    trained, still = load_tensors(kept[1] / "module.safetensors", "cpu"), load_tensors(frozen[1], "cpu")
    assert not set(trained) & set(still) and any("head" in name for name in trained)
    saved_backbone = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    backbone = {name.split("backbone.", 1)[1]: t for name, t in still.items() if "backbone." in name}
    assert backbone and all(torch.equal(backbone[n], saved_backbone[n]) for n in backbone)
