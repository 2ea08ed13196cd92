"""Module state: train/eval mode switched for a while and put back module by module; fingerprints of the weights."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) inside the block; afterwards every submodule gets its own mode back.

    Restoring with `module.train(was_training)` would switch frozen parts that a training
    loop keeps in eval mode back to train mode; restoring each submodule's flag does not.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def tensors_key(named: Iterable[tuple[str, torch.Tensor]]) -> tuple:
    """Changes whenever a tensor is renamed, replaced, moved or modified in place (its storage and version counter)."""
    return tuple((name, t.data_ptr(), t._version) for name, t in named)


def weights_key(module: nn.Module) -> tuple:
    """Changes whenever any parameter is replaced, moved or modified in place (what caches built from weights check)."""
    return tensors_key(module.named_parameters())
