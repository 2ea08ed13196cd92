"""Combining per-task losses: equal, static weights, or learned uncertainty weighting.

Uncertainty weighting (Kendall, Gal & Cipolla, 2018) learns s_t = log sigma_t^2 per task
and minimises 0.5 * exp(-s_t) * L_t + 0.5 * s_t, so noisy or hard tasks get down-weighted
without hand-tuning.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import LOSS_WEIGHTINGS


class LossBalancer(nn.Module):
    """Turns one task's raw loss into its contribution to the total."""

    def __init__(self, tasks: list[str], strategy: str = "equal", static_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        if strategy not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {strategy!r}; choose one of {', '.join(LOSS_WEIGHTINGS)}")
        self.strategy = strategy
        self.tasks = list(tasks)
        weights = static_weights or {}
        self.static = {t: float(weights.get(t, 1.0)) if strategy == "static" else 1.0 for t in self.tasks}
        if strategy == "uncertainty":
            self.log_variance = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks})

    def forward(self, task: str, loss: torch.Tensor) -> torch.Tensor:
        if self.strategy == "uncertainty":
            s = self.log_variance[task]
            return 0.5 * torch.exp(-s) * loss + 0.5 * s
        return self.static[task] * loss

    def weights(self) -> dict[str, float]:
        """The current effective weight of each task's loss (logged over time)."""
        if self.strategy == "uncertainty":
            return {t: float(0.5 * torch.exp(-self.log_variance[t].detach())) for t in self.tasks}
        return dict(self.static)
