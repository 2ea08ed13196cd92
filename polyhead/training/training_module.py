"""The trainable whole: model + loss balancer, built from a run config."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..encoder import SentenceEncoder
from ..model import MultiTaskModel, TaskSpec
from .config import RunConfig
from .data import TaskData
from .frozen_cache import FrozenFeatures
from .losses import LossBalancer


class TrainingModule(nn.Module):
    """Model + loss balancer in one module, so one DDP wrapper syncs both's gradients.

    The encoder part runs through `features`, which starts above the frozen part's cached
    output when there is one (see frozen_cache).
    """

    def __init__(self, model: MultiTaskModel, balancer: LossBalancer) -> None:
        super().__init__()
        self.model = model
        self.balancer = balancer
        self.features: FrozenFeatures | None = None

    def forward(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor, task: str):
        assert self.features is not None
        embeddings = self.features.embed(inputs)
        logits = self.model.heads[task](embeddings)
        raw = F.cross_entropy(logits.float(), labels)
        return self.balancer(task, raw), raw


def set_backbone_dropout(encoder: SentenceEncoder, p: float) -> None:
    for module in encoder.backbone.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def build_model(config: RunConfig, task_data: dict[str, TaskData], device: torch.device) -> MultiTaskModel:
    encoder = SentenceEncoder(
        config.model.name,
        pooling=config.model.pooling,  # type: ignore[arg-type]
        normalize=config.model.normalize,
        max_seq_length=config.model.max_seq_length,
        device=device,
    )
    if config.training.backbone_dropout is not None:
        set_backbone_dropout(encoder, config.training.backbone_dropout)
    specs = [TaskSpec(name, data.label_names, config.tasks[name].head, data.source_spec) for name, data in task_data.items()]
    return MultiTaskModel(encoder, specs)
