"""Run a backbone in two pieces, split between transformer layers, without knowing its family.

The lower piece (embeddings + layers below the split) gives the hidden states that enter
the first layer above it; the upper piece runs only the layers above, starting from given
hidden states. Both run the backbone's own `forward` (so its attention-mask handling,
relative position biases and final norms stay its own) with the layer list temporarily cut
to the piece's layers: a forward hook captures the lower piece's last layer output, and a
pre-hook on the upper piece's first layer swaps its input for the given hidden states.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .parts import find_layer_list

_HIDDEN_KEYWORDS = ("hidden_states", "hidden_state", "x")


@contextlib.contextmanager
def _only_layers(backbone: nn.Module, keep: slice) -> Iterator[list[nn.Module]]:
    """The backbone's layer list holds only `keep` inside the block (same module objects)."""
    path, layers = find_layer_list(backbone)
    parent_path, _, attribute = path.rpartition(".")
    parent = backbone.get_submodule(parent_path) if parent_path else backbone
    kept = list(layers)[keep]
    parent._modules[attribute] = nn.ModuleList(kept)
    try:
        yield kept
    finally:
        parent._modules[attribute] = layers


def _first_tensor(output: object) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output[0]  # type: ignore[index]


def hidden_below(backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
    """Hidden states entering layer `split` (the output of layer split-1), shape (B, T, H)."""
    if split < 1:
        raise ValueError(f"split must be >= 1, got {split}")
    captured: list[torch.Tensor] = []
    with _only_layers(backbone, slice(0, split)) as kept:
        handle = kept[-1].register_forward_hook(lambda _m, _args, output: captured.append(_first_tensor(output)))
        try:
            backbone(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            handle.remove()
    return captured[-1]


def run_above(
    backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, hidden: torch.Tensor, split: int
) -> torch.Tensor:
    """The backbone's last hidden state, computing only the layers from `split` up on `hidden`.

    The (frozen) embeddings still run, because the backbone's forward needs their output's
    shape; it is replaced before the first kept layer and costs a table lookup.
    """

    def swap_input(_module, args, kwargs):
        if args:
            return (hidden, *args[1:]), kwargs
        for key in _HIDDEN_KEYWORDS:
            if key in kwargs:
                return args, {**kwargs, key: hidden}
        raise RuntimeError("cannot find the hidden states argument of the backbone's layer")

    with _only_layers(backbone, slice(split, None)) as kept:
        if not kept:
            raise ValueError("run_above needs at least one layer above the split")
        handle = kept[0].register_forward_pre_hook(swap_input, with_kwargs=True)
        try:
            output = backbone(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            handle.remove()
    return _first_tensor(output)
