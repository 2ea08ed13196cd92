"""Kill -9 at every stage of a checkpoint write: the run always resumes to the same result.

Each killed run is a real process that SIGKILLs itself at an exact point of the checkpoint
writer ($POLYHEAD_FAULT_AT, a test-only hook), not at a moment chosen by timing. At every
stage, resume finds a checkpoint identical (weights, loop state) to the uninterrupted run's
at that step; killed runs resumed to the end reach the uninterrupted run's final checkpoint.
The processes are forked from a server that has already imported torch and polyhead, so a
kill costs the few training steps, not a fresh interpreter's imports.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from polyhead.errors import InputError
from polyhead.fault import FAULT_ENV
from polyhead.training.checkpoint import CheckpointError, CheckpointStore

from .conftest import small_config, write_config

pytestmark = pytest.mark.slow  # real processes killed at every stage: `make test-slow`, run by CI

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
    context.set_forkserver_preload(["tests.training.fault_preload", __name__])
    return context


def _run(forked, config_path: Path, fault: str, resume: bool = False) -> None:
    child = forked.Process(target=_train_until_killed, args=(str(config_path), fault, resume))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -9, f"the run was meant to die by SIGKILL at {fault}, exit code {child.exitcode}"


def _checkpoint(run_dir: Path, step: int) -> dict:
    """What decides everything after `step`: the checkpoint's weights and loop state.

    (Its optimizer file is not compared byte for byte: torch pickles a reloaded optimizer's
    options differently. Equal final weights after the steps that follow a resume show its
    state was restored.)
    """
    directory = run_dir / "checkpoints" / f"step-{step:08d}"
    files = json.loads((directory / "manifest.json").read_text())["files"]
    state = json.loads((directory / "trainer_state.json").read_text())
    state.pop("elapsed_s")
    state.pop("cpu_s")  # clocks differ from run to run
    return {"weights": files["module.safetensors"], "state": state}


@pytest.fixture(scope="module")
def straight(forked, tmp_path_factory, tiny_bert_dir) -> dict[int, dict]:
    """Checkpoints of runs never interrupted: steps 2 and 3 (one stopped there), 4 and 5.

    Every run here is stopped by a kill right after its last checkpoint, so none draws the
    report, which costs more than the training.
    """
    checkpoints = {}
    for stop_at in (KILLED_AT, STEPS):
        root = tmp_path_factory.mktemp("straight")
        _run(forked, write_config(root / "run.yaml", _config(tiny_bert_dir, root / "run")), f"pointer:{stop_at}")
        checkpoints.update({step: _checkpoint(root / "run", step) for step in (stop_at - 1, stop_at)})
    return checkpoints


def _kill(forked, tmp_path: Path, tiny_bert_dir: Path, stage: str) -> Path:
    """A run killed at `stage` of its third checkpoint write; its config file."""
    config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, tmp_path / "run"))
    _run(forked, config_path, f"{stage}:{KILLED_AT}")
    return config_path


def _resume_to_the_end(forked, config_path: Path, run_dir: Path) -> int:
    """Resume (in a process stopped right after its final checkpoint); the step it resumed from."""
    resume_from = int(CheckpointStore(run_dir / "checkpoints").latest().name.split("-")[1])
    _run(forked, config_path, f"pointer:{STEPS - resume_from}", resume=True)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumed = [r["step"] for r in log if r["type"] == "event" and r["message"].startswith("resumed")]
    assert resumed == [resume_from]
    return resume_from


@pytest.mark.parametrize("stage", STAGES)
def test_kill_at_any_stage_leaves_the_uninterrupted_runs_checkpoint(forked, straight, tmp_path, tiny_bert_dir, stage):
    """Whatever the stage, resume finds a complete checkpoint equal to the one the uninterrupted
    run had at that step: the third once it carries its step name, else the second."""
    _kill(forked, tmp_path, tiny_bert_dir, stage)
    checkpoints = tmp_path / "run" / "checkpoints"
    found = CheckpointStore(checkpoints).latest()
    expected = KILLED_AT if STAGES.index(stage) >= STAGES.index("renamed") else KILLED_AT - 1
    assert found == checkpoints / f"step-{expected:08d}"
    assert _checkpoint(tmp_path / "run", expected) == straight[expected]
    # What the interrupted write left behind is removed; the checkpoint before stays as the fallback.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last", *(f"step-{s:08d}" for s in (expected - 1, expected))]
    assert os.readlink(checkpoints / "last") == f"step-{expected:08d}"


@pytest.mark.parametrize("stage", ["weights", "renamed", "pointer-tmp"])
def test_killed_runs_resume_to_the_same_result(forked, straight, tmp_path, tiny_bert_dir, stage):
    """A kill before the rename, after it, and half-way through switching `last`, resumed to the end."""
    config_path = _kill(forked, tmp_path, tiny_bert_dir, stage)
    _resume_to_the_end(forked, config_path, tmp_path / "run")
    assert _checkpoint(tmp_path / "run", STEPS) == straight[STEPS]
    checkpoints = tmp_path / "run" / "checkpoints"
    CheckpointStore(checkpoints).latest()
    assert sorted(p.name for p in checkpoints.iterdir() if p.name != "best") == ["last", "step-00000004", "step-00000005"]


def _truncate_newest(checkpoints: Path) -> None:
    weights = checkpoints / f"step-{KILLED_AT:08d}" / "module.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(forked, straight, tmp_path, tiny_bert_dir, caplog):
    config_path = _kill(forked, tmp_path, tiny_bert_dir, "pointer")
    _truncate_newest(tmp_path / "run" / "checkpoints")
    with caplog.at_level(logging.WARNING, logger="polyhead.training"):
        assert _resume_to_the_end(forked, config_path, tmp_path / "run") == KILLED_AT - 1
    assert _checkpoint(tmp_path / "run", STEPS) == straight[STEPS]
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"step-{KILLED_AT:08d} is unusable (module.safetensors has" in warning


def test_a_run_cut_between_the_former_writers_renames_resumes(forked, straight, tmp_path, tiny_bert_dir):
    """What a kill between the two renames of the former writer left: only `.last.old-*`."""
    config_path = _kill(forked, tmp_path, tiny_bert_dir, "pointer")
    checkpoints = tmp_path / "run" / "checkpoints"
    old = checkpoints / ".last.old-x1y2"
    shutil.copytree(checkpoints / f"step-{KILLED_AT:08d}", old)
    (old / "manifest.json").unlink()
    for path in list(checkpoints.iterdir()):
        if path.name.startswith("step-") or path.name == "last":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    assert _resume_to_the_end(forked, config_path, tmp_path / "run") == KILLED_AT
    assert _checkpoint(tmp_path / "run", STEPS) == straight[STEPS]
    assert not old.exists()


def test_without_a_complete_checkpoint_resume_starts_over(forked, straight, tmp_path, tiny_bert_dir):
    """Killed inside its first checkpoint write, the run resumes from the beginning to the uninterrupted result."""
    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir))
    _run(forked, config_path, "state:1")  # the first write never completes
    assert CheckpointStore(run_dir / "checkpoints").latest() is None
    _run(forked, config_path, f"pointer:{STEPS}", resume=True)
    assert _checkpoint(run_dir, STEPS) == straight[STEPS]
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [r["message"] for r in log if r["type"] == "event"]
    assert events.count("start") == 1 and not [e for e in events if e.startswith("resumed")], events


def test_every_checkpoint_corrupted_is_one_clear_error(forked, tmp_path, tiny_bert_dir):
    run_dir = tmp_path / "run"
    _run(forked, write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir)), "state:2")
    (run_dir / "checkpoints" / "step-00000001" / "optimizer.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"holds no usable checkpoint \(step-00000001: optimizer.pt has 7 bytes"):
        CheckpointStore(run_dir / "checkpoints").latest()


def _train_with_file_size_limit(config_path: str, limit: int, report: str) -> None:
    """In a forked child: every file write beyond `limit` bytes fails (EFBIG), as on a full disk."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from polyhead.training import load_config, train

    try:
        train(load_config(config_path))
    except InputError as error:
        Path(report).write_text(str(error))


