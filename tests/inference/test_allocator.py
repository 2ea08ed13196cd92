"""The allocator setting: applied once on glibc, and switched off by POLYHEAD_MALLOC_TUNING=0."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = "from polyhead.inference.allocator import keep_freed_memory as k; print(k(), k())"


def _probe(**env: str) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_applied_once_on_glibc():
    assert _probe(POLYHEAD_MALLOC_TUNING="1") == "True True"


def test_switched_off_by_the_environment():
    assert _probe(POLYHEAD_MALLOC_TUNING="0") == "False False"
