"""Learning without forgetting (Li & Hoiem 2016): the starting model's outputs on the new texts as soft targets.

The teacher is the starting model, fixed: its embedding of every training text of the new
tasks and its old heads' raw outputs on them are computed once before training, so the old
tasks' data is not needed and a step costs no second encoder pass. Each step then adds, for the
batch's texts, the old heads' distillation loss (each kind's own: KL for classes, MSE for values)
and how far each embedding turned from the teacher's (1 - cosine), which also covers old tasks
without a single-text head (pairs, contrastive).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .data import TaskData
from .extend_config import ProtectConfig


class Distiller:
    """Soft targets per training stream (`task`, `task.pair`), indexed by training example."""

    def __init__(self, embeddings: dict[str, torch.Tensor], logits: dict[str, dict[str, torch.Tensor]], config: ProtectConfig) -> None:
        self.embeddings, self.logits, self.config = embeddings, logits, config

    def loss(self, model, streams: list[str], student: list[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        """The distillation loss of a batch: `student` holds the embeddings of each of the task's streams."""
        total = student[0].new_zeros((), dtype=torch.float32)
        for stream, embeddings in zip(streams, student):
            if stream not in self.embeddings:
                continue
            rows_here = rows.to(self.embeddings[stream].device)
            teacher = self.embeddings[stream][rows_here].to(embeddings.device)
            total = total + self.config.embedding_weight * (1 - F.cosine_similarity(embeddings.float(), teacher.float(), dim=-1)).mean()
            for task, teacher_logits in self.logits[stream].items():
                spec = model.tasks[task]
                current = spec.task_kind.logits(model.heads[task], [embeddings])
                target = teacher_logits[rows_here].to(embeddings.device)
                total = total + self.config.distillation_weight * spec.task_kind.distillation_loss(
                    current, target, spec, self.config.distillation_temperature)
        return total


@torch.inference_mode()
def build_distiller(start: Path, old_tasks: list[str], new_data: dict[str, TaskData], config: ProtectConfig,
                    device: torch.device, batch_size: int) -> Distiller:
    """Embed the new tasks' training texts with the starting model and run its old single-text heads on them."""
    from ..model import MultiTaskModel
    from ..modes import eval_mode
    from .evaluation import stream_embeddings

    teacher = MultiTaskModel.load(start, device=device)
    answering = [name for name in old_tasks if name in teacher.answering_tasks]
    with eval_mode(teacher):
        embeddings = stream_embeddings(teacher, new_data, "train", batch_size)
        embeddings = {stream: vectors.to(device) for stream, vectors in embeddings.items()}
        logits = {stream: {name: teacher.tasks[name].task_kind.logits(teacher.heads[name], [vectors]).float()
                           for name in answering}
                  for stream, vectors in embeddings.items()}
    # Kept on the training device (a vector and a few logits per text, small): a step's gather then moves
    # nothing, where tables on the host would cost a device-to-host copy of the batch's rows and a wait per step.
    return Distiller(embeddings, logits, config)
