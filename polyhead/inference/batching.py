"""Run a model over many tokenized texts: longest first, padded per batch, spread over workers.

Shared by every backend, so sorting, padding, parallelism and progress reporting are
written once. A backend only supplies `run(input_ids, attention_mask) -> {name: rows}`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import numpy as np

from ..tokenization import pad_arrays
from .threads import worker_pool

BatchRunner = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""Maps a padded batch (input_ids, attention_mask) to named outputs, one row per text."""

ProgressCallback = Callable[[int, int], None]
"""Called after each batch with (texts in the batch, real tokens in the batch)."""


class _Outputs:
    """Output arrays in input order, allocated when the first batch shows their shapes."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.arrays: dict[str, np.ndarray] = {}

    def store(self, index: np.ndarray, result: dict[str, np.ndarray]) -> None:
        for name, values in result.items():
            if name not in self.arrays:
                self.arrays[name] = np.empty((self.rows, *values.shape[1:]), dtype=values.dtype)
            self.arrays[name][index] = values


def run_batches(
    ids: list[np.ndarray],
    run: BatchRunner,
    *,
    batch_size: int,
    pad_id: int,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> dict[str, np.ndarray]:
    """Every output of `run` for every text, in input order.

    Texts are sorted longest first, so each batch pads little and the slowest batches
    start first. With `workers` > 1, batches run concurrently on single-threaded workers.
    """
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")
    outputs = _Outputs(len(ids))
    starts = range(0, len(ids), batch_size)

    def one_batch(start: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        index = order[start : start + batch_size]
        input_ids, mask = pad_arrays([ids[i] for i in index], pad_id)
        return index, run(input_ids, mask)

    def finish(index: np.ndarray, result: dict[str, np.ndarray]) -> None:
        outputs.store(index, result)
        if progress is not None:
            progress(len(index), int(lengths[index].sum()))

    if workers <= 1 or len(starts) <= 1:
        for start in starts:
            finish(*one_batch(start))
        return outputs.arrays
    pool = worker_pool(workers)
    futures: list[Future] = [pool.submit(one_batch, start) for start in starts]
    try:
        for future in futures:
            finish(*future.result())
    finally:
        for future in futures:
            future.cancel()  # after an error or interrupt, drop batches not yet started
    return outputs.arrays


class ThroughputBar:
    """A tqdm bar over texts that also shows tokens/s; its ETA comes from the texts rate."""

    def __init__(self, total: int | None, desc: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="text", disable=not enabled, dynamic_ncols=True, smoothing=0.1)
        self.tokens = 0
        self.started = time.perf_counter()
        self._shown = 0.0

    def update(self, texts: int, tokens: int) -> None:
        self.tokens += tokens
        now = time.perf_counter()
        if now - self._shown > 0.5:  # the postfix costs a redraw: at most twice a second
            self.bar.set_postfix_str(f"{self.tokens / max(now - self.started, 1e-9):,.0f} tok/s", refresh=False)
            self._shown = now
        self.bar.update(texts)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "ThroughputBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def progress_reporter(total: int, enabled: bool, progress: ProgressCallback | None = None) -> Iterator[ProgressCallback]:
    """A callback for each batch done (texts, tokens) that moves a texts/s + tokens/s bar and calls `progress`."""
    with ThroughputBar(total, "encode", enabled and total > 0) as bar:

        def report(texts: int, tokens: int) -> None:
            bar.update(texts, tokens)
            if progress is not None:
                progress(texts, tokens)

        yield report


def run_with_progress(
    ids: list[np.ndarray],
    run: BatchRunner,
    *,
    batch_size: int,
    pad_id: int,
    workers: int,
    show_progress: bool,
    progress: ProgressCallback | None = None,
) -> dict[str, np.ndarray]:
    """`run_batches` with a texts/s + tokens/s bar, also reporting each batch to `progress`."""
    with progress_reporter(len(ids), show_progress, progress) as report:
        return run_batches(ids, run, batch_size=batch_size, pad_id=pad_id, workers=workers, progress=report)
