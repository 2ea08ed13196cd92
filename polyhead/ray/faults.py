"""Test-only: kill a Ray worker once per job, however often Ray restarts it.

`fault_point` (polyhead/fault.py) counts per process; a restarted worker is a new process
and would die again at the same point forever. With $POLYHEAD_FAULT_ONCE naming a marker
file, the first worker to reach the point creates the file and dies; the others, and the
restarted one, carry on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..fault import FAULT_ENV

ONCE_ENV = "POLYHEAD_FAULT_ONCE"

_reached: dict[str, int] = {}


def fault_once(stage: str) -> None:
    """SIGKILL this process at the n-th arrival at `stage` ($POLYHEAD_FAULT_AT=stage:n), once per marker file."""
    name, _, count = os.environ.get(FAULT_ENV, "").partition(":")
    marker = os.environ.get(ONCE_ENV)
    if name != stage or not marker:
        return
    _reached[stage] = _reached.get(stage, 0) + 1
    if _reached[stage] < int(count or 1):
        return
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
