"""The trainable whole: model + loss balancer, built from a run config."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..encoder import SentenceEncoder
from ..errors import InputError
from ..fileio import read_json
from ..model import HEADS_WEIGHTS, MODEL_CONFIG, MultiTaskModel, TaskSpec
from .adapters import add_lora
from .config import LoraConfig, RunConfig
from .data import TaskData, stream_names
from .distillation import Distiller
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
        self.distiller: Distiller | None = None
        """Soft targets of the starting model (protect.strategy distillation), added to each batch's loss."""
        self.class_weights: dict[str, torch.Tensor] = {}
        """Per task with `class_weights`: its kind's loss weights, on the model's device."""

    def forward(self, inputs: list[dict[str, torch.Tensor]], targets: torch.Tensor, task: str, rows: torch.Tensor | None = None):
        """`inputs`: one batch per text column of the task (one, or two for pair kinds); `rows`: their training examples."""
        assert self.features is not None
        with self.model.routed(task):
            embeddings = [self.features.embed(column) for column in inputs]
        spec = self.model.tasks[task]
        logits = spec.task_kind.logits(self.model.heads[task], embeddings)
        raw = spec.task_kind.loss(logits, targets, spec, self.class_weights.get(task))
        weighted = self.balancer(task, raw)
        if self.distiller is not None and rows is not None:
            weighted = weighted + self.distiller.loss(self.model, stream_names(task, len(inputs)), embeddings, rows)
        return weighted, raw


def set_backbone_dropout(encoder: SentenceEncoder, p: float) -> None:
    for module in encoder.backbone.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def build_model(config: RunConfig, task_data: dict[str, TaskData], device: torch.device) -> MultiTaskModel:
    source = config.model.start_from or config.model.name
    encoder = SentenceEncoder(
        source,
        pooling=config.model.pooling,  # type: ignore[arg-type]
        normalize=config.model.normalize,
        max_seq_length=config.model.max_seq_length,
        device=device,
        truncation=config.model.truncation,
    )
    if config.training.backbone_dropout is not None:
        set_backbone_dropout(encoder, config.training.backbone_dropout)
    specs = [TaskSpec(name, data.label_names, config.tasks[name].head, data.source_spec, data.kind, dict(data.state))
             for name, data in task_data.items()]
    model = MultiTaskModel(encoder, specs)
    if source is not None:
        keep_saved_adapters(model, Path(source))
        kept = keep_saved_heads(model, Path(source), {name: task.extend_labels for name, task in config.tasks.items()})
        if config.protect.strategy == "adapter":  # each new task its own adapter; model.lora gives their settings
            lora = config.model.lora or LoraConfig()
            for name in [n for n in model.tasks if n not in kept]:
                model.add_task_adapter(name, lora.rank, lora.alpha, lora.dropout)
            return model
    if config.model.lora is not None:
        add_lora(encoder.backbone, config.model.lora)
    return model


def keep_saved_adapters(model: MultiTaskModel, path: Path) -> None:
    """A starting model's per-task adapters come with it (their tasks keep routing through them)."""
    config_file = path / MODEL_CONFIG
    model.load_task_adapters(path, read_json(config_file).get("adapters") if config_file.is_file() else None)


def keep_saved_heads(model: MultiTaskModel, path: Path, extend: dict[str, bool] | None = None) -> list[str]:
    """Starting from a saved polyhead model: tasks it has keep their trained heads.

    A task whose labels differ from the saved one's is an error (its rows would mean other
    classes) unless `extend[task]` allows a superset: each known label keeps its trained
    output row, new labels get fresh rows. Another head shape is an error; tasks the saved
    model lacks start with fresh heads.
    """
    from safetensors.torch import load_file

    config_file = path / MODEL_CONFIG
    if not config_file.is_file():
        return []
    saved = {t["name"]: TaskSpec.from_dict(t) for t in read_json(config_file)["tasks"]}
    weights = load_file(str(path / HEADS_WEIGHTS), device=str(model.device))
    kept = []
    for name, spec in model.tasks.items():
        if name not in saved:
            continue
        if saved[name].kind != spec.kind:
            raise InputError(f"the starting model {path} has a {saved[name].kind} task of this name; the config makes it {spec.kind}",
                             field=f"tasks.{name}.kind")
        extending = saved[name].labels != spec.labels and (extend or {}).get(name, False)
        if extending and not set(saved[name].labels) <= set(spec.labels):
            missing = sorted(set(saved[name].labels) - set(spec.labels))
            raise InputError(f"extend_labels keeps every label the starting model knows, but the data lacks {missing}",
                             field=f"tasks.{name}.extend_labels")
        if saved[name].labels != spec.labels and not extending:
            raise InputError(f"the starting model {path} has labels {saved[name].labels} for this task; the data has {spec.labels} "
                             "(set extend_labels: true on the task to add the new labels to the trained head)", field=f"tasks.{name}")
        if saved[name].head != spec.head:
            raise InputError(f"the starting model {path} has another head for this task ({saved[name].head}); "
                             "give the same head settings or a new task name", field=f"tasks.{name}.head")
        prefix = f"{name}."
        trained = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if extending:
            trained = _rows_by_label(trained, model.heads[name].state_dict(), saved[name].labels, spec.labels)
        model.heads[name].load_state_dict(trained)
        if not extending:  # the head was trained on the saved scaling and thresholds: keep them with it
            spec.state = dict(saved[name].state)
        spec.adapter = saved[name].adapter
        kept.append(name)
    return kept


def _rows_by_label(trained: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor], old: list[str], new: list[str]) -> dict:
    """The output layer's rows moved to each label's new position; rows of new labels stay fresh; other weights as trained."""
    merged = {}
    for key, value in trained.items():
        if value.shape[:1] == (len(old),) and fresh[key].shape[:1] == (len(new),) and value.shape[1:] == fresh[key].shape[1:]:
            rows = fresh[key].clone()
            for i, label in enumerate(old):
                rows[new.index(label)] = value[i]
            merged[key] = rows
        else:
            merged[key] = value
    return merged
