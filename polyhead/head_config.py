"""HeadConfig: how a task's head is built, as plain data (no torch needed to read a config).

The head classes live in `heads.py`; this module only knows their registered names, so a
config can be checked before PyTorch is imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ACTIVATION_NAMES: tuple[str, ...] = ("gelu", "relu", "tanh", "silu")
"""Activations between an `mlp` head's hidden layers (heads.ACTIVATIONS maps them to modules)."""

HEAD_TYPE_NAMES: list[str] = ["mlp", "linear"]
"""Registered head kinds; `heads.register_head` adds custom ones."""


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
        if self.type not in HEAD_TYPE_NAMES:
            raise ValueError(f"unknown head type {self.type!r}; registered: {', '.join(HEAD_TYPE_NAMES)}")
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATION_NAMES)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_sizes is not None and any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")

    def to_dict(self) -> dict:
        return asdict(self)
