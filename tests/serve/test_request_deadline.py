"""A request past its deadline, or whose client left, leaves the queue: MicroBatcher on a real tiny encoder."""

from __future__ import annotations

import asyncio

import pytest

from polyhead.serve.errors import ApiError

from .test_batching import _rows, _with_batcher, tiny  # noqa: F401 - the tiny served-model fixture


def test_a_request_past_its_deadline_gets_504_and_its_texts_leave_the_queue(tiny, sentiment):  # noqa: F811
    texts = (sentiment.train.texts * 2)[:1000]

    async def scenario(batcher):
        with pytest.raises(ApiError) as late:
            await batcher.submit(texts, _rows, timeout_s=0.2)
        queued_after = batcher.queued_texts
        encoded_after = batcher.stats.texts
        await asyncio.sleep(0.3)
        return late.value, queued_after, encoded_after, batcher.stats.texts

    late, queued_after, encoded_after, encoded_later = asyncio.run(
        _with_batcher(tiny, scenario, max_batch_texts=1, slice_texts=1, batch_wait_ms=0.0)
    )
    assert late.status == 504 and late.code == "timeout"
    assert queued_after == 0
    assert encoded_after < len(texts)
    assert encoded_later - encoded_after <= 1, "texts of the late request were still encoded"


def test_a_disconnected_client_frees_the_queue_for_others(tiny, sentiment):  # noqa: F811
    texts = (sentiment.train.texts * 2)[:1000]

    async def scenario(batcher):
        gone = asyncio.Event()
        abandoned = asyncio.create_task(batcher.submit(texts, _rows, disconnected=gone.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError, match="busy"):
            await batcher.submit(texts, _rows)  # the queue (1,000 texts) is full
        gone.set()
        with pytest.raises(ApiError) as closed:
            await abandoned
        rows, _ = await batcher.submit(texts[:3], _rows)
        return closed.value, batcher.queued_texts, rows

    closed, queued, rows = asyncio.run(
        _with_batcher(tiny, scenario, max_batch_texts=1, slice_texts=1, batch_wait_ms=0.0, max_queued_texts=1000)
    )
    assert closed.status == 499
    assert queued == 0
    assert rows.shape[0] == 3
