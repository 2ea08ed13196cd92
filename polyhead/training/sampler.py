"""Which task the next batch comes from, and which of its examples.

Every choice is a pure function of (seed, draw number) and each task's consumed-example
count, so the state that a checkpoint needs is two small integers per task, and every
process of a distributed run draws the same global batch.

Length grouping (HF Trainer's `group_by_length`, done per task): each shuffled epoch of a
task is cut into pools of `pool_batches` batches; inside a pool the examples are sorted by
token count and cut into batches, and the pool's batch order is shuffled. A batch then pads
to a length close to its own texts' lengths instead of to the longest of 32 random texts;
every example is still drawn exactly once per epoch, and the order stays a pure function
of (seed, position), so resuming is exact.

Balanced sampling (`classes`, for imbalanced classification tasks): each epoch of such a task
still holds `size` examples, but every class present fills an equal share of them, so a
rare class is repeated and a common one subsampled; the epoch stays a pure function of
(seed, task, epoch), and length grouping applies on top.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import MIXING_STRATEGIES


def mixing_probabilities(sizes: dict[str, int], strategy: str, temperature: float = 2.0,
                         shares: dict[str, float] | None = None) -> dict[str, float]:
    """Probability of drawing each task's batch next (round_robin: the long-run share).

    `shares` fixes some tasks' probabilities (rehearsal of old tasks); the others split the rest by `strategy`.
    """
    shares = {t: s for t, s in (shares or {}).items() if t in sizes}
    free = {t: n for t, n in sizes.items() if t not in shares}
    if shares and free:
        rest = mixing_probabilities(free, strategy, temperature)
        return {t: shares[t] if t in shares else rest[t] * (1 - sum(shares.values())) for t in sizes}
    if shares:
        return {t: s / sum(shares.values()) for t, s in shares.items()}
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
    shares: dict[str, float] = field(default_factory=dict)
    """Fixed probabilities of some tasks (drawn at random then, also under round_robin); the rest mix by `strategy`."""
    classes: dict[str, Sequence[int]] = field(default_factory=dict)
    """Per task that samples balanced: each training example's class index. Each epoch of such a task draws every class
    equally often (small classes repeated, large ones subsampled), still `size` examples per epoch and a pure function of
    (seed, task, epoch)."""

    def __post_init__(self) -> None:
        empty = [t for t, n in self.sizes.items() if n < 1]
        if empty:
            raise ValueError(f"tasks without training examples: {empty}")
        self.tasks = list(self.sizes)
        self.probabilities = mixing_probabilities(self.sizes, self.strategy, self.temperature, self.shares)
        self._cumulative = []
        running = 0.0
        for task in self.tasks:
            running += self.probabilities[task]
            self._cumulative.append(running)
        for task in self.tasks:
            self.consumed.setdefault(task, 0)
        self._epoch_cache: dict[tuple[str, int], list[int]] = {}
        if self.pool_batches < 1:
            raise ValueError(f"pool_batches must be >= 1, got {self.pool_batches}")
        if self.grouped:
            assert self.lengths is not None
            wrong = {t: len(self.lengths.get(t, ())) for t in self.tasks if len(self.lengths.get(t, ())) != self.sizes[t]}
            if wrong:
                raise ValueError(f"lengths do not match the task sizes: {wrong} vs {self.sizes}")
        unknown = sorted(t for t in self.classes if t not in self.sizes)
        if unknown:
            raise ValueError(f"classes given for unknown tasks {unknown}; the tasks are {self.tasks}")
        wrong = {t: len(c) for t, c in self.classes.items() if len(c) != self.sizes[t]}
        if wrong:
            raise ValueError(f"classes do not match the task sizes (one class index per training example): "
                             f"{wrong} vs {self.sizes}")
        # Examples of each class per balanced task, in index order (classes sorted so the rng sees a fixed order).
        self._members: dict[str, dict[int, list[int]]] = {}
        for task, labels in self.classes.items():
            members: dict[int, list[int]] = {}
            for i, c in enumerate(labels):
                members.setdefault(int(c), []).append(i)
            self._members[task] = dict(sorted(members.items()))

    @property
    def grouped(self) -> bool:
        return self.group_by_length and self.lengths is not None

    def _choose_task(self, draw: int) -> str:
        if self.strategy == "round_robin" and not self.shares:
            return self.tasks[draw % len(self.tasks)]
        u = random.Random(f"{self.seed}:task:{draw}").random() * self._cumulative[-1]
        for task, edge in zip(self.tasks, self._cumulative):
            if u < edge:
                return task
        return self.tasks[-1]

    def _epoch_order(self, task: str, epoch: int) -> list[int]:
        key = (task, epoch)
        if key not in self._epoch_cache:
            if task in self._members:
                order = self._balanced(task, epoch)
            else:
                order = list(range(self.sizes[task]))
                random.Random(f"{self.seed}:{task}:{epoch}").shuffle(order)
            if self.grouped:
                order = self._grouped(task, epoch, order)
            # Keep this epoch and the one before it (a batch may straddle the boundary).
            self._epoch_cache = {k: v for k, v in self._epoch_cache.items() if k[0] != task or k[1] == epoch - 1}
            self._epoch_cache[key] = order
        return self._epoch_cache[key]

    def _balanced(self, task: str, epoch: int) -> list[int]:
        """The epoch's `size` example indices with every class present drawn equally often, shuffled.

        Each of the k classes gets size // k places (size % k of them, chosen by the seeded rng, one more), so the
        epoch length, and with it every position's epoch, is the same as unbalanced. A class fills its places by
        cycling through shuffles of its examples, a fresh shuffle per cycle: a small class repeats each example
        as evenly as possible, a large class draws another subset each epoch.
        """
        size, members = self.sizes[task], self._members[task]
        k = len(members)
        places = dict.fromkeys(members, size // k)
        for c in random.Random(f"{self.seed}:{task}:{epoch}:classes").sample(list(members), size % k):
            places[c] += 1
        order: list[int] = []
        for c, examples in members.items():
            cycle = 0
            while places[c] > 0:
                shuffled = list(examples)
                random.Random(f"{self.seed}:{task}:{epoch}:class:{c}:{cycle}").shuffle(shuffled)
                order += shuffled[: places[c]]
                places[c] -= min(places[c], len(shuffled))
                cycle += 1
        random.Random(f"{self.seed}:{task}:{epoch}:balanced").shuffle(order)
        return order

    def _grouped(self, task: str, epoch: int, order: list[int]) -> list[int]:
        """The epoch's shuffled order with its whole batches grouped by length, pool by pool.

        Batches are cut at multiples of batch_size of the task's stream, so an epoch whose
        size is not a multiple of it starts and ends inside a batch that it shares with the
        epoch before or after. Those head and tail places go to the epoch's shortest texts,
        so the shared batch pads little too; every full batch in between comes from a pool
        of `pool_batches` batches sorted by length, in shuffled batch order. Pools never
        reach into another epoch, so every place of the epoch's order is drawn exactly once.

        Works on positions, not example indices, so a balanced order that repeats an example
        keeps every copy; on an order without repeats it equals grouping by value.
        """
        size, batch = self.sizes[task], self.batch_size
        lengths = self.lengths[task]  # type: ignore[index]
        head = min((-epoch * size) % batch, size)
        tail = (size - head) % batch
        by_length = sorted(range(len(order)), key=lambda p: lengths[order[p]])  # stable: ties stay shuffled
        edge = set(by_length[: head + tail])
        shortest = [order[p] for p in by_length[: head + tail]]
        middle = [i for p, i in enumerate(order) if p not in edge]
        rng = random.Random(f"{self.seed}:{task}:{epoch}:groups")
        span = self.pool_batches * batch
        grouped: list[int] = []
        for start in range(0, len(middle), span):
            pool = sorted(middle[start : start + span], key=lambda i: -lengths[i])  # stable: ties stay shuffled
            batches = [pool[b : b + batch] for b in range(0, len(pool), batch)]
            rng.shuffle(batches)
            grouped += [i for b in batches for i in b]
        return shortest[:head] + grouped + shortest[head:]

    def next_batch(self) -> tuple[str, list[int]]:
        task = self._choose_task(self.draws)
        self.draws += 1
        size, start = self.sizes[task], self.consumed[task]
        indices = [self._epoch_order(task, position // size)[position % size] for position in range(start, start + self.batch_size)]
        self.consumed[task] = start + self.batch_size
        return task, indices

    def epochs_seen(self) -> dict[str, float]:
        return {t: self.consumed[t] / self.sizes[t] for t in self.tasks}

    def state_dict(self) -> dict:
        return {"draws": self.draws, "consumed": dict(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        self.draws = int(state["draws"])
        self.consumed = {t: int(state["consumed"].get(t, 0)) for t in self.tasks}


def steps_per_epoch(sizes: dict[str, int], batch_size: int, shares: dict[str, float] | None = None) -> float:
    """Optimizer steps of one pass over the training data of the tasks without a fixed share (all tasks when every
    task has one); the fixed-share tasks' batches come on top, so the others still see their data once."""
    shares = {t: s for t, s in (shares or {}).items() if t in sizes}
    free = [t for t in sizes if t not in shares]
    if not free:
        return sum(sizes.values()) / batch_size
    return sum(sizes[t] for t in free) / batch_size / (1 - sum(shares.values()))


def steps_for_epochs(sizes: dict[str, int], batch_size: int, epochs: float, shares: dict[str, float] | None = None) -> int:
    """Optimizer steps that cover `epochs` passes over the tasks' training data (see steps_per_epoch)."""
    return max(1, math.ceil(epochs * steps_per_epoch(sizes, batch_size, shares)))
