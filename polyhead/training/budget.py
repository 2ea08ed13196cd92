"""How long a run trains, how often it validates and when it stops early.

A fixed budget (`epochs: N`, `max_steps`, phases) trains that long. `epochs: auto` trains
until validation stops improving: it validates `evals_per_epoch` times per epoch, keeps the
best model, and stops after `patience` validations without improvement, or at `max_epochs`.
The learning rate warms up and decays over the most the run may take (as the Hugging Face
Trainer does under early stopping), so an auto run resumes onto the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .config import RunConfig
from .phases import run_steps

AUTO_PATIENCE = 4
"""Validations without improvement before `epochs: auto` stops: one epoch at the default 4 validations per epoch."""
FIXED_EVAL_EVERY = 200
"""Steps between validations of a fixed budget when `eval_every` is unset."""


@dataclass(frozen=True)
class Budget:
    """A run's length and its validation and stopping rule, resolved from its config and data size."""

    auto: bool
    """Whether the run stops on a validation plateau (`epochs: auto`) rather than at a fixed length."""
    total_steps: int
    """The most optimizer steps the run takes (and the length the learning-rate schedule spans)."""
    eval_every: int
    """Steps between validations."""
    patience: int | None
    """Validations without improvement before stopping; None never stops early."""
    steps_per_epoch: float
    """Optimizer steps of one pass over the training data."""
    metric: str
    """The validation metric that picks the best model and decides the stop."""
    max_epochs: float | None = None
    """The auto budget's cap in epochs; None for a fixed budget."""

    def epoch(self, step: int) -> float:
        return step / self.steps_per_epoch

    def describe(self) -> str:
        """One line for the run start: what the run will do."""
        every = f"every {self.eval_every} steps ({self.steps_per_epoch / self.eval_every:.3g} times per epoch)"
        keep = f"keeping the model with the best validation {self.metric}"
        if self.auto:
            return (f"epochs: auto: validating {every}, {keep}; stops after {self.patience} validations without improvement, "
                    f"at most {self.max_epochs:g} epochs ({self.total_steps:,} steps)")
        stop = f"; stops early after {self.patience} validations without improvement" if self.patience else ""
        return f"training {self.total_steps:,} steps ({self.epoch(self.total_steps):.2f} epochs), validating {every}, {keep}{stop}"

    def to_dict(self) -> dict:
        return {**asdict(self), "steps_per_epoch": round(self.steps_per_epoch, 4)}

    def stop_reason(self, evaluations: int) -> str:
        """Why an early stop happened, in words the report and the CLI show."""
        rule = "epochs: auto" if self.auto else "early stopping"
        span = f" ({evaluations * self.eval_every / self.steps_per_epoch:.2f} epochs)" if self.auto else ""
        return f"{rule}: {self.metric} did not improve for {evaluations} evaluations{span}"

    def stopped_event(self, step: int, best_step: int | None, reason: str) -> dict:
        """The log's last training event: where the run stopped, why, and which step it keeps."""
        best = f"; the best validation was step {best_step} (epoch {self.epoch(best_step):.2f})" if best_step is not None else ""
        return {"type": "event", "step": step, "message": f"stopped at step {step} (epoch {self.epoch(step):.2f}): {reason}{best}",
                "stop": {"reason": reason, "step": step, "epoch": round(self.epoch(step), 4), "best_step": best_step,
                         "best_epoch": None if best_step is None else round(self.epoch(best_step), 4)}}

    def end_reason(self) -> str:
        """Why a run that trained to its end stopped."""
        return f"max_epochs ({self.max_epochs:g}) reached" if self.auto else "max_steps"


def is_auto(config: RunConfig) -> bool:
    """`epochs: auto` decides the length only when neither max_steps nor phases fix it."""
    return config.training.epochs == "auto" and config.training.max_steps is None and not config.phases


def plan_budget(config: RunConfig, steps_per_epoch: float) -> Budget:
    t = config.training
    stopping = t.early_stopping
    if is_auto(config):
        eval_every = t.eval_every or max(1, math.ceil(steps_per_epoch / t.evals_per_epoch))
        patience = stopping.patience if stopping.patience is not None else AUTO_PATIENCE
        total = max(1, math.ceil(t.max_epochs * steps_per_epoch))
        return Budget(True, total, eval_every, patience, steps_per_epoch, stopping.metric, t.max_epochs)
    return Budget(False, run_steps(config, steps_per_epoch), t.eval_every or FIXED_EVAL_EVERY, stopping.patience,
                  steps_per_epoch, stopping.metric)
