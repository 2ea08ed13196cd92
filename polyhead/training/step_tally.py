"""What the steps since the last log line added up to: loss sums, examples and padded tokens per task."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StepTally:
    """Per-task sums between two lines of metrics.jsonl; `line()` turns them into the line's fields and starts over."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    """task -> [sum of batch losses, batches]."""
    examples: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    """task -> [padded tokens, real tokens]."""

    def add(self, task: str, loss: float, examples: int, lengths: list[int]) -> None:
        sums = self.losses.setdefault(task, [0.0, 0.0])
        sums[0] += loss
        sums[1] += 1
        self.examples[task] = self.examples.get(task, 0) + examples
        tokens = self.tokens.setdefault(task, [0, 0])
        tokens[0] += max(lengths) * len(lengths)
        tokens[1] += sum(lengths)

    def mean_losses(self, accelerator, tasks: list[str], world: int) -> dict[str, float]:
        """Mean loss per task since the last log line, averaged over processes."""
        values = torch.tensor([self.losses.get(t, [0.0, 0.0]) for t in tasks], device=accelerator.device)
        if world > 1:
            values = accelerator.reduce(values, "sum")
        return {t: float(values[i, 0] / values[i, 1]) for i, t in enumerate(tasks) if values[i, 1] > 0}

    def padding_ratio(self) -> dict[str, float]:
        return {k: round(v[0] / v[1], 4) for k, v in self.tokens.items() if v[1]}
