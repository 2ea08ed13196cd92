"""Attention for short bf16 batches: two small products and an fp32 softmax, registered with transformers.

transformers' eager attention adds the fp32 mask to bf16 scores and lets autocast pick
the softmax kernel; on CPU that lands on a slow path (2.8 ms per layer for 32 texts x 27
tokens, 10% of a batch). Casting the scores to fp32 once and normalising them in place
costs a quarter of that, and the softmax is computed in fp32, so it is no less exact.
Its mask is one additive row per text (`key_padding_mask`), not one per query token.
Models that route attention through `ALL_ATTENTION_FUNCTIONS` (BERT, RoBERTa, and most
encoders in transformers 5) use it when their attention implementation is set to
`SHORT_ATTENTION`; others keep their own attention and are unaffected.
"""

from __future__ import annotations

import torch
from torch import nn

SHORT_ATTENTION = "polyhead_short_bf16"
"""The name the short-batch attention is registered under (attention and mask interfaces)."""


def short_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Scaled dot-product attention over (batch, heads, tokens, dims); inference only (no dropout)."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)).float().mul_(scaling)
    if attention_mask is not None:
        scores.add_(attention_mask)
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def key_padding_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function=None,
    attention_mask: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
    **kwargs,
) -> torch.Tensor | None:
    """An additive (batch, 1, 1, keys) mask: every query sees every unpadded key.

    That is all a bidirectional encoder needs; eager's (batch, 1, queries, keys) mask holds
    the same row once per query. Any other mask pattern (causal, packed, custom) is built by
    transformers' eager mask function instead.
    """
    from transformers.masking_utils import bidirectional_mask_function, eager_mask

    plain = mask_function is bidirectional_mask_function and q_offset == 0 and kv_offset == 0
    if not plain or attention_mask is None or attention_mask.dim() != 2 or attention_mask.shape[-1] != kv_length:
        return eager_mask(batch_size, q_length, kv_length, q_offset, kv_offset, mask_function, attention_mask, dtype, **kwargs)
    padded = ~attention_mask.bool()
    if not padded.any():
        return None
    mask = torch.zeros(padded.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(padded, torch.finfo(dtype).min)[:, None, None, :]


_registered = False


def register_short_attention() -> str:
    """Make `SHORT_ATTENTION` known to transformers (once) and return the name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(SHORT_ATTENTION, short_attention)
        AttentionMaskInterface.register(SHORT_ATTENTION, key_padding_mask)
        _registered = True
    return SHORT_ATTENTION
