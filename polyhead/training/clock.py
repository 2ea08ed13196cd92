"""A run's training time: wall seconds and CPU seconds, carried over when a run resumes."""

from __future__ import annotations

import time


class RunClock:
    """Wall and CPU seconds since the run started, minus time lost to a crash (a resumed run starts from its checkpoint's)."""

    def __init__(self) -> None:
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()

    def resume_from(self, elapsed_s: float, cpu_s: float) -> None:
        self.wall_start -= elapsed_s
        self.cpu_start -= cpu_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.wall_start

    def cpu_seconds(self) -> float:
        """CPU seconds of this process, all threads: steadier than wall time on a shared machine."""
        return time.process_time() - self.cpu_start
