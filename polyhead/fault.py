"""Test-only fault points: `POLYHEAD_FAULT_AT=<stage>[:<n>]` SIGKILLs this process at a stage.

Crash safety is only shown by crashing. Writers that must survive a kill (the checkpoint
store) call `fault_point("<stage>")` between their steps; with the variable set, the n-th
time (default: the first) that stage is reached the process kills itself with SIGKILL, a
real signal at an exact point rather than a timing guess. Unset (always, outside tests),
a fault point is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "POLYHEAD_FAULT_AT"

_reached: dict[str, int] = {}


def fault_point(stage: str) -> None:
    """Kill this process here when $POLYHEAD_FAULT_AT names `stage` (and this is its n-th time)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name != stage:
        return
    _reached[stage] = _reached.get(stage, 0) + 1
    if _reached[stage] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
