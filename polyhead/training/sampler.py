"""Which task the next batch comes from, and which of its examples.

Every choice is a pure function of (seed, draw number) and each task's consumed-example
count, so the state that a checkpoint needs is two small integers per task, and every
process of a distributed run draws the same global batch.

Length grouping (HF Trainer's `group_by_length`, done per task): each task's stream of
shuffled epochs is cut into pools of `pool_batches` batches; inside a pool the examples
are sorted by token count and cut into batches, and the pool's batch order is shuffled.
A batch then pads to a length close to its own texts' lengths instead of to the longest
of 32 random texts; every example is still drawn once per epoch (pools follow the stream
of epochs), and the order stays a pure function of (seed, position), so resuming is exact.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
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
    lengths: dict[str, Sequence[int]] | None = None
    """Token count of every training example per task; None (or group_by_length off) draws random batches."""
    group_by_length: bool = True
    """Sort each pool of batches by length so batches pad little (needs `lengths`)."""
    pool_batches: int = 50
    """Batches per length-sorted pool: larger pads less, smaller keeps batches more random."""

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
        self._pool_cache: dict[str, tuple[int, list[int]]] = {}
        if self.pool_batches < 1:
            raise ValueError(f"pool_batches must be >= 1, got {self.pool_batches}")
        if self.grouped:
            assert self.lengths is not None
            wrong = {t: len(self.lengths.get(t, ())) for t in self.tasks if len(self.lengths.get(t, ())) != self.sizes[t]}
            if wrong:
                raise ValueError(f"lengths do not match the task sizes: {wrong} vs {self.sizes}")

    @property
    def grouped(self) -> bool:
        return self.group_by_length and self.lengths is not None

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

    def _stream(self, task: str, start: int, count: int) -> list[int]:
        """Examples at positions [start, start + count) of the task's stream of shuffled epochs."""
        size = self.sizes[task]
        return [self._epoch_order(task, position // size)[position % size] for position in range(start, start + count)]

    def _pool(self, task: str, number: int) -> list[int]:
        """Pool `number` of the task's stream, length-sorted, in shuffled batch order."""
        cached = self._pool_cache.get(task)
        if cached is not None and cached[0] == number:
            return cached[1]
        span = self.pool_batches * self.batch_size
        members = self._stream(task, number * span, span)
        lengths = self.lengths[task]  # type: ignore[index]
        members.sort(key=lambda i: -lengths[i])  # stable: ties keep their shuffled order
        batches = [members[b : b + self.batch_size] for b in range(0, span, self.batch_size)]
        random.Random(f"{self.seed}:{task}:pool:{number}").shuffle(batches)
        order = [i for batch in batches for i in batch]
        self._pool_cache[task] = (number, order)
        return order

    def next_batch(self) -> tuple[str, list[int]]:
        task = self._choose_task(self.draws)
        self.draws += 1
        start = self.consumed[task]
        if self.grouped:
            # Every draw takes batch_size positions, so batches never straddle two pools.
            span = self.pool_batches * self.batch_size
            offset = start % span
            indices = self._pool(task, start // span)[offset : offset + self.batch_size]
        else:
            indices = self._stream(task, start, self.batch_size)
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
