"""Kill -9 at every stage of a checkpoint write: the run always resumes to the same result.

Each killed run is a real process that SIGKILLs itself at an exact point of the checkpoint
writer ($POLYHEAD_FAULT_AT, a test-only hook), not at a moment chosen by timing. The
processes are forked from a server that has already imported torch and polyhead, so a
kill costs the few training steps, not a fresh interpreter's imports.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from polyhead.errors import InputError
from polyhead.fault import FAULT_ENV
from polyhead.training.checkpoint import CheckpointError, CheckpointStore

from .conftest import small_config, write_config

STAGES = ("begin", "weights", "optimizer", "rng", "state", "manifest", "renamed", "pointer-tmp", "pointer")
"""Every point between two files or two renames of `CheckpointStore.save`, in order."""
STEPS = 5
"""Steps of every run; each step writes a checkpoint."""
KILLED_AT = 3
"""The checkpoint write that each killed run dies in."""


def _config(tiny_bert_dir: Path, output_dir: Path) -> dict:
    config = small_config(str(tiny_bert_dir), output_dir, max_steps=STEPS, checkpoint_every=1, eval_every=100, backbone_dropout=0.1)
    for task in config["tasks"].values():
        task.update(max_train_examples=48, max_eval_examples=24)
    return config


def _train_until_killed(config_path: str, fault: str, resume: bool) -> None:
    """In a forked child: train with the fault point armed (it SIGKILLs this process)."""
    os.environ[FAULT_ENV] = fault
    from polyhead.training import load_config, train

    train(load_config(config_path), resume=resume)


@pytest.fixture(scope="module")
def forked():
    """A multiprocessing context whose children start with polyhead.training imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["polyhead.training.loop", __name__])
    return context


def _run(forked, config_path: Path, fault: str, resume: bool = False) -> None:
    child = forked.Process(target=_train_until_killed, args=(str(config_path), fault, resume))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -9, f"the run was meant to die by SIGKILL at {fault}, exit code {child.exitcode}"


def _final_checkpoint(run_dir: Path) -> dict:
    """What decides every final metric: the last checkpoint's weights, optimizer and loop state.

    Each run is stopped by a kill right after its final checkpoint (step 5, validated just
    before), so the report, which costs more than the training, is never drawn.
    """
    final = run_dir / "checkpoints" / f"step-{STEPS:08d}"
    files = json.loads((final / "manifest.json").read_text())["files"]
    state = json.loads((final / "trainer_state.json").read_text())
    state.pop("elapsed_s")
    return {"weights": files["module.safetensors"], "optimizer": files["optimizer.pt"], "state": state}


@pytest.fixture(scope="module")
def straight(forked, tmp_path_factory, tiny_bert_dir) -> dict:
    """The final checkpoint of a run never interrupted."""
    root = tmp_path_factory.mktemp("straight")
    _run(forked, write_config(root / "run.yaml", _config(tiny_bert_dir, root / "run")), f"pointer:{STEPS}")
    return _final_checkpoint(root / "run")


def _kill_then_resume(forked, tmp_path: Path, tiny_bert_dir: Path, stage: str, damage=None) -> int:
    """Kill a run at `stage` of its third checkpoint write, resume it to the end; the step it resumed from."""
    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir))
    _run(forked, config_path, f"{stage}:{KILLED_AT}")
    if damage is not None:
        damage(run_dir / "checkpoints")
    store = CheckpointStore(run_dir / "checkpoints")
    resume_from = int(store.latest().name.split("-")[1])
    _run(forked, config_path, f"pointer:{STEPS - resume_from}", resume=True)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumed = [r["step"] for r in log if r["type"] == "event" and r["message"].startswith("resumed")]
    assert resumed == [resume_from]
    return resume_from


@pytest.mark.parametrize("stage", STAGES)
def test_kill_at_any_stage_resumes_to_the_same_result(forked, straight, tmp_path, tiny_bert_dir, stage):
    resumed_from = _kill_then_resume(forked, tmp_path, tiny_bert_dir, stage)
    # The newest complete checkpoint is used: the third one as soon as it carries its step name.
    assert resumed_from == (KILLED_AT if STAGES.index(stage) >= STAGES.index("renamed") else KILLED_AT - 1)
    assert _final_checkpoint(tmp_path / "run") == straight
    # Whatever interrupted writes left behind is removed; the newest two checkpoints stay.
    checkpoints = tmp_path / "run" / "checkpoints"
    CheckpointStore(checkpoints).latest()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last", "step-00000004", "step-00000005"]
    assert os.readlink(checkpoints / "last") == "step-00000005"


def _truncate_newest(checkpoints: Path) -> None:
    weights = checkpoints / f"step-{KILLED_AT:08d}" / "module.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(forked, straight, tmp_path, tiny_bert_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="polyhead.training"):
        resumed_from = _kill_then_resume(forked, tmp_path, tiny_bert_dir, "pointer", damage=_truncate_newest)
    assert resumed_from == KILLED_AT - 1
    assert _final_checkpoint(tmp_path / "run") == straight
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"step-{KILLED_AT:08d} is unusable (module.safetensors has" in warning


def _old_layout(checkpoints: Path) -> None:
    """What a crash between the two renames of the former writer left: only `.last.old-*`."""
    old = checkpoints / ".last.old-x1y2"
    shutil.copytree(checkpoints / f"step-{KILLED_AT:08d}", old)
    (old / "manifest.json").unlink()
    for path in list(checkpoints.iterdir()):
        if path.name.startswith("step-") or path.name == "last":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def test_a_run_cut_between_the_former_writers_renames_resumes(forked, straight, tmp_path, tiny_bert_dir):
    assert _kill_then_resume(forked, tmp_path, tiny_bert_dir, "pointer", damage=_old_layout) == KILLED_AT
    assert _final_checkpoint(tmp_path / "run") == straight
    assert not (tmp_path / "run" / "checkpoints" / ".last.old-x1y2").exists()


def test_without_a_complete_checkpoint_resume_says_so(forked, tmp_path, tiny_bert_dir):
    from polyhead.training import load_config, train

    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir))
    _run(forked, config_path, "state:1")  # the first write never completes
    with pytest.raises(InputError, match="has no checkpoint to resume from"):
        train(load_config(config_path), resume=True)
    with pytest.raises(InputError, match="already holds a run"):
        train(load_config(config_path))
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")], "the interrupted write is removed"


def test_every_checkpoint_corrupted_is_one_clear_error(forked, tmp_path, tiny_bert_dir):
    run_dir = tmp_path / "run"
    _run(forked, write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir)), "state:2")
    (run_dir / "checkpoints" / "step-00000001" / "optimizer.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"holds no usable checkpoint \(step-00000001: optimizer.pt has 7 bytes"):
        CheckpointStore(run_dir / "checkpoints").latest()


def test_checkpoint_every_must_be_positive(tmp_path, tiny_bert_dir):
    from polyhead.training import load_config

    config = _config(tiny_bert_dir, tmp_path / "run")
    config["training"]["checkpoint_every"] = -1
    with pytest.raises(InputError, match="checkpoint_every"):
        load_config(write_config(tmp_path / "run.yaml", config))
