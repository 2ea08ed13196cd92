"""Backend names, what each one computes, and the automatic choice.

| backend      | computes                                  | embeddings vs fp32        |
| ------------ | ----------------------------------------- | ------------------------- |
| `torch`      | PyTorch in fp32                           | the reference             |
| `torch-bf16` | PyTorch, matrix products in bf16          | cosine >= 0.999 (checked) |
| `onnx`       | ONNX Runtime, fused fp32 graph            | equal up to ~1e-6         |
| `onnx-int8`  | ONNX Runtime, calibrated int8 graph       | lossy: its cost measured  |

`auto` takes `torch-bf16` on a CPU with AVX-512 BF16 or AMX, else `torch`; on a GPU it
takes whichever of the two a short timed probe finds faster (`auto_probe.py`). It takes `onnx-int8` only for an exported
directory, and only when the user gives a budget (`max_int8_loss`, `--max-int8-loss`) that
the int8 graph's recorded cost is within (see `OnnxEncoder`). bf16 results also depend
slightly (~1e-3) on which texts share a batch; `torch` is the path for bit-exact,
batch-independent vectors (set `POLYHEAD_BACKEND=torch` to make it the process default).
"""

from __future__ import annotations

import os

BACKENDS = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8")
CONCRETE_BACKENDS = BACKENDS[1:]
LOSSY_BACKENDS = ("onnx-int8",)

BACKEND_ENV = "POLYHEAD_BACKEND"
"""Environment variable naming the backend used when none is given (default: auto)."""

MIN_AUTO_COSINE = 0.999
"""The automatic choice keeps every embedding within this cosine of the fp32 reference."""


def check_backend(name: object) -> str:
    """The backend name itself, or ValueError listing the valid names."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def default_backend() -> str:
    """`$POLYHEAD_BACKEND` when set (e.g. `torch` for bit-exact fp32 everywhere), else `auto`."""
    return check_backend(os.environ.get(BACKEND_ENV) or "auto")


def bf16_available(device_type: str) -> bool:
    """bf16 matrix products run on dedicated hardware on this device (so they are faster)."""
    if device_type == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type == "cpu":
        from .hardware import cpu_has_native_bf16

        return cpu_has_native_bf16()
    return False


def auto_backend(device_type: str) -> str:
    """The backend `auto` stands for by rule (where no probe decides), before the per-model accuracy check."""
    return "torch-bf16" if bf16_available(device_type) else "torch"
