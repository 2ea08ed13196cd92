"""A heartbeat on stderr while an ONNX graph is built before the first batch (int8: minutes on a CPU).

The graph is built inside the first encode call, which shows nothing until it returns; the
encoder's `last_encode_stats` changes when that call is done, which is what this watches.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

TICK_S = 15.0
"""Seconds between heartbeat lines."""


@contextmanager
def graph_build_ticker(encoder, what: str, tick_s: float = TICK_S, stream=None) -> Iterator[None]:
    """Print `building ...: N s` every `tick_s` until the encoder's first call returns, then the time it took."""
    stream = stream or sys.stderr
    initial, start, stop = encoder.last_encode_stats, time.monotonic(), threading.Event()
    print(f"building {what} before the first batch...", file=stream, flush=True)

    ready = threading.Event()

    def report_ready() -> None:
        if not ready.is_set() and encoder.last_encode_stats is not initial:
            ready.set()
            print(f"graph ready after {time.monotonic() - start:.0f} s (with the first batch)", file=stream, flush=True)

    def watch() -> None:
        while not stop.wait(min(tick_s, 0.1)):
            report_ready()
            if ready.is_set():
                return
            elapsed = time.monotonic() - start
            if int(elapsed / tick_s) > int((elapsed - 0.1) / tick_s):
                print(f"  still building {what}: {elapsed:.0f} s", file=stream, flush=True)

    thread = threading.Thread(target=watch, name="graph-build-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
        report_ready()
