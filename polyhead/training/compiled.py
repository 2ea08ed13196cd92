"""The trainable module's forward under torch.compile (`training.compile`), eager mode when compiling fails.

A small encoder's training step on a GPU is mostly kernel launches and Python, not arithmetic.
With batches padded to a few length buckets (see `training.pad_to_multiple`) every bucket is
one static shape, so each can be compiled once and, on a GPU, replayed as a CUDA graph
("reduce-overhead" mode): one launch instead of hundreds. Each (task, bucket) pair is one
graph; the recompile limit is raised to hold them all.

Compiling can fail where eager mode runs (an unsupported operator, a backbone dynamo cannot
trace, no C++ compiler): the run then goes on in eager mode, and says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

BACKEND = "inductor"
"""torch.compile's backend for training (`aot_eager` traces the same graphs without generating code: for debugging)."""

GRAPH_LIMIT = 256
"""Compiled graphs kept per code object: tasks x length buckets (x phases) of a run must fit."""


def compile_mode(device_type: str) -> str | None:
    """CUDA graphs on a GPU (launch overhead is what a step there is made of); inductor's default on a CPU."""
    return "reduce-overhead" if device_type == "cuda" else None


class CompiledForward:
    """Calls `module` compiled when `enabled`; after the first failure, eager for the rest of the run."""

    def __init__(self, module: nn.Module, enabled: bool, device_type: str, on_fallback: Callable[[str], None] | None = None,
                 backend: Any = None, mode: str | None = None) -> None:
        self.module = module
        self.device_type = device_type
        self.on_fallback = on_fallback
        self.failure: str | None = None
        """Why compiling failed (None: it did not, or it was never asked for)."""
        self.compiled: Callable | None = None
        if enabled:
            import torch._dynamo.config as dynamo_config

            for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
                if hasattr(dynamo_config, name):
                    setattr(dynamo_config, name, max(getattr(dynamo_config, name), GRAPH_LIMIT))
            backend = backend if backend is not None else BACKEND
            mode = mode if mode is not None else compile_mode(device_type) if backend == "inductor" else None
            self.compiled = torch.compile(module, backend=backend, mode=mode, dynamic=False)

    @property
    def active(self) -> bool:
        """True while calls go through the compiled module."""
        return self.compiled is not None and self.failure is None

    def __call__(self, *args, **kwargs):
        if not self.active:
            return self.module(*args, **kwargs)
        try:
            if self.device_type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are read already
            return self.compiled(*args, **kwargs)  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - any compile or capture failure means: run eager
            self.fall_back(error)
            return self.module(*args, **kwargs)

    def fall_back(self, error: BaseException) -> None:
        """Stop compiling for this run and report why, once."""
        root: BaseException = error
        while (inner := getattr(root, "inner_exception", None) or root.__cause__) is not None and inner is not root:
            root = inner  # dynamo wraps the backend's own error: that one says what went wrong
        first_line = (str(root).strip().splitlines() or [""])[0][:300]
        where = f"{type(error).__name__}, " if root is not error else ""
        self.failure = f"{where}{type(root).__name__}: {first_line}"
        if self.on_fallback is not None:
            self.on_fallback(self.failure)
