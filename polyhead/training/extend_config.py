"""Config of a run that starts from a trained model (`model.from`): how its tasks are kept, and the guard.

Read before PyTorch loads; the strategies themselves are applied by `training.extending`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

PROTECTIONS = ("plain", "isolate", "rehearsal", "distillation", "adapter")
"""How the starting model's tasks are kept while new tasks train (see docs/training.md, "Adding a task")."""


@dataclass
class ProtectConfig:
    """How the tasks the starting model already has (its old tasks) are kept while new tasks train."""

    strategy: str = "plain"
    """plain: the config's tasks train as configured, old tasks the config leaves out are only evaluated (no protection);
    isolate: encoder and old heads frozen, only new heads train (cached embeddings); rehearsal: old tasks' training data
    mixed back in at `rehearsal_share`; distillation: the starting model's outputs on the new texts kept as soft targets;
    adapter: the encoder frozen, each new task gets its own LoRA adapter and head, old tasks run on the unchanged encoder."""
    old_head_learning_rate: float | None = None
    """Rate of old heads that train (rehearsal, or old tasks listed under plain); None: training.learning_rate,
    since a trained head needs no fresh head's large rate (which would first pull it away from what it knows)."""
    rehearsal_share: float = 0.3
    """rehearsal: share of training batches drawn from the old tasks (split among them by size)."""
    distillation_weight: float = 1.0
    """distillation: weight of the old heads' soft-target loss (KL for classes, MSE for values) on the new texts."""
    distillation_temperature: float = 2.0
    """distillation: softmax temperature of the soft targets (Hinton et al. 2015; the loss is scaled by T^2)."""
    embedding_weight: float = 1.0
    """distillation: weight of keeping each new text's embedding close (1 - cosine) to the starting model's."""

    def __post_init__(self) -> None:
        if self.strategy not in PROTECTIONS:
            raise InputError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(PROTECTIONS)}", field="strategy")
        if not 0 < self.rehearsal_share < 1:
            raise InputError("must be in (0, 1)", field="rehearsal_share")
        if self.distillation_weight < 0 or self.embedding_weight < 0:
            raise InputError("distillation weights must be >= 0", field="distillation_weight")
        if self.distillation_temperature <= 0:
            raise InputError("must be > 0", field="distillation_temperature")


@dataclass
class GuardConfig:
    """The old tasks' metrics before and after the run, side by side; a drop beyond a tolerance fails the run."""

    metric: str = "score"
    """Metric compared per old task: `score` (the kind's own: macro-F1, Spearman, micro-F1, MRR) or a named one (accuracy)."""
    max_drop: float | None = None
    """Largest allowed drop of `metric` on any old task's test split (0.01 = one point); beyond it the run fails its final
    check, its model is kept apart as `model.rejected` and the starting model is untouched. None only reports."""
    lee_max_drop: float | None = None
    """Largest allowed drop of the embedding space's Spearman on the lee similarity benchmark; None only reports."""

    def __post_init__(self) -> None:
        for name in ("max_drop", "lee_max_drop"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InputError("must be >= 0", field=name)
