"""The loop's own state in a checkpoint: the step, the sampler, the best so far, the clock, the phase."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

STATE = "trainer_state.json"
"""Its file in a checkpoint directory."""


@dataclass
class TrainerState:
    """Loop bookkeeping that a resumed run needs to continue exactly."""

    step: int = 0
    """Optimizer steps completed."""
    sampler: dict = field(default_factory=dict)
    """TaskBatchSampler.state_dict()."""
    best_metric: float | None = None
    """Best validation value of the early-stopping metric so far."""
    best_step: int | None = None
    """Step of the best checkpoint."""
    evals_without_improvement: int = 0
    """Consecutive evaluations that did not beat the best."""
    elapsed_s: float = 0.0
    """Training wall time before this checkpoint (excludes time lost to a crash)."""
    cpu_s: float = 0.0
    """CPU seconds of the training process (all threads) before this checkpoint; steadier than wall time on a shared machine."""
    phase: int = 0
    """Index of the current schedule phase."""


def read_trainer_state(directory: Path) -> TrainerState | None:
    """The state in a checkpoint directory; None when it is missing or unreadable (an incomplete write)."""
    path = directory / STATE
    try:
        return TrainerState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