def test_a_failed_checkpoint_write_is_one_line_and_leaves_no_debris(forked, tmp_path, tiny_bert_dir):
    run_dir = tmp_path / "run"
    config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, run_dir))
    child = forked.Process(target=_train_with_file_size_limit, args=(str(config_path), 1_000_000, str(tmp_path / "error.txt")))
    child.start()
    child.join(timeout=300)
    message = (tmp_path / "error.txt").read_text()
    assert message.startswith(f"could not write a checkpoint into {run_dir / 'checkpoints'} (")
    # The first checkpoint failed: the advice says what --resume will do then, and a file-size limit is not a full disk.
    assert "\n" not in message and "the previous checkpoint is intact" not in message and "File too large" in message
    assert f"no checkpoint was written before this one: fix that, then polyhead train --resume {run_dir} starts the run again" in message
    assert list((run_dir / "checkpoints").iterdir()) == [], "the failed write left its temp directory"


def test_checkpoint_every_must_be_positive(tmp_path, tiny_bert_dir):
    from polyhead.training import load_config

    config = _config(tiny_bert_dir, tmp_path / "run")
    config["training"]["checkpoint_every"] = -1
    with pytest.raises(InputError, match="checkpoint_every"):
        load_config(write_config(tmp_path / "run.yaml", config))


def test_a_failed_model_write_is_one_line(forked, tmp_path, tiny_bert_dir):
    """The best model is saved at the first validation, before any checkpoint: a full disk there is one line too."""
    run_dir = tmp_path / "run"
    config = _config(tiny_bert_dir, run_dir)
    config["training"].update(checkpoint_every=100, eval_every=2)
    config_path = write_config(tmp_path / "run.yaml", config)
    child = forked.Process(target=_train_with_file_size_limit, args=(str(config_path), 1_000_000, str(tmp_path / "error.txt")))
    child.start()
    child.join(timeout=300)
    message = (tmp_path / "error.txt").read_text()
    assert message.startswith(f"could not write the model into {run_dir / 'checkpoints' / 'best'} (")
    assert "\n" not in message and "no earlier copy was written" in message and f"--resume {run_dir} starts the run again" in message


def test_a_full_disk_while_writing_a_checkpoint_is_named(forked, tmp_path, tiny_bert_dir):
    """On a real full device (a 2 MiB tmpfs: the config and log fit, the weights do not)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        config_path = write_config(tmp_path / "run.yaml", _config(tiny_bert_dir, disk / "run"))
        child = forked.Process(target=_train_with_file_size_limit, args=(str(config_path), 1 << 40, str(tmp_path / "error.txt")))
        child.start()
        child.join(timeout=300)
        message = (tmp_path / "error.txt").read_text()
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)
    assert message.startswith(f"could not write a checkpoint into {disk / 'run' / 'checkpoints'} (the device is full; "), message
    assert "\n" not in message
