"""What a run says once it is set up: the start event (or the resume event) and the lines the user reads first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .imbalance import imbalance_lines

if TYPE_CHECKING:
    from .loop import Trainer


def announce_start(trainer: Trainer, resumed: bool) -> None:
    """Log the start event (sizes, steps, precision, budget, imbalance) or the resume, then print precision, the length
    rule and the imbalance notes: what the run will do, before its first step."""
    t, state = trainer.config.training, trainer.state
    if resumed:
        trainer.log.write({"type": "event", "step": state.step, "message": f"resumed from step {state.step}"})
    else:
        total = sum(p.numel() for p in trainer.module.parameters())
        trainer.log.write({
            "type": "event", "step": 0, "message": "start", "train_examples": trainer.sizes,
            "truncated_train_texts": trainer.truncated, "total_steps": trainer.total_steps, "processes": trainer.world,
            "mixing_probabilities": trainer.sampler.probabilities, "parameters": {"trainable": trainer.trainable, "total": total},
            "mixed_precision": trainer.precision.to_dict(), "group_by_length": t.group_by_length,
            "pad_to_multiple": trainer.multiple, "compile": t.compile, "budget": trainer.budget.to_dict(),
            "imbalance": trainer.imbalance,
        })
    if trainer.main and t.progress:
        print(f"precision: {trainer.precision.reason}")
    if trainer.main and not resumed:
        print("\n".join([trainer.budget.describe(), *imbalance_lines(trainer.imbalance)]))
