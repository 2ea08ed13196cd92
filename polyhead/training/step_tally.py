"""What the steps since the last log line added up to: loss sums, examples and padded tokens per task.

Losses stay on the training device until a log step reads them: reading a loss into Python
waits for the GPU to finish everything queued, and doing that for every batch keeps a GPU
idle between steps. So do non-finite losses and gradient norms: a device-side code records
the first bad step, and `NonFiniteWatch.read()` (called before anything is logged, evaluated or
saved) is the one place that waits. A batch costs a handful of small kernels, none of them a wait. Sums are float64, added in batch order, so the logged
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
    """task -> sum of its batch losses (a float64 scalar on `device`: one kernel per batch adds to it)."""
    batches: dict[str, int] = field(default_factory=dict)
    """task -> batches summed (known on the host)."""
    examples: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    """task -> [padded tokens, real tokens] (known on the host)."""

    def add(self, task: str, loss: torch.Tensor, examples: int, lengths: list[int], width: int | None = None) -> None:
        """One batch: its loss (a device scalar, not read here), size and text lengths (`width`: its padded length)."""
        if task not in self.losses:
            self.losses[task] = torch.zeros((), dtype=torch.float64, device=self.device)
        self.losses[task].add_(loss.detach())  # widened to float64 by the in-place add itself
        self.batches[task] = self.batches.get(task, 0) + 1
        self.examples[task] = self.examples.get(task, 0) + examples
        tokens = self.tokens.setdefault(task, [0, 0])
        tokens[0] += (width or max(lengths)) * len(lengths)
        tokens[1] += sum(lengths)

    def mean_losses(self, accelerator, tasks: list[str], world: int) -> dict[str, float]:
        """Mean loss per task since the last log line, averaged over processes (the one read of the sums)."""
        zero = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        sums = torch.stack([self.losses.get(t, zero).to(accelerator.device) for t in tasks])
        counts = torch.tensor([float(self.batches.get(t, 0)) for t in tasks], dtype=torch.float64).to(accelerator.device)
        values = torch.stack([sums, counts], dim=1).float()
        if world > 1:
            values = accelerator.reduce(values, "sum")
        values = values.cpu()
        return {t: float(values[i, 0] / values[i, 1]) for i, t in enumerate(tasks) if values[i, 1] > 0}

    def padding_ratio(self) -> dict[str, float]:
        return {k: round(v[0] / v[1], 4) for k, v in self.tokens.items() if v[1]}


class NonFiniteWatch:
    """The first step whose loss or gradient norm was not finite, kept on the device as one code (see `code`).

    A note is four small kernels and no host wait: the bad value's code, or int64's max when the
    value is finite, folded into the running minimum.
    """

    def __init__(self, device: torch.device, tasks: list[str]) -> None:
        self.tasks = tasks
        self.span = len(tasks) + 1
        self.none = torch.iinfo(torch.int64).max
        self.first = torch.full((), self.none, dtype=torch.int64, device=device)
        """The smallest code noted so far (int64's max: nothing bad yet)."""

    def note(self, step: int, value: torch.Tensor, task: str | None = None) -> None:
        """Record `step` (and `task`, whose loss `value` is; None: a gradient norm) if `value` is not finite (no host wait)."""
        code = step * self.span + (self.tasks.index(task) if task is not None else len(self.tasks))
        bad_code = torch.where(torch.isfinite(value.detach()).all(), self.none, code)
        torch.minimum(self.first, bad_code, out=self.first)

    def read(self, accelerator=None, world: int = 1) -> tuple[int, str | None]:
        """(first bad step or 0, its task or None): waits for the device; under several processes the earliest anywhere."""
        code = self.code()
        if world > 1 and accelerator is not None:
            code = -accelerator.reduce(-code, "max")  # the smallest code anywhere
        value = int(code)
        if value == self.none:
            return 0, None
        step, slot = divmod(value, self.span)
        return step, (self.tasks[slot] if slot < len(self.tasks) else None)

    def code(self) -> torch.Tensor:
        """One number that orders bad steps by step, then by what was bad (step * (tasks + 1) + the task's index, or
        + tasks for a gradient norm); int64's max when none, so one reduce across processes finds the earliest bad
        step together with its own task."""
        return self.first
