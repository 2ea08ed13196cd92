"""Task heads: small modules on the sentence embedding, one class per kind of head.

A new kind of head is one class decorated with `@register_head("name")` whose
constructor takes (input_dim, num_labels, config) and whose forward maps embeddings
to logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


@dataclass
class HeadConfig:
    """How a task's head is built."""

    type: str = "mlp"
    """Registered head kind: `mlp` (hidden layers) or `linear` (logistic regression on the embedding)."""
    hidden_sizes: list[int] | None = None
    """Hidden layer widths of an `mlp` head; None means one layer of half the embedding size."""
    activation: str = "gelu"
    """Activation between hidden layers: gelu, relu, tanh or silu."""
    dropout: float = 0.1
    """Dropout before each linear layer while training."""
    extra: dict = field(default_factory=dict)
    """Options for custom head kinds."""

    def __post_init__(self) -> None:
        if self.type not in HEAD_TYPES:
            raise ValueError(f"unknown head type {self.type!r}; registered: {', '.join(HEAD_TYPES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_sizes is not None and any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")

    def to_dict(self) -> dict:
        return asdict(self)


HEAD_TYPES: dict[str, type[nn.Module]] = {}


def register_head(name: str):
    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        HEAD_TYPES[name] = cls
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


def build_head(config: HeadConfig, input_dim: int, num_labels: int) -> nn.Module:
    if num_labels < 2:
        raise ValueError(f"a classification head needs at least 2 labels, got {num_labels}")
    return HEAD_TYPES[config.type](input_dim, num_labels, config)
