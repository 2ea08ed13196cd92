"""Which kernel PyTorch's scaled_dot_product_attention may use, for every forward pass of polyhead.

On Hopper GPUs recent PyTorch releases try cuDNN's attention first for bf16/fp16 inputs, and cuDNN
builds an execution plan for every new input shape: with padded batches of changing length that
plan costs milliseconds per call, far more than the attention itself, and made bf16 slower than
fp32. Flash and memory-efficient attention have no per-shape plan; the math kernel is the
fallback that runs everywhere (and the only one a CPU needs). `attention_backends()` keeps cuDNN
out of the list, in that priority order; `POLYHEAD_SDPA` (a comma-separated list of `flash`,
`efficient`, `math`, `cudnn`) overrides it for measuring each backend.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from torch.nn.attention import SDPBackend, sdpa_kernel

BACKEND_NAMES = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}
"""The names `POLYHEAD_SDPA` accepts."""

DEFAULT_ORDER = ("flash", "efficient", "math")
"""No cuDNN: it plans per shape. Flash needs no mask, efficient takes a padding mask, math runs anywhere."""


def backend_order(spec: str | None = None) -> list[SDPBackend]:
    """The backends in priority order, from `spec` (or `POLYHEAD_SDPA`, or the default)."""
    spec = spec if spec is not None else os.environ.get("POLYHEAD_SDPA", "")
    names = [name.strip().lower() for name in spec.split(",") if name.strip()] or list(DEFAULT_ORDER)
    unknown = [name for name in names if name not in BACKEND_NAMES]
    if unknown:
        raise ValueError(f"POLYHEAD_SDPA: unknown attention backend(s) {unknown}; choose from {sorted(BACKEND_NAMES)}")
    return [BACKEND_NAMES[name] for name in names]


@contextlib.contextmanager
def attention_backends(spec: str | None = None) -> Iterator[None]:
    """Run the enclosed forward (and its backward, which reuses the same kernel) on the chosen backends."""
    with sdpa_kernel(backend_order(spec), set_priority=True):
        yield
