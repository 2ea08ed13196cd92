"""Pooling: token embeddings + attention mask -> one vector per text.

Modes: `mean` (attention-masked average), `cls` (first token), `max` (masked maximum),
and `cls_pooler` (a learned dense + tanh layer on the CLS vector, BERT's pooler).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

PoolingMode = Literal["mean", "cls", "max", "cls_pooler"]
POOLING_MODES: tuple[str, ...] = ("mean", "cls", "max", "cls_pooler")


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real (unpadded) tokens, so padding never changes a text's vector."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return summed / counts


def max_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over real tokens.

    Padding is masked out of place with the dtype's minimum, so the backbone's output
    tensor (which callers may hold on to) is never modified.
    """
    padding = ~attention_mask.bool().unsqueeze(-1)
    masked = token_embeddings.masked_fill(padding, torch.finfo(token_embeddings.dtype).min)
    return masked.max(dim=1).values


def cls_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The first token's vector ([CLS] / <s>)."""
    return token_embeddings[:, 0]


class Pooling(nn.Module):
    """Turns token embeddings into a sentence embedding with one of `POOLING_MODES`.

    `cls_pooler` owns a `dense` layer (hidden -> hidden, tanh). It is initialised from the
    backbone's own pooler weights when the backbone has them (see `init_dense_from`).
    """

    def __init__(self, hidden_size: int, mode: PoolingMode = "mean") -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"unknown pooling mode {mode!r}; choose one of {', '.join(POOLING_MODES)}")
        self.mode: str = mode
        self.hidden_size = hidden_size
        self.dense: nn.Linear | None = nn.Linear(hidden_size, hidden_size) if mode == "cls_pooler" else None

    def forward(self, token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return mean_pool(token_embeddings, attention_mask)
        if self.mode == "max":
            return max_pool(token_embeddings, attention_mask)
        cls = cls_pool(token_embeddings, attention_mask)
        if self.dense is None:
            return cls
        return torch.tanh(self.dense(cls))

    def init_dense_from(self, backbone: nn.Module) -> bool:
        """Copy the backbone's pooler dense weights into ours; False when it has none."""
        if self.dense is None:
            return False
        pooler = getattr(backbone, "pooler", None)
        source = getattr(pooler, "dense", None)
        if not isinstance(source, nn.Linear) or source.weight.shape != self.dense.weight.shape:
            return False
        with torch.no_grad():
            self.dense.weight.copy_(source.weight)
            if source.bias is not None and self.dense.bias is not None:
                self.dense.bias.copy_(source.bias)
        return True

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, hidden_size={self.hidden_size}"
