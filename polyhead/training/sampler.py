"""Which task the next batch comes from, and which of its examples.

Every choice is a pure function of (seed, draw number) and each task's consumed-example
count, so the state that a checkpoint needs is two small integers per task, and every
process of a distributed run draws the same global batch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .config import MIXING_STRATEGIES


def mixing_probabilities(sizes: dict[str, int], strategy: str, temperature: float = 2.0) -> dict[str, float]:
    """Probability of drawing each task's batch next (round_robin: the long-run share)."""
    if strategy not in MIXING_STRATEGIES:
        raise ValueError(f"unknown mixing strategy {strategy!r}; choose one of {', '.join(MIXING_STRATEGIES)}")
    if strategy == "proportional":
        weights = {t: float(n) for t, n in sizes.items()}
    elif strategy == "temperature":
        weights = {t: float(n) ** (1.0 / temperature) for t, n in sizes.items()}
    else:
        weights = {t: 1.0 for t in sizes}
    total = sum(weights.values())
    return {t: w / total for t, w in weights.items()}


@dataclass
class TaskBatchSampler:
    """Draws (task, example indices) batches; each batch holds one task's examples."""

    sizes: dict[str, int]
    """Training examples per task."""
    batch_size: int
    """Examples per (global) batch."""
    strategy: str = "proportional"
    """proportional, temperature, round_robin or uniform."""
    temperature: float = 2.0
    """T for the temperature strategy."""
    seed: int = 0
    """Seed of every draw."""
    draws: int = 0
    """Batches drawn so far."""
    consumed: dict[str, int] = field(default_factory=dict)
    """Examples drawn so far per task (position in its stream of shuffled epochs)."""

    def __post_init__(self) -> None:
        empty = [t for t, n in self.sizes.items() if n < 1]
        if empty:
            raise ValueError(f"tasks without training examples: {empty}")
        self.tasks = list(self.sizes)
        self.probabilities = mixing_probabilities(self.sizes, self.strategy, self.temperature)
        self._cumulative = []
        running = 0.0
        for task in self.tasks:
            running += self.probabilities[task]
            self._cumulative.append(running)
        for task in self.tasks:
            self.consumed.setdefault(task, 0)
        self._epoch_cache: dict[tuple[str, int], list[int]] = {}

    def _choose_task(self, draw: int) -> str:
        if self.strategy == "round_robin":
            return self.tasks[draw % len(self.tasks)]
        u = random.Random(f"{self.seed}:task:{draw}").random() * self._cumulative[-1]
        for task, edge in zip(self.tasks, self._cumulative):
            if u < edge:
                return task
        return self.tasks[-1]

    def _epoch_order(self, task: str, epoch: int) -> list[int]:
        key = (task, epoch)
        if key not in self._epoch_cache:
            order = list(range(self.sizes[task]))
            random.Random(f"{self.seed}:{task}:{epoch}").shuffle(order)
            self._epoch_cache = {k: v for k, v in self._epoch_cache.items() if k[0] != task}
            self._epoch_cache[key] = order
        return self._epoch_cache[key]

    def next_batch(self) -> tuple[str, list[int]]:
        task = self._choose_task(self.draws)
        self.draws += 1
        size, start = self.sizes[task], self.consumed[task]
        indices = []
        for position in range(start, start + self.batch_size):
            indices.append(self._epoch_order(task, position // size)[position % size])
        self.consumed[task] = start + self.batch_size
        return task, indices

    def epochs_seen(self) -> dict[str, float]:
        return {t: self.consumed[t] / self.sizes[t] for t in self.tasks}

    def state_dict(self) -> dict:
        return {"draws": self.draws, "consumed": dict(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        self.draws = int(state["draws"])
        self.consumed = {t: int(state["consumed"].get(t, 0)) for t in self.tasks}


def steps_for_epochs(sizes: dict[str, int], batch_size: int, epochs: float) -> int:
    """Optimizer steps that cover `epochs` passes over all tasks' training data."""
    return max(1, math.ceil(epochs * sum(sizes.values()) / batch_size))
