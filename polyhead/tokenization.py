"""Tokenize once, sort by length, pad each batch only to its own longest text.

Uses the tokenizer's Rust backend directly when it has one (one parallel call for all
texts, no per-batch tokenizer overhead) and counts truncated texts, so truncation at
`max_seq_length` is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase


@dataclass
class TokenizedTexts:
    """Token ids of many texts, unpadded, plus how many were cut at the length limit."""

    ids: list[np.ndarray]
    truncated: int

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


class TextTokenizer:
    """Wraps a Hugging Face tokenizer for fast, unpadded, truncation-aware batch encoding."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> None:
        self.hf = tokenizer
        self.max_seq_length = max_seq_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = None
        if backend is not None:
            from tokenizers import Tokenizer

            # A private copy: the HF tokenizer's own padding/truncation settings stay untouched.
            self._backend = Tokenizer.from_str(backend.to_str())
            self._backend.no_padding()
            self._backend.enable_truncation(max_length=max_seq_length)

    def tokenize(self, texts: list[str]) -> TokenizedTexts:
        if not texts:
            return TokenizedTexts([], 0)
        if self._backend is not None:
            encodings = self._backend.encode_batch(texts, add_special_tokens=True)
            ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
            truncated = sum(1 for e in encodings if e.overflowing)
            return TokenizedTexts(ids, truncated)
        full = self.hf(texts, truncation=False, add_special_tokens=True)["input_ids"]
        cut = self.hf(texts, truncation=True, max_length=self.max_seq_length, add_special_tokens=True)["input_ids"]
        truncated = sum(1 for a, b in zip(full, cut) if len(a) > len(b))
        return TokenizedTexts([np.asarray(x, dtype=np.int64) for x in cut], truncated)

    def pad(self, ids: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Right-pad a batch to its longest member: input_ids and attention_mask."""
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}

    def __call__(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], int]:
        """Tokenize and pad a small list of texts in its given order (training batches)."""
        tokenized = self.tokenize(texts)
        return self.pad(tokenized.ids), tokenized.truncated
