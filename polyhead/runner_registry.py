"""Where `SentenceEncoder.encode` gets its per-backend runners from, without knowing what they are.

The encoder owns texts, tokens and the PyTorch model; how a padded batch is computed
(fp32, a bf16 twin, an ONNX graph, int8) belongs to `polyhead.inference`, which registers
its runner cache here when it is imported. The encoder asks this module, never the
inference package, so the encoder imports nothing of ONNX and the inference package
may import the encoder freely.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

DEFAULT_PROVIDER = "polyhead.inference.runners"
"""Module imported on first use when nothing is registered yet; importing it registers its cache."""


class Runner(Protocol):
    """Computes one backend's embeddings for padded batches."""

    workers: int

    def batch_runner(self, normalize: bool | None) -> Callable: ...


class RunnerCache(Protocol):
    """The runners of one encoder: resolves a backend name (maybe `auto`) to a concrete one and its runner."""

    def resolve(self, encoder, backend: str, texts: list[str]) -> tuple[str, Runner]: ...


_factory: Callable[[], RunnerCache] | None = None


def register_runner_cache(factory: Callable[[], RunnerCache]) -> None:
    """Make `factory` build the runner cache of every encoder created from now on."""
    global _factory
    _factory = factory


def new_runner_cache() -> RunnerCache:
    """A fresh runner cache from the registered factory (the inference package's by default)."""
    if _factory is None:
        importlib.import_module(DEFAULT_PROVIDER)
    if _factory is None:
        raise RuntimeError(f"{DEFAULT_PROVIDER} was imported but registered no runner cache")
    return _factory()
