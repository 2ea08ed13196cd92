"""The GPU feeding path, checked on a CPU: token-budget batches, the prefetch pipeline, identical vectors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from polyhead.inference.device_pipeline import PipelineOptions, chunk_bounds, run_pipelined
from polyhead.inference.prefetch import prefetch
from polyhead.inference.token_batches import token_budget_batches
from polyhead.tokenization import padded_width


# ---------------------------------------------------------------------------- token budget
def test_token_budget_batches_cover_every_text_once_longest_first_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=1000)
    batches = token_budget_batches(lengths, max_tokens=4096, max_texts=256, multiple=16, limit=256)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert np.all(np.diff(lengths[flat]) <= 0)  # longest first
    for batch in batches:
        width = padded_width(int(lengths[batch].max()), 16, 256)
        assert len(batch) * width <= 4096 and len(batch) <= 256
    # Short texts make big batches, long ones small: the batch count follows the tokens, not the texts.
    assert len(batches[-1]) > 4 * len(batches[0])


def test_a_text_longer_than_the_budget_runs_alone_and_max_texts_caps_short_ones():
    batches = token_budget_batches(np.array([600, 5, 5, 5, 5]), max_tokens=512, max_texts=3)
    assert [b.tolist() for b in batches] == [[0], [1, 2, 3], [4]]
    with pytest.raises(ValueError, match="max_tokens"):
        token_budget_batches(np.array([3]), max_tokens=0, max_texts=1)


def test_chunk_bounds_start_small_then_cover_the_rest():
    assert list(chunk_bounds(10, 3, 4)) == [(0, 3), (3, 7), (7, 10)]
    assert list(chunk_bounds(0, 3, 4)) == []


# ---------------------------------------------------------------------------- prefetch
def test_prefetch_keeps_order_computes_each_item_once_and_stays_bounded():
    started: list[int] = []
    taken = 0
    lock = threading.Lock()
    most_ahead = 0

    def work(item: int) -> int:
        nonlocal most_ahead
        with lock:
            started.append(item)
            most_ahead = max(most_ahead, len(started) - taken)
        time.sleep(0.001 * (item % 3))  # out-of-order finishing on two workers
        return item * item

    results = []
    for value in prefetch(range(40), work, depth=3, workers=2):
        with lock:
            taken += 1
        time.sleep(0.002)  # a slow consumer: the producers must wait, not run ahead
        results.append(value)
    assert results == [i * i for i in range(40)]
    assert sorted(started) == list(range(40))
    assert most_ahead <= 3 + 1  # `depth` ahead of the consumer, plus the one being handed over


def test_prefetch_raises_the_workers_exception_at_its_place():
    def work(item: int) -> int:
        if item == 5:
            raise RuntimeError("bad chunk 5")
        return item

    seen = []
    with pytest.raises(RuntimeError, match="bad chunk 5"):
        for value in prefetch(range(10), work, depth=2):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_closed_early_does_not_compute_the_rest():
    done = []
    iterator = prefetch(range(1000), lambda i: done.append(i) or i, depth=2)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]
    iterator.close()
    time.sleep(0.05)
    assert len(done) <= 6


# ---------------------------------------------------------------------------- the pipeline on real texts
@pytest.fixture(scope="module")
def mixed_texts(sentiment) -> list[str]:
    """Real reviews plus Jeopardy!-like long and very short texts, in no particular order."""
    texts = sentiment.train.texts[:300]
    return texts + ["ok", "", "A much longer text " * 30] + sentiment.train.texts[300:360]


def _runner(encoder, options: PipelineOptions):
    _, runner = encoder._runners.resolve(encoder, "torch", ["x"])
    return runner


def test_pipeline_gives_the_plain_paths_vectors_in_input_order(encoder, mixed_texts):
    reference = encoder.encode(mixed_texts, backend="torch")
    runner = _runner(encoder, PipelineOptions())
    options = PipelineOptions(max_tokens=3000, max_texts=64, first_chunk_texts=50, chunk_texts=128, depth=2)
    calls = []
    result = run_pipelined(mixed_texts, encoder.text_tokenizer, runner.device_forward(None), encoder.device,
                           encoder.embedding_dim, options, lambda texts, tokens: calls.append((texts, tokens)))
    got = result.embeddings.cpu().numpy()
    assert got.shape == reference.shape
    assert np.abs(got - reference).max() < 1e-5  # only the padding width differs (buckets of 16)
    assert sum(t for t, _ in calls) == len(mixed_texts)
    assert result.tokens == sum(tok for _, tok in calls) == int(encoder.text_tokenizer.tokenize(mixed_texts).lengths.sum())
    # each text's own count, in input order, although batches ran sorted by length (the server's usage needs them)
    assert result.lengths.tolist() == encoder.text_tokenizer.tokenize(mixed_texts).lengths.tolist()
    assert max(t for t, _ in calls) <= 64


def test_encode_goes_through_the_pipeline_when_the_runner_has_one(encoder, mixed_texts, monkeypatch):
    """What a GPU runner does by default, forced on the CPU runner: same vectors, stats and truncation warning."""
    import copy

    from polyhead.encoder import TruncationWarning

    local = copy.deepcopy(encoder)
    _, runner = local._runners.resolve(local, "torch", ["x"])
    reference = local.encode(mixed_texts, backend="torch")
    runner.pipeline = PipelineOptions(max_tokens=2048, first_chunk_texts=64, chunk_texts=100)
    long_text = "word " * 400
    with pytest.warns(TruncationWarning, match="1 of"):
        got = local.encode([*mixed_texts, long_text], backend="torch")
    assert np.abs(got[:-1] - reference).max() < 1e-5
    assert local.last_encode_stats.truncated == 1 and local.last_encode_stats.texts == len(mixed_texts) + 1
    as_tensor = local.encode(mixed_texts[:3], backend="torch", output="torch")
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.device == local.device
    single = local.encode(mixed_texts[0], backend="torch")
    assert single.shape == (local.embedding_dim,) and np.abs(single - reference[0]).max() < 1e-5


def test_pipeline_propagates_a_failing_forward(encoder, mixed_texts):
    def broken(ids, mask):
        raise RuntimeError("device lost")

    with pytest.raises(RuntimeError, match="device lost"):
        run_pipelined(mixed_texts, encoder.text_tokenizer, broken, encoder.device, encoder.embedding_dim,
                      PipelineOptions(first_chunk_texts=10, chunk_texts=10))


def test_gpu_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("POLYHEAD_GPU_MAX_TOKENS", "4096")
    assert PipelineOptions.for_device().max_tokens == 4096
    monkeypatch.setenv("POLYHEAD_GPU_MAX_TOKENS", "lots")
    with pytest.raises(ValueError, match="POLYHEAD_GPU_MAX_TOKENS"):
        PipelineOptions.for_device()
    with pytest.raises(ValueError, match="depth"):
        PipelineOptions(depth=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: pinned buffers and non-blocking copies")
def test_gpu_encode_matches_fp32_on_the_cpu(mixed_texts):
    from polyhead import SentenceEncoder

    cpu = SentenceEncoder(device="cpu").encode(mixed_texts, backend="torch")
    gpu = SentenceEncoder(device="cuda")
    fast = gpu.encode(mixed_texts, backend="torch")
    assert np.abs(fast - cpu).max() < 1e-4
    bf16 = gpu.encode(mixed_texts, backend="torch-bf16")
    from polyhead.similarity import row_cosines

    assert row_cosines(bf16, cpu).min() >= 0.999
    chosen = gpu.encode(mixed_texts, backend="auto")  # the probe runs here, once
    probe = gpu._runners.last_probe
    assert probe is not None and gpu.last_encode_stats.backend == probe.choice
    assert probe.seconds[probe.choice] == min(probe.seconds.values()) or probe.choice == "torch"
    assert row_cosines(chosen, cpu).min() >= 0.999
    on_device = gpu.encode(mixed_texts[:5], backend="torch", output="torch")
    assert on_device.device.type == "cuda"


def test_the_gpus_bf16_twin_keeps_the_backbones_own_attention_and_stays_close_to_fp32(encoder, rt_texts):
    """What `torch-bf16` runs on a GPU (bf16 Linear weights, SDPA at every width), checked here on the CPU."""
    from polyhead.inference.bf16 import Bf16Linear, Bf16Twin, bf16_twin
    from polyhead.similarity import row_cosines

    twin = bf16_twin(encoder.backbone, pack=False, short_attention=False)
    assert not isinstance(twin, Bf16Twin) and any(isinstance(m, Bf16Linear) for m in twin.modules())
    assert twin.config._attn_implementation == encoder.backbone.config._attn_implementation
    batch = encoder.tokenize(rt_texts[:32])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast = encoder.embed_tokens(twin(**batch)[0].float(), batch["attention_mask"])
    with torch.inference_mode():
        exact = encoder(batch["input_ids"], batch["attention_mask"])
    assert row_cosines(exact.numpy(), fast.float().numpy()).min() >= 0.999
