"""What a finished run leaves beside its model: test_metrics.json, the model card and the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fileio import write_json
from ..model_card import TrainingFacts, write_model_card


@dataclass
class RunSummary:
    steps: int
    best_step: int | None
    stop_reason: str
    training_time_s: float
    cpu_time_s: float
    trainable_parameters: int
    tasks: dict[str, dict]
    """Test metrics per task (empty when no task has a test split)."""
    examples_seen: dict[str, int]


def record_results(run_dir: Path, model_dir: Path, model, config: dict, summary: RunSummary) -> None:
    facts = TrainingFacts(summary.tasks, config, summary.steps, summary.best_step, summary.training_time_s, summary.examples_seen)
    write_model_card(model_dir, model.config_dict(), model.encoder.source, facts, model_dir.name)
    write_json(run_dir / "test_metrics.json", {
        "best_step": summary.best_step, "steps": summary.steps, "stop_reason": summary.stop_reason,
        "training_time_s": summary.training_time_s, "cpu_time_s": summary.cpu_time_s,
        "trainable_parameters": summary.trainable_parameters, "tasks": summary.tasks, "examples_seen": summary.examples_seen,
    })
    from .report import write_report

    write_report(run_dir, summary.tasks or None)
