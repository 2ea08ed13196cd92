"""Batches sized by tokens, not texts: what a GPU step costs is its padded token count.

A fixed number of texts per batch gives a GPU tiny steps on short texts (launch-bound, the
device idles) and huge ones on long texts (memory spikes). Cutting the texts, sorted longest
first, so that each batch's padded size (texts x padded width) stays within a budget keeps
every step about equally large; TEI and Infinity batch the same way. Widths are rounded up to
a length bucket (`tokenization.padded_width`) so the device sees few distinct shapes.
"""

from __future__ import annotations

import numpy as np

from ..tokenization import padded_width

DEFAULT_MAX_TOKENS = 32_768
"""Padded tokens per GPU batch by default: ~1,000 texts of 32 tokens, 64 of 512; a few hundred MB of activations for a MiniLM/BERT-base size encoder."""
DEFAULT_MAX_TEXTS = 2048
"""Texts per GPU batch at most, however short they are (bounds the pooled output and the index tensors)."""
GPU_LENGTH_MULTIPLE = 16
"""Length bucket on a GPU: widths rounded up to a multiple of 16 (tensor-core friendly, few shapes)."""


def token_budget_batches(
    lengths: np.ndarray,
    max_tokens: int,
    max_texts: int,
    multiple: int = 1,
    limit: int | None = None,
) -> list[np.ndarray]:
    """Indices into `lengths`, longest first, cut into batches of at most `max_tokens` padded tokens.

    Every index appears exactly once. A batch holds at most `max_texts` texts and always at
    least one (a single text longer than the budget still runs, alone).
    """
    if max_tokens < 1 or max_texts < 1:
        raise ValueError(f"max_tokens and max_texts must be >= 1, got {max_tokens} and {max_texts}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        # Sorted longest first: the batch's first text sets its padded width.
        width = padded_width(int(lengths[order[start]]), multiple, limit)
        count = max(1, min(max_texts, max_tokens // max(width, 1)))
        batches.append(order[start : start + count])
        start += count
    return batches
