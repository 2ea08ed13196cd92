"""A bf16 twin of a backbone: its Linear layers hold bf16 weights, everything else is shared.

Under `torch.autocast(bfloat16)` every Linear casts its fp32 weight to bf16 on every
call; for short texts that cast is a visible share of the time. The twin casts once.
On CPUs with oneDNN the weights are also pre-packed into oneDNN's blocked layout, so
each product skips the re-layout. LayerNorm, softmax, embeddings and the residual stream
stay fp32 (autocast keeps them there), which is what keeps the embeddings within
cosine 0.999 of fp32. Short batches compute attention as matmul + fp32 softmax
(`attention.short_attention`), long ones with SDPA (see `SHORT_ATTENTION_MAX_TOKENS`).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

_PACK_BATCH_HINT = 1024  # rows (batch x tokens) oneDNN tunes the packed layout for


class Bf16Linear(nn.Module):
    """A Linear layer with bf16 weights cast once; output in bf16."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(torch.bfloat16), requires_grad=False)
        bias = linear.bias.detach().to(torch.bfloat16) if linear.bias is not None else None
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias)


class PackedBf16Linear(nn.Module):
    """A Linear layer whose bf16 weight is pre-packed for oneDNN (CPU only)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().to(torch.bfloat16)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, _PACK_BATCH_HINT)
        self.bias = linear.bias.detach().to(torch.bfloat16) if linear.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self.packed, self.bias, "none", [], "")


def packing_works() -> bool:
    """oneDNN weight packing is present and gives the same numbers as a plain bf16 product."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.manual_seed(0)
        linear = nn.Linear(64, 48)
        x = torch.randn(3, 5, 64)
        with torch.inference_mode():
            expected = Bf16Linear(linear)(x).float()
            got = PackedBf16Linear(linear)(x).float()
    except (RuntimeError, AttributeError):
        return False
    return got.shape == expected.shape and bool(torch.allclose(got, expected, atol=1e-2, rtol=1e-2))


SHORT_ATTENTION_MAX_TOKENS = 80
"""Batches up to this many tokens wide use `attention.short_attention`, wider ones SDPA.

Measured on one core, the whole bf16 backbone, 32 texts per batch: SDPA / short-attention
time is 1.06 at 40 tokens, 1.02 at 56, 1.03 at 72, then 0.92 at 96, 0.82 at 128 and 0.61
at 256 (SDPA never materialises the score matrix, which grows with the square of the
length). Encoding 2,000 Rotten Tomatoes texts (up to 68 tokens) on two cores: 444 texts/s
with SDPA throughout, 463 with the switch at 48 tokens, 486 at 80.
"""


class Bf16Twin(nn.Module):
    """Two views of one bf16 backbone: matmul + softmax attention for short batches, SDPA for long."""

    def __init__(self, short: nn.Module, long: nn.Module) -> None:
        super().__init__()
        self.short, self.long = short, long

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        backbone = self.short if input_ids.shape[1] <= SHORT_ATTENTION_MAX_TOKENS else self.long
        return backbone(input_ids=input_ids, attention_mask=attention_mask)


def _shared_copy(module: nn.Module, keep: list[nn.Module]) -> nn.Module:
    """A structural copy of `module` that shares every tensor and every module in `keep`."""
    memo = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    memo.update({id(m): m for m in keep})
    return copy.deepcopy(module, memo=memo)  # configs are copied: each copy has its own attention setting


def bf16_twin(backbone: nn.Module, pack: bool, short_attention: bool = True) -> nn.Module:
    """A copy of `backbone` sharing every tensor except Linear weights, which become bf16 (once).

    With `short_attention` (the CPU's choice) a `Bf16Twin` switching attention by width; without
    (a GPU's: its SDPA kernels win at every width) the plain twin on the backbone's own attention.
    """
    twin = _shared_copy(backbone, [])
    make = PackedBf16Linear if pack else Bf16Linear
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, make(child))
    short = twin.eval()
    if not short_attention:
        return short
    long = _shared_copy(short, [m for m in short.modules() if isinstance(m, (Bf16Linear, PackedBf16Linear))])
    if hasattr(short, "set_attn_implementation"):
        from .attention import register_short_attention

        short.set_attn_implementation(register_short_attention())
        long.set_attn_implementation(getattr(backbone.config, "_attn_implementation", None) or "sdpa")
    return Bf16Twin(short, long.eval())
