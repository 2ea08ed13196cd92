"""Task heads: small modules on the sentence embedding, one class per kind of head.

A new kind of head is one class decorated with `@register_head("name")` whose
constructor takes (input_dim, num_labels, config) and whose forward maps embeddings
to logits.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .head_config import ACTIVATION_NAMES, HEAD_TYPE_NAMES, HeadConfig

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES, "head_config.ACTIVATION_NAMES lists what a config may name"


HEAD_TYPES: dict[str, type[nn.Module]] = {}


def register_head(name: str):
    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        HEAD_TYPES[name] = cls
        if name not in HEAD_TYPE_NAMES:
            HEAD_TYPE_NAMES.append(name)
        return cls

    return decorate


@register_head("mlp")
class MLPHead(nn.Module):
    """Dropout -> Linear -> activation, per hidden layer, then dropout -> Linear to the labels."""

    def __init__(self, input_dim: int, num_labels: int, config: HeadConfig) -> None:
        super().__init__()
        hidden = config.hidden_sizes if config.hidden_sizes is not None else [max(1, input_dim // 2)]
        layers: list[nn.Module] = []
        width = input_dim
        for size in hidden:
            layers += [nn.Dropout(config.dropout), nn.Linear(width, size), ACTIVATIONS[config.activation]()]
            width = size
        layers += [nn.Dropout(config.dropout), nn.Linear(width, num_labels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings)


@register_head("linear")
class LinearHead(MLPHead):
    """An MLP without hidden layers: multinomial logistic regression on the embedding."""

    def __init__(self, input_dim: int, num_labels: int, config: HeadConfig) -> None:
        super().__init__(input_dim, num_labels, HeadConfig(type="mlp", hidden_sizes=[], dropout=config.dropout))


def build_head(config: HeadConfig, input_dim: int, num_outputs: int) -> nn.Module:
    """The head's last layer has one output per class, target or label (the task kind says how many)."""
    if num_outputs < 1:
        raise ValueError(f"a head needs at least 1 output, got {num_outputs}")
    return HEAD_TYPES[config.type](input_dim, num_outputs, config)
