"""SIGINT/SIGTERM as a flag checked between steps, so a stop always writes a checkpoint first."""

from __future__ import annotations

import contextlib
import signal


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag checked between steps (single-process runs)."""

    def __init__(self, enabled: bool) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        if enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError):  # not the main thread
                    self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.received = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
