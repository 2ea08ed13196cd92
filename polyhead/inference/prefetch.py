"""Compute the next items on worker threads while the caller consumes the current one.

The GPU path uses it to tokenize and pad the next chunk of texts (CPU work that releases the
GIL in the Rust tokenizer) while the device runs the current one, so the device does not wait
for the CPU. At most `depth` items are computed ahead and not yet taken (bounded memory),
results come back in input order, and an exception raised by `fn` is raised to the caller
at that item's place. Closing the iterator early cancels what has not started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")


def prefetch(items: Iterable[T], fn: Callable[[T], U], *, depth: int = 2, workers: int = 1) -> Iterator[U]:
    """`fn(item)` for each item in order, up to `depth` items computed ahead on `workers` threads."""
    if depth < 1 or workers < 1:
        raise ValueError(f"depth and workers must be >= 1, got {depth} and {workers}")
    source = iter(items)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="polyhead-prefetch") as pool:
        try:
            for item in source:
                pending.append(pool.submit(fn, item))
                if len(pending) >= depth:
                    break
            while pending:
                result = pending.popleft().result()  # raises fn's exception here, in order
                for item in source:  # keep `depth` in flight: refill before handing the result over
                    pending.append(pool.submit(fn, item))
                    break
                yield result
        finally:
            for future in pending:
                future.cancel()
