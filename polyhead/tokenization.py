"""Tokenize once, sort by length, pad each batch only to its own longest text.

Uses the tokenizer's Rust backend directly when it has one (one parallel call for all
texts, no per-batch tokenizer overhead) and counts truncated texts, so truncation at
`max_seq_length` is never silent. What a long text keeps (`head`, `tail`, `head+tail`)
is `truncation.py`'s rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from .truncation import check_side, cut_ids


@dataclass
class TokenizedTexts:
    """Token ids of many texts, unpadded, plus how many were cut at the length limit."""

    ids: list[np.ndarray]
    truncated: int

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def padded_width(longest: int, multiple: int = 1, limit: int | None = None) -> int:
    """The padded length of a batch whose longest text has `longest` tokens.

    With `multiple` > 1 the width rounds up to a multiple of it (a length bucket), but never
    past `limit` (the model's max_seq_length) unless the batch itself is longer: few distinct
    shapes let a GPU reuse its kernels, attention plans and captured graphs.
    """
    if multiple <= 1:
        return longest
    bucket = -(-longest // multiple) * multiple
    return max(longest, min(bucket, limit)) if limit is not None else bucket


def pad_arrays(ids: list[np.ndarray], pad_id: int, multiple: int = 1, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id arrays to the longest (or its bucket, see `padded_width`): (input_ids, attention_mask), both int64.

    One vectorised fill instead of a Python loop per row, so padding never shows in a profile.
    """
    if not ids:
        raise ValueError("cannot pad an empty batch")
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    mask = np.arange(padded_width(int(lengths.max()), multiple, limit)) < lengths[:, None]
    input_ids = np.full(mask.shape, pad_id, dtype=np.int64)
    input_ids[mask] = np.concatenate(ids)  # row-major order matches the concatenation
    return input_ids, mask.astype(np.int64)


def _rust_copy(backend, max_seq_length: int | None):
    """A private copy of a Rust tokenizer: no padding, truncation at `max_seq_length` (None: none)."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    if max_seq_length is None:
        copy.no_truncation()
    else:
        copy.enable_truncation(max_length=max_seq_length)
    return copy


class TextTokenizer:
    """Wraps a tokenizer for fast, unpadded, truncation-aware batch encoding.

    Accepts a Hugging Face tokenizer (any kind) or a bare Rust `tokenizers.Tokenizer`,
    which is all an exported ONNX model directory needs.
    """

    def __init__(self, tokenizer, max_seq_length: int, pad_id: int | None = None, truncation: str = "head") -> None:
        self.max_seq_length = max_seq_length
        self.truncation = check_side(truncation)
        self._full = None
        self.hf: PreTrainedTokenizerBase | None = None
        self._backend = None
        if isinstance(tokenizer, PreTrainedTokenizerBase):
            self.hf = tokenizer
            if pad_id is None and tokenizer.pad_token_id is not None:
                pad_id = tokenizer.pad_token_id
            backend = getattr(tokenizer, "backend_tokenizer", None)
        else:
            backend = tokenizer
        if backend is not None:
            # A private copy: the original's own padding/truncation settings stay untouched.
            self._backend = _rust_copy(backend, max_seq_length)
            self._full = _rust_copy(backend, None)
        self.pad_id = int(pad_id) if pad_id is not None else 0

    @classmethod
    def from_file(cls, tokenizer_json: str | Path, max_seq_length: int, pad_id: int) -> "TextTokenizer":
        """Load a `tokenizer.json` (the Rust tokenizer's own format) without transformers' loaders."""
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(tokenizer_json)), max_seq_length, pad_id)

    def tokenize(self, texts: list[str]) -> TokenizedTexts:
        if not texts:
            return TokenizedTexts([], 0)
        limit = self.max_seq_length
        if self._backend is not None and self.truncation == "head":
            # encode_batch_fast skips character offsets (~30% of the Rust time here); older tokenizers lack it.
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            encodings = encode(texts, add_special_tokens=True)
            ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
            truncated = sum(1 for e in encodings if e.overflowing)
            return TokenizedTexts(ids, truncated)
        if self._full is not None:
            full = [(e.ids, e.special_tokens_mask) for e in self._full.encode_batch(texts, add_special_tokens=True)]
        else:
            assert self.hf is not None
            encoded = self.hf(texts, truncation=False, add_special_tokens=True, return_special_tokens_mask=True)
            full = list(zip(encoded["input_ids"], encoded["special_tokens_mask"]))
        truncated = sum(1 for ids, _ in full if len(ids) > limit)
        cut = [np.asarray(cut_ids(ids, mask, limit, self.truncation), dtype=np.int64) for ids, mask in full]
        return TokenizedTexts(cut, truncated)

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Each text's length in tokens before truncation (special tokens included)."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if self._full is not None:
            return np.fromiter((len(e.ids) for e in self._full.encode_batch(texts, add_special_tokens=True)), dtype=np.int64)
        assert self.hf is not None
        return np.fromiter((len(x) for x in self.hf(texts, truncation=False, add_special_tokens=True)["input_ids"]), dtype=np.int64)

    def pad(self, ids: list[np.ndarray], multiple: int = 1) -> dict[str, torch.Tensor]:
        """Right-pad a batch to its longest member (rounded up to `multiple`, capped at max_seq_length): input_ids and attention_mask."""
        input_ids, mask = pad_arrays(ids, self.pad_id, multiple, self.max_seq_length)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}

    def __call__(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], int]:
        """Tokenize and pad a small list of texts in its given order (training batches)."""
        tokenized = self.tokenize(texts)
        return self.pad(tokenized.ids), tokenized.truncated
