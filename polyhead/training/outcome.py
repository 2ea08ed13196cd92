"""How a training run ends: its result, or the two ways it stops early (a bad loss, a signal)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""

    @classmethod
    def non_finite(cls, first: int, task: str | None, step: int, last_dir: Path, run_dir: Path) -> "TrainingError":
        """A loss or gradient norm became non-finite at step `first` (seen at `step`): where, and how to go on."""
        from .checkpoint import checkpoint_step_text

        where = f"task {task!r}" if task else "a task"
        found = f" (found at step {step})" if step != first else ""
        return cls(f"the loss of {where} became non-finite at step {first}; training stopped{found}. "
                   f"The last good checkpoint is kept in {last_dir} (step {checkpoint_step_text(last_dir)}); "
                   f"lower training.learning_rate or set training.max_grad_norm, then resume with --resume {run_dir}")


class TrainingInterrupted(RuntimeError):
    """Stopped by a signal after writing a checkpoint to resume from.

    `what` says what happened; the message adds how to resume with `polyhead train`, which a caller
    with its own way to continue (the study) replaces.
    """

    def __init__(self, what: str, run_dir: Path) -> None:
        super().__init__(f"{what}. Resume with: polyhead train --resume {run_dir}")
        self.what, self.run_dir = what, run_dir

    def __reduce__(self):  # pickled whole (a study's runs on Ray send it back to the driver)
        return type(self), (self.what, self.run_dir)


@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Path
    steps: int
    elapsed_s: float
    cpu_s: float
    """CPU seconds of training and validation (all threads of the main process), summed over resumptions."""
    stop_reason: str
    best_step: int | None
    test_metrics: dict[str, dict]
    validation_metrics: dict[str, dict]
