"""A full disk is named as one, whichever library's writer hit it; a run with no checkpoint starts over.

The full device is a real one: a 400 KiB tmpfs mounted for the test (root only; skipped elsewhere).
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from polyhead.training.checkpoint import start_over, write_failure_reason


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 400 KiB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)  # a failed writer may still hold a file open


def _failure(write) -> BaseException:
    with pytest.raises(Exception) as caught:
        write()
    return caught.value


def test_torch_save_on_a_full_disk_is_named_a_full_disk(small_disk):
    # torch's writer words it `inline_container.cc ... unexpected pos`, with no OS error number.
    error = _failure(lambda: torch.save({"w": torch.zeros(200_000)}, small_disk / "optimizer.pt"))
    assert "No space left" not in str(error)
    assert write_failure_reason(error, small_disk).startswith("the device is full; 0 MiB free")


def test_safetensors_on_a_full_disk_is_named_a_full_disk(small_disk):
    error = _failure(lambda: save_file({"w": torch.zeros(200_000)}, str(small_disk / "module.safetensors")))
    assert write_failure_reason(error, small_disk).startswith("the device is full")


def test_a_full_disk_deep_in_the_exception_chain(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "write")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed") from inner
    except RuntimeError as outer:
        assert write_failure_reason(outer, tmp_path).startswith("the device is full")


def test_other_failures_keep_their_own_words(tmp_path):
    reason = write_failure_reason(PermissionError(errno.EACCES, "Permission denied"), tmp_path)
    assert reason.startswith("[Errno 13] Permission denied")
    # Too little space for what was to be written is a full device too.
    needed = 1 << 60
    assert write_failure_reason(RuntimeError("basic_ios::clear: iostream error"), tmp_path, needed).startswith("the device is full")


def test_start_over_says_so_and_drops_the_stopped_attempts_log(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"type": "event", "step": 0, "message": "start"}\n')
    start_over(tmp_path, main=True)
    assert "starting it again from the beginning" in capsys.readouterr().err
    assert not (tmp_path / "metrics.jsonl").exists()
