"""A run as a list of phases, each with its own freezing (gradual unfreezing and the like)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import PhaseConfig, RunConfig
from .freezing import FreezeConfig


@dataclass
class Phase:
    index: int
    name: str
    start: int
    """First step (0-based) of the phase."""
    end: int
    """Step after the phase's last one."""
    freeze: FreezeConfig


def plan_phases(config: RunConfig, total_steps: int, steps_per_epoch: float = 1.0) -> list[Phase]:
    """The run's phases with their step ranges; one phase with `config.freeze` if none are given.

    A phase given in epochs lasts `epochs * steps_per_epoch` steps (at least one).
    """
    if not config.phases:
        return [Phase(0, "all", 0, total_steps, config.freeze)]
    phases, start = [], 0
    for index, (phase, steps) in enumerate(zip(config.phases, phase_steps(config.phases, steps_per_epoch))):
        phases.append(Phase(index, phase.name or f"phase {index + 1}", start, start + steps, phase.freeze))
        start += steps
    return phases


def phase_at(phases: list[Phase], step: int) -> Phase:
    for phase in phases:
        if phase.start <= step < phase.end:
            return phase
    return phases[-1]


def phase_steps(phases: list[PhaseConfig], steps_per_epoch: float) -> list[int]:
    """Each phase's length in optimizer steps."""
    return [p.steps if p.steps is not None else max(1, math.ceil(p.epochs * steps_per_epoch)) for p in phases]  # type: ignore[operator]


def run_steps(config: RunConfig, epoch_steps: float) -> int:
    """A run's steps: its phases' steps, else max_steps, else its epochs (at least one step)."""
    t = config.training
    if config.phases:
        return total_phase_steps(config.phases, epoch_steps)
    return t.max_steps or max(1, math.ceil(t.epochs * epoch_steps))


def total_phase_steps(phases: list[PhaseConfig], steps_per_epoch: float = 1.0) -> int:
    return sum(phase_steps(phases, steps_per_epoch))
