"""MicroBatcher in-process on a real (tiny) encoder: sharing, fairness, back-pressure, draining."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from polyhead.serve.batching import MicroBatcher
from polyhead.serve.errors import ApiError
from polyhead.serve.served_model import ServedModel, load_served_model


@pytest.fixture(scope="module")
def tiny(tiny_st_dir) -> ServedModel:
    model = load_served_model(str(tiny_st_dir), device="cpu")
    model.backend = "torch"
    return model


def _rows(rows: torch.Tensor, tokens: int) -> tuple[np.ndarray, int]:
    return rows.numpy().copy(), tokens


async def _with_batcher(model: ServedModel, scenario, **settings):
    options = dict(max_batch_texts=8, batch_wait_ms=20.0, slice_texts=4, max_queued_texts=1000) | settings
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(model.embed, executor, **options)
        batcher.start()
        try:
            return await scenario(batcher)
        finally:
            await batcher.close()


def test_requests_share_batches_and_get_their_own_rows(tiny, sentiment):
    texts = sentiment.train.texts[:12]

    async def scenario(batcher):
        results = await asyncio.gather(*(batcher.submit(texts[i : i + 2], _rows) for i in range(0, 12, 2)))
        return results, batcher.stats

    results, stats = asyncio.run(_with_batcher(tiny, scenario))
    expected = tiny.encoder.encode(texts, normalize=False, show_progress=False, backend="torch")
    for i, (rows, tokens) in enumerate(results):
        assert np.abs(rows - expected[2 * i : 2 * i + 2]).max() <= 1e-5
        assert tokens == sum(len(ids) for ids in tiny.encoder.tokenizer(texts[2 * i : 2 * i + 2])["input_ids"])
    assert stats.texts == 12 and stats.batches == 2  # six requests, two shared batches of at most 8


def test_round_robin_serves_small_requests_between_slices_of_a_big_one(tiny, sentiment):
    order: list[str] = []

    def finish_as(name):
        def finish(rows: torch.Tensor, tokens: int) -> str:
            order.append(name)
            return name

        return finish

    async def scenario(batcher):
        big = asyncio.ensure_future(batcher.submit(sentiment.train.texts[:40], finish_as("big")))
        await asyncio.sleep(0)
        small = [asyncio.ensure_future(batcher.submit([text], finish_as(f"small{i}"))) for i, text in enumerate(sentiment.train.texts[40:43])]
        await asyncio.gather(big, *small)
        return batcher.stats

    stats = asyncio.run(_with_batcher(tiny, scenario))
    assert order[-1] == "big" and set(order[:3]) == {"small0", "small1", "small2"}
    assert stats.largest_batch <= 8


def test_full_queue_answers_503(tiny, sentiment):
    async def scenario(batcher):
        first = asyncio.ensure_future(batcher.submit(sentiment.train.texts[:8], _rows))
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as refused:
            await batcher.submit(sentiment.train.texts[8:12], _rows)
        await first
        return refused.value

    refused = asyncio.run(_with_batcher(tiny, scenario, max_queued_texts=10))
    assert refused.status == 503 and "busy" in refused.message


def test_a_failing_request_does_not_fail_its_batch_mates(tiny, sentiment):
    def broken(rows: torch.Tensor, tokens: int) -> None:
        raise RuntimeError("this request's payload failed")

    async def scenario(batcher):
        return await asyncio.gather(
            batcher.submit(sentiment.train.texts[:2], broken),
            batcher.submit(sentiment.train.texts[2:4], _rows),
            return_exceptions=True,
        )

    failed, fine = asyncio.run(_with_batcher(tiny, scenario))
    assert isinstance(failed, RuntimeError)
    assert fine[0].shape == (2, tiny.encoder.embedding_dim)


def test_close_finishes_queued_work_and_refuses_new(tiny, sentiment):
    async def scenario(batcher):
        pending = [asyncio.ensure_future(batcher.submit(sentiment.train.texts[i : i + 4], _rows)) for i in range(0, 24, 4)]
        await asyncio.sleep(0)
        await batcher.close()
        results = await asyncio.wait_for(asyncio.gather(*pending), timeout=5)
        with pytest.raises(ApiError) as refused:
            await batcher.submit(["too late"], _rows)
        return [rows.shape[0] for rows, _ in results], refused.value.status

    sizes, status = asyncio.run(_with_batcher(tiny, scenario))
    assert sizes == [4] * 6 and status == 503


def test_a_token_budget_sizes_shared_batches_by_their_texts_length(tiny, sentiment):
    """A GPU's setting: long texts make smaller shared batches, short ones fill up to max_batch_texts."""
    from polyhead.serve.batching import estimate_tokens

    short = [f"ok {i}" for i in range(16)]
    long = [" ".join(sentiment.train.texts[i : i + 6]) for i in range(8)]
    seen: list[list[str]] = []
    embed = tiny.embed

    def recording(texts):
        seen.append(list(texts))
        return embed(texts)

    class Recording:
        def __getattr__(self, name):
            return recording if name == "embed" else getattr(tiny, name)

    budget = 3 * estimate_tokens(long[0])

    async def scenario(batcher):
        results = await asyncio.gather(*(batcher.submit(long[i : i + 2], _rows) for i in range(0, 8, 2)),
                                       *(batcher.submit(short[i : i + 4], _rows) for i in range(0, 16, 4)))
        return results

    results = asyncio.run(_with_batcher(Recording(), scenario, max_batch_texts=16, slice_texts=4, max_batch_tokens=budget))
    assert sum(len(batch) for batch in seen) == 24 and len(results) == 8
    for batch in seen:
        assert len(batch) == 1 or sum(estimate_tokens(t) for t in batch) <= budget
    assert len(seen) > 2  # by texts alone, 24 texts would make two batches of 16 and 8
    assert max(len(b) for b in seen) > 3  # short texts still share a batch with the long ones
    expected = tiny.encoder.encode(long[:2], normalize=False, show_progress=False, backend="torch")
    assert np.abs(results[0][0] - expected).max() <= 1e-5


def test_one_text_over_the_token_budget_still_runs_alone(tiny):
    text = "word " * 200

    async def scenario(batcher):
        return await batcher.submit([text, "short"], _rows), batcher.stats

    (rows, _), stats = asyncio.run(_with_batcher(tiny, scenario, max_batch_tokens=10))
    assert rows.shape[0] == 2 and stats.batches == 2


def test_a_text_longer_than_the_model_takes_weighs_only_what_is_encoded():
    """A 200,000-character text is cut to max_seq_length before encoding: it must not fill a GPU's token budget alone."""
    from polyhead.serve.batching import estimate_tokens

    assert estimate_tokens("x" * 200_000) == 50_002
    assert estimate_tokens("x" * 200_000, limit=256) == 256
    assert estimate_tokens("a short text", limit=256) == estimate_tokens("a short text")
