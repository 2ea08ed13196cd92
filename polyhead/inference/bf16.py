"""A bf16 twin of a backbone: its Linear layers hold bf16 weights, everything else is shared.

Under `torch.autocast(bfloat16)` every Linear casts its fp32 weight to bf16 on every
call; for short texts that cast is a visible share of the time. The twin casts once.
On CPUs with oneDNN the weights are also pre-packed into oneDNN's blocked layout, so
each product skips the re-layout. LayerNorm, softmax, embeddings and the residual stream
stay fp32 (autocast keeps them there), which is what keeps the embeddings within
cosine 0.999 of fp32.
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


def bf16_twin(backbone: nn.Module, pack: bool, eager_attention: bool = True) -> nn.Module:
    """A copy of `backbone` sharing every tensor except Linear weights, which become bf16.

    With `eager_attention`, the twin computes attention as matmul + softmax: for the short
    sequences of sentence encoding that is about twice as fast on a CPU as the fused SDPA
    kernel, whose per-call set-up dominates at 12 heads of 32 dimensions and ~30 tokens.
    """
    shared = {id(t): t for t in itertools.chain(backbone.parameters(), backbone.buffers())}
    twin = copy.deepcopy(backbone, memo=shared)  # the config is copied too: the original keeps its attention
    if eager_attention and hasattr(twin, "set_attn_implementation"):
        twin.set_attn_implementation("eager")
    make = PackedBf16Linear if pack else Bf16Linear
    for parent in list(twin.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, make(child))
    return twin.eval()
