"""Encoding on a GPU without making it wait for the CPU.

The CPU work of an encode call (tokenizing, sorting, padding, pinning) runs on worker threads
a few chunks ahead of the device (`prefetch`). Each chunk's texts are cut into batches by a
token budget with widths rounded to length buckets (`token_budget_batches`), padded once into
pinned host tensors, and copied in with `non_blocking=True`. Embeddings stay on the device, in
one output tensor indexed by each text's position, and are read back once at the end: no
batch waits for the previous one to reach the host. Memory stays bounded: at most `depth`
chunks are prepared ahead, and the output is one row per text (the streaming file encoder
calls this per chunk of the file).

The same code runs on a CPU (no pinning, no overlap to gain), which is how it is tested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..tokenization import TextTokenizer, pad_arrays
from .prefetch import prefetch
from .token_batches import DEFAULT_MAX_TEXTS, DEFAULT_MAX_TOKENS, GPU_LENGTH_MULTIPLE, token_budget_batches

DeviceForward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(input_ids, attention_mask) on the device -> float32 embeddings on the device."""
MAX_TOKENS_ENV = "POLYHEAD_GPU_MAX_TOKENS"
"""Environment variable overriding the padded-token budget of one GPU batch."""


@dataclass
class PipelineOptions:
    """How the device pipeline cuts and prepares work."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    """Padded tokens (texts x width) per batch at most; a longer single text runs alone."""
    max_texts: int = DEFAULT_MAX_TEXTS
    """Texts per batch at most."""
    multiple: int = GPU_LENGTH_MULTIPLE
    """Batch widths round up to a multiple of this (length buckets: few shapes for kernels and plans)."""
    first_chunk_texts: int = 1024
    """Texts tokenized before the device starts: small, so the device starts soon."""
    chunk_texts: int = 8192
    """Texts tokenized per later job; batches are formed by length within a chunk."""
    depth: int = 3
    """Chunks prepared ahead of the device at most (bounds host memory)."""
    workers: int = 2
    """Threads preparing chunks (the Rust tokenizer is itself parallel inside one call)."""

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_texts", "multiple", "first_chunk_texts", "chunk_texts", "depth", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"PipelineOptions.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def for_device(cls) -> "PipelineOptions":
        """The defaults, with the token budget from `POLYHEAD_GPU_MAX_TOKENS` when set."""
        budget = os.environ.get(MAX_TOKENS_ENV)
        if budget is None:
            return cls()
        if not budget.isdigit() or int(budget) < 1:
            raise ValueError(f"{MAX_TOKENS_ENV} must be a positive integer, got {budget!r}")
        return cls(max_tokens=int(budget))


@dataclass
class PreparedBatch:
    """One batch, padded and (on a GPU) pinned, with where its rows go in the call's output."""

    index: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    tokens: int


@dataclass
class PreparedChunk:
    """A chunk's batches and its counts."""

    batches: list[PreparedBatch]
    truncated: int
    lengths: np.ndarray
    """Each text's token count, in the chunk's input order."""


@dataclass
class PipelineResult:
    """Embeddings of every text (on the device, in input order) and what the call did."""

    embeddings: torch.Tensor
    lengths: np.ndarray
    """Each text's real token count, in input order."""
    truncated: int

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


def chunk_bounds(total: int, first: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive chunks covering `total` texts: one of `first`, then of `size`."""
    start, step = 0, first
    while start < total:
        yield start, min(total, start + step)
        start, step = start + step, size


def prepare_chunk(tokenizer: TextTokenizer, texts: list[str], offset: int, options: PipelineOptions, pin: bool) -> PreparedChunk:
    """Tokenize, sort, cut by token budget and pad one chunk (runs on a worker thread)."""
    tokenized = tokenizer.tokenize(texts)
    lengths = tokenized.lengths
    batches = []
    for index in token_budget_batches(lengths, options.max_tokens, options.max_texts, options.multiple, tokenizer.max_seq_length):
        input_ids, mask = pad_arrays([tokenized.ids[i] for i in index], tokenizer.pad_id, options.multiple, tokenizer.max_seq_length)
        tensors = [torch.from_numpy(index + offset), torch.from_numpy(input_ids), torch.from_numpy(mask)]
        if pin:
            tensors = [t.pin_memory() for t in tensors]
        batches.append(PreparedBatch(*tensors, tokens=int(lengths[index].sum())))
    return PreparedChunk(batches, tokenized.truncated, lengths)


def run_pipelined(
    texts: list[str],
    tokenizer: TextTokenizer,
    forward: DeviceForward,
    device: torch.device,
    dim: int,
    options: PipelineOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PipelineResult:
    """Embed `texts` on `device` with CPU preparation overlapped; rows in input order, left on the device."""
    options = options or PipelineOptions()
    pin = device.type == "cuda"
    output = torch.empty((len(texts), dim), dtype=torch.float32, device=device)
    lengths: list[np.ndarray] = []
    truncated = 0
    chunks = chunk_bounds(len(texts), options.first_chunk_texts, options.chunk_texts)

    def prepare(bounds: tuple[int, int]) -> PreparedChunk:
        start, stop = bounds
        return prepare_chunk(tokenizer, texts[start:stop], start, options, pin)

    # One chunk (a server's shared batch, a short call) has nothing to overlap with: no threads.
    single = len(texts) <= options.first_chunk_texts
    prepared = map(prepare, chunks) if single else prefetch(chunks, prepare, depth=options.depth, workers=options.workers)
    for chunk in prepared:
        for batch in chunk.batches:
            ids = batch.input_ids.to(device, non_blocking=True)
            mask = batch.attention_mask.to(device, non_blocking=True)
            rows = batch.index.to(device, non_blocking=True)
            output.index_copy_(0, rows, forward(ids, mask))
            if progress is not None:
                progress(len(batch.index), batch.tokens)
        lengths.append(chunk.lengths)
        truncated += chunk.truncated
    return PipelineResult(output, np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64), truncated)
