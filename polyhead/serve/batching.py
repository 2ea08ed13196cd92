"""Dynamic micro-batching: the texts of many concurrent requests share one forward pass.

Requests wait in a queue as jobs. A single background task collects up to
`max_batch_texts` texts, and with `max_batch_tokens` (a GPU's setting: batches sized by
tokens) at most that many estimated tokens (waiting at most `batch_wait_ms` for a batch to fill), runs one
encode call on the model thread, and resolves each job's future once all its rows are in.
Jobs are served round-robin, at most `slice_texts` texts each per turn, so a request of
two thousand texts is spread over many batches while small requests slip in between.
All model work happens on one dedicated thread: torch never runs twice at once.

A request whose client disconnects, or whose deadline passes, leaves the queue at once:
its texts not yet encoded are never encoded, and it no longer counts against the queue
limit, so abandoned work cannot lock out the clients still waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import ApiError

logger = logging.getLogger("polyhead.serve")

EmbedFn = Callable[[list[str]], tuple[torch.Tensor, np.ndarray]]
"""texts -> (raw embeddings of shape (n, dim), token count of each text)."""
FinishFn = Callable[[torch.Tensor, int], Any]
"""(a request's embeddings, its token count) -> its response payload; runs on the model thread."""
BatchFn = Callable[[int, int], None]
"""(texts, tokens) of a batch just encoded; runs on the model thread (the server's metrics)."""
WeighFn = Callable[[str], int]
"""A text's estimated token count, for batches sized by tokens (must be cheap: it runs on the event loop)."""


def estimate_tokens(text: str, limit: int | None = None) -> int:
    """About four characters a token for English subword vocabularies, plus the two special tokens,
    at most `limit` (the model's max_seq_length: a longer text is cut to it before it is encoded).

    Exact counts would tokenize every text twice; a shared batch only needs its size roughly right.
    """
    estimate = len(text) // 4 + 2
    return estimate if limit is None else min(estimate, limit)


@dataclass(eq=False)
class Job:
    """One request's texts, the rows encoded so far, and the future its handler awaits."""

    texts: list[str]
    finish: FinishFn
    future: asyncio.Future
    next_text: int = 0
    done_texts: int = 0
    tokens: int = 0
    rows: torch.Tensor | None = None
    failed: bool = False
    dropped: bool = False
    """Its client left or its deadline passed: what is not yet encoded never will be."""

    @property
    def waiting(self) -> int:
        return len(self.texts) - self.next_text


@dataclass
class BatchStats:
    """What the batcher has done so far: shows whether requests really share batches."""

    batches: int = 0
    texts: int = 0
    largest_batch: int = 0


class MicroBatcher:
    """Groups texts of concurrent requests into shared batches; `submit` is the only entry."""

    def __init__(
        self,
        embed: EmbedFn,
        executor: ThreadPoolExecutor,
        *,
        max_batch_texts: int,
        batch_wait_ms: float,
        slice_texts: int,
        max_queued_texts: int,
        on_batch: BatchFn | None = None,
        max_batch_tokens: int | None = None,
        weigh: WeighFn = estimate_tokens,
    ) -> None:
        """`max_batch_tokens` (a GPU's setting) also caps a shared batch by its texts' estimated tokens
        (`weigh`), so a batch of long texts is as heavy as one of short texts, never heavier; None: texts only."""
        self.embed = embed
        self.max_batch_tokens = max_batch_tokens
        self.weigh = weigh
        self.executor = executor
        self.max_batch_texts = max_batch_texts
        self.batch_wait_s = batch_wait_ms / 1000.0
        self.slice_texts = slice_texts
        self.max_queued_texts = max_queued_texts
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._jobs: deque[Job] = deque()
        self._queued_texts = 0
        self._arrived = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="polyhead-batcher")

    async def close(self) -> None:
        """Refuse new work, finish every queued job, then stop."""
        self._closing = True
        self._arrived.set()
        if self._task is not None:
            await self._task

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    # ------------------------------------------------------------------ entry
    async def submit(
        self,
        texts: list[str],
        finish: FinishFn,
        *,
        disconnected: Callable[[], Awaitable[Any]] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Encode `texts` as part of shared batches; returns `finish(embeddings, tokens)`.

        `disconnected()` returns once the client has gone: the request's texts are then
        dropped from the queue (ApiError 499), as they are after `timeout_s` (ApiError 504).
        """
        if self._closing:
            raise ApiError(503, "the server is shutting down", headers={"Retry-After": "1"})
        if self._queued_texts + len(texts) > self.max_queued_texts:
            raise ApiError(503, f"the server is busy ({self._queued_texts} texts queued); retry shortly", headers={"Retry-After": "1"})
        job = Job(texts, finish, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued_texts += len(texts)
        self._arrived.set()
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        try:
            waiting = {job.future} if watcher is None else {job.future, watcher}
            done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if job.future in done:
                return job.future.result()
            if watcher is not None and watcher in done:
                raise ApiError(499, "the client closed the connection before the answer was ready", code="client_closed_request")
            raise ApiError(
                504, f"the texts were not encoded within {timeout_s:g} s (the server is overloaded); they were dropped: retry later or send fewer",
                code="timeout", headers={"Retry-After": "1"},
            )
        finally:
            if watcher is not None:
                watcher.cancel()
            if not job.future.done():
                self._drop(job)

    def _drop(self, job: Job) -> None:
        """Take a job's texts out of the queue; rows already in a running batch are thrown away."""
        job.dropped = True
        job.future.cancel()
        if job.waiting:
            self._queued_texts -= job.waiting
            job.next_text = len(job.texts)
            try:
                self._jobs.remove(job)
            except ValueError:
                pass

    # ------------------------------------------------------------------ worker
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            await self._fill_window(loop)
            batch = self._take_batch()
            if not batch:
                continue
            try:
                finished = await loop.run_in_executor(self.executor, self._encode_batch, batch)
            except BaseException as error:  # noqa: BLE001 - every waiting request must hear of it
                self._fail(batch, error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for job, result in finished:
                if not job.future.done():
                    if isinstance(result, BaseException):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)

    async def _fill_window(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait up to the batch window for the queue to hold a full batch."""
        deadline = loop.time() + self.batch_wait_s
        while self._queued_texts < self.max_batch_texts and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take_batch(self) -> list[tuple[Job, int, int]]:
        """Round-robin over waiting jobs, at most `slice_texts` texts from each per turn."""
        batch: list[tuple[Job, int, int]] = []
        room = self.max_batch_texts
        tokens_room = self.max_batch_tokens
        while room and self._jobs:
            job = self._jobs.popleft()
            if job.future.done() or job.failed:  # cancelled by its client, or already failed
                self._queued_texts -= job.waiting
                job.next_text = len(job.texts)
                continue
            take = min(job.waiting, self.slice_texts, room)
            if tokens_room is not None:
                take, used = self._fit_tokens(job, take, tokens_room, first=not batch)
                if take == 0:  # the budget is spent: this job waits for the next batch, at its turn
                    self._jobs.appendleft(job)
                    break
                tokens_room -= used
            batch.append((job, job.next_text, job.next_text + take))
            job.next_text += take
            self._queued_texts -= take
            room -= take
            if job.waiting:
                self._jobs.append(job)
        return batch

    def _fit_tokens(self, job: Job, take: int, tokens_room: int, first: bool) -> tuple[int, int]:
        """How many of the job's next `take` texts fit in `tokens_room` estimated tokens (at least one
        when the batch is still empty, however long it is), and their tokens."""
        used = count = 0
        for text in job.texts[job.next_text : job.next_text + take]:
            weight = self.weigh(text)
            if used + weight > tokens_room and not (first and count == 0):
                break
            used += weight
            count += 1
        return count, used

    def _encode_batch(self, batch: list[tuple[Job, int, int]]) -> list[tuple[Job, Any]]:
        """On the model thread: one encode for the whole batch, then finish completed jobs."""
        texts = [text for job, start, stop in batch for text in job.texts[start:stop]]
        embeddings, tokens = self.embed(texts)
        self.stats.batches += 1
        self.stats.texts += len(texts)
        self.stats.largest_batch = max(self.stats.largest_batch, len(texts))
        if self.on_batch is not None:
            self.on_batch(len(texts), int(tokens.sum()))
        finished: list[tuple[Job, Any]] = []
        offset = 0
        for job, start, stop in batch:
            count = stop - start
            if job.rows is None:
                job.rows = torch.empty((len(job.texts), embeddings.shape[1]), dtype=embeddings.dtype)
            job.rows[start:stop] = embeddings[offset : offset + count]
            job.tokens += int(tokens[offset : offset + count].sum())
            job.done_texts += count
            offset += count
            if job.done_texts == len(job.texts) and not job.dropped:
                try:
                    finished.append((job, job.finish(job.rows, job.tokens)))
                except Exception as error:  # noqa: BLE001 - handed to that request alone
                    finished.append((job, error))
        return finished

    def _fail(self, batch: list[tuple[Job, int, int]], error: BaseException) -> None:
        """A batch failed: every request with texts in it fails; others go on."""
        logger.error("batch of %d requests failed", len(batch), exc_info=error)
        for job, _, _ in batch:
            job.failed = True
            if not job.future.done():
                job.future.set_exception(RuntimeError("encoding failed"))
