"""`encode` under faults: a bad byte deep in the input fails before any work, a stopped run leaves no temp file."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time

import pytest

from polyhead import SentenceEncoder
from polyhead.encode_file import encode_file
from polyhead.errors import InputError
from polyhead.fileio import atomic_file


@pytest.fixture(scope="module")
def tiny_encoder(tiny_st_dir) -> SentenceEncoder:
    return SentenceEncoder(str(tiny_st_dir), device="cpu")


def test_invalid_utf8_at_line_120000_fails_before_encoding(tiny_encoder, tmp_path):
    lines = [f"review number {i}, rather good" for i in range(150_000)]
    data = "\n".join(lines).encode()
    bad = data.index(b"review number 119999,")
    source = tmp_path / "in.txt"
    source.write_bytes(data[:bad] + b"\xff" + data[bad:])
    started = time.monotonic()
    with pytest.raises(InputError, match=r"in.txt:120000: not valid UTF-8 .*nothing was encoded"):
        encode_file(tiny_encoder, source, tmp_path / "out.npy", show_progress=False)
    assert time.monotonic() - started < 5, "the check ran after encoding began"
    assert list(tmp_path.iterdir()) == [source]


def test_sigterm_mid_encode_leaves_no_temp_file(tiny_encoder, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(f"a sentence to encode, number {i}" for i in range(200_000)) + "\n", encoding="utf-8")
    output = tmp_path / "out.npy"

    def terminate_once_writing() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp_path.glob(".out.npy.tmp-*")):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_once_writing)
    killer.start()
    with pytest.raises(SystemExit) as stopped:
        encode_file(tiny_encoder, source, output, chunk_size=64, show_progress=False)
    killer.join()
    assert stopped.value.code == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
    assert signal.getsignal(signal.SIGTERM) == before, "encode_file must put the previous SIGTERM handler back"


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = tmp_path / f".out.npy.tmp-{dead.pid}-k2j4"
    leftover.write_bytes(b"half a file")
    live = tmp_path / f".out.npy.tmp-{os.getppid()}-live"  # a running process's write is left alone
    live.write_bytes(b"being written")
    with atomic_file(tmp_path / "out.npy", "wb") as handle:
        handle.write(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "out.npy"]


def test_a_failed_output_write_is_one_line_and_keeps_nothing(tiny_encoder, tmp_path):
    """Writes beyond 100 kB fail (RLIMIT_FSIZE, EFBIG) as they would on a full disk."""
    source = tmp_path / "in.txt"
    source.write_text("\n".join(f"sentence {i}" for i in range(2000)) + "\n", encoding="utf-8")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
    try:
        with pytest.raises(InputError, match=r"out.npy: could not write the embeddings \(File too large; .* nothing was kept"):
            encode_file(tiny_encoder, source, tmp_path / "out.npy", chunk_size=256, show_progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
