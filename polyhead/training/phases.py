"""A run as a list of phases, each with its own freezing (gradual unfreezing and the like)."""

from __future__ import annotations

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


def plan_phases(config: RunConfig, total_steps: int) -> list[Phase]:
    """The run's phases with their step ranges; one phase with `config.freeze` if none are given."""
    if not config.phases:
        return [Phase(0, "all", 0, total_steps, config.freeze)]
    phases, start = [], 0
    for index, phase in enumerate(config.phases):
        phases.append(Phase(index, phase.name or f"phase {index + 1}", start, start + phase.steps, phase.freeze))
        start += phase.steps
    return phases


def phase_at(phases: list[Phase], step: int) -> Phase:
    for phase in phases:
        if phase.start <= step < phase.end:
            return phase
    return phases[-1]


def total_phase_steps(phases: list[PhaseConfig]) -> int:
    return sum(p.steps for p in phases)
