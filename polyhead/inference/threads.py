"""How many cores encoding uses, and the pool of single-threaded workers that uses them.

Short texts make small matrix products; splitting each one across cores (intra-op
threads) pays a synchronisation barrier per operation, hundreds per batch, and on a busy
machine a thread waiting at a barrier can lose its core for milliseconds. Giving each
core its own batch instead (batch-level parallelism, every worker single-threaded) has
no barriers at all. Results are identical: each batch is computed exactly as before.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .hardware import usable_cores

_lock = threading.Lock()
_threads: int | None = None
_pools: dict[int, ThreadPoolExecutor] = {}


def set_threads(count: int | None) -> None:
    """Use `count` cores for encoding (None: all usable cores). Also sets torch's intra-op threads."""
    global _threads
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError(f"threads must be a positive integer or None, got {count!r}")
    with _lock:
        _threads = count
    import torch

    torch.set_num_threads(count or usable_cores())


def get_threads() -> int:
    """Cores encoding uses: the `set_threads` value, else every core this process may run on."""
    return _threads or usable_cores()


def _single_threaded_worker() -> None:
    """Pool initializer: this worker's torch ops run on one thread (a per-thread OpenMP setting)."""
    import torch

    torch.set_num_threads(1)
    # The first thread-count query initialises this thread's setting from the count just
    # set; after that it no longer follows the process-wide count, which is restored.
    torch.get_num_threads()


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of `workers` single-threaded threads, created once per size."""
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            import torch

            # torch.set_num_threads also records the count that threads started later
            # inherit; restore it so only the pool's own threads are single-threaded.
            inherited = torch.get_num_threads()
            pool = ThreadPoolExecutor(workers, thread_name_prefix="polyhead-encode", initializer=_single_threaded_worker)
            # Start every worker now (a barrier makes each task wait for all the others, so
            # each runs on its own thread), while the inherited count can still be restored.
            barrier = threading.Barrier(workers)
            list(pool.map(lambda _: barrier.wait(), range(workers)))
            torch.set_num_threads(inherited)
            _pools[workers] = pool
        return pool
