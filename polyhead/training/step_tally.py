"""What the steps since the last log line added up to: loss sums, examples and padded tokens per task.

Losses stay on the training device until a log step reads them: reading a loss into Python
waits for the GPU to finish everything queued, and doing that for every batch keeps a GPU
idle between steps. So do non-finite losses and gradient norms: a device-side flag records
the first bad step, and `first_bad_step()` (called before anything is logged, evaluated or
saved) is the one place that waits. Sums are float64, added in batch order, so the logged
means are the same numbers as summing each batch's loss as a Python float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class StepTally:
    """Per-task sums between two lines of metrics.jsonl; `mean_losses()` reads them, a new tally starts over."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    """Where the loss sums live (the training device)."""
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    """task -> [sum of batch losses, batches] (float64, on `device`)."""
    examples: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    """task -> [padded tokens, real tokens] (known on the host)."""

    def add(self, task: str, loss: torch.Tensor, examples: int, lengths: list[int], width: int | None = None) -> None:
        """One batch: its loss (a device scalar, not read here), size and text lengths (`width`: its padded length)."""
        if task not in self.losses:
            self.losses[task] = torch.zeros(2, dtype=torch.float64, device=self.device)
        sums = self.losses[task]
        sums[0] += loss.detach().to(torch.float64)
        sums[1] += 1
        self.examples[task] = self.examples.get(task, 0) + examples
        tokens = self.tokens.setdefault(task, [0, 0])
        tokens[0] += (width or max(lengths)) * len(lengths)
        tokens[1] += sum(lengths)

    def mean_losses(self, accelerator, tasks: list[str], world: int) -> dict[str, float]:
        """Mean loss per task since the last log line, averaged over processes (the one read of the sums)."""
        zeros = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
        values = torch.stack([self.losses.get(t, zeros).to(accelerator.device) for t in tasks]).float()
        if world > 1:
            values = accelerator.reduce(values, "sum")
        values = values.cpu()
        return {t: float(values[i, 0] / values[i, 1]) for i, t in enumerate(tasks) if values[i, 1] > 0}

    def padding_ratio(self) -> dict[str, float]:
        return {k: round(v[0] / v[1], 4) for k, v in self.tokens.items() if v[1]}


class NonFiniteWatch:
    """The first step whose loss or gradient norm was not finite, kept on the device (0: none yet)."""

    def __init__(self, device: torch.device, tasks: list[str]) -> None:
        self.tasks = tasks
        self.first_step = torch.zeros((), dtype=torch.int64, device=device)
        self.first_task = torch.full((), -1, dtype=torch.int64, device=device)
        """Index into `tasks` of the first non-finite loss (-1: a gradient norm, or none)."""

    def note(self, step: int, value: torch.Tensor, task: str | None = None) -> None:
        """Record `step` as the first bad one if `value` is not finite and none was recorded before (no host wait)."""
        bad = ~torch.isfinite(value.detach()).all() & (self.first_step == 0)
        self.first_step.copy_(torch.where(bad, step, self.first_step))
        if task is not None:
            self.first_task.copy_(torch.where(bad, self.tasks.index(task), self.first_task))

    def read(self, accelerator=None, world: int = 1) -> tuple[int, str | None]:
        """(first bad step or 0, its task or None): waits for the device; under several processes the earliest anywhere."""
        step, task = self.first_step, self.first_task
        if world > 1 and accelerator is not None:
            # The earliest anywhere is the smallest code: minus the largest of the negated codes.
            code = -accelerator.reduce(-self.code(), "max")
            span, none = len(self.tasks) + 1, torch.iinfo(torch.int64).max
            step = torch.where(code == none, 0, code // span)
            task = torch.where(code == none, -1, code % span - 1)
        step_value, task_value = int(step), int(task)
        return step_value, (self.tasks[task_value] if task_value >= 0 else None)

    def code(self) -> torch.Tensor:
        """One number that orders bad steps by step, then task (step * (tasks + 1) + task + 1); int64's max when none,
        so one reduce across processes finds the earliest bad step together with its own task."""
        span, none = len(self.tasks) + 1, torch.iinfo(torch.int64).max
        return torch.where(self.first_step == 0, none, self.first_step * span + self.first_task + 1)
