"""MultiTaskModel: one SentenceEncoder shared by named task heads; save, load, predict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .encoder import SentenceEncoder, check_texts
from .fileio import atomic_directory, read_json, write_json
from .heads import HeadConfig, build_head
from .model_card import write_model_card
from .modes import eval_mode

MODEL_CONFIG = "polyhead_model.json"
HEADS_WEIGHTS = "heads.safetensors"
FORMAT_VERSION = 1


@dataclass
class TaskSpec:
    """A task as the model knows it: its name, its label names in logit order, its head."""

    name: str
    labels: list[str]
    head: HeadConfig = field(default_factory=HeadConfig)
    data: str | dict | None = None
    """Where the task's data came from (a built-in name or files), so `evaluate` can find it."""

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "head": self.head.to_dict(), "data": self.data}

    @classmethod
    def from_dict(cls, data: dict) -> "TaskSpec":
        return cls(name=data["name"], labels=list(data["labels"]), head=HeadConfig(**data.get("head", {})), data=data.get("data"))


@dataclass
class MultiTaskOutput:
    embeddings: torch.Tensor
    logits: dict[str, torch.Tensor]


@dataclass
class TaskPrediction:
    """One text's prediction for one task."""

    label: str
    probability: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict:
        return {"label": self.label, "probability": self.probability, "probabilities": self.probabilities}


def predictions_from_probabilities(probabilities: dict[str, torch.Tensor], tasks: dict[str, TaskSpec]) -> list[dict[str, TaskPrediction]]:
    """Per text, per task: the best label, its probability and every class's probability."""
    names = list(probabilities)
    if not names:
        return []
    rows = len(next(iter(probabilities.values())))
    tables = {name: probabilities[name].detach().float().cpu().tolist() for name in names}
    results: list[dict[str, TaskPrediction]] = []
    for row in range(rows):
        per_task = {}
        for name in names:
            values = tables[name][row]
            labels = tasks[name].labels
            best = max(range(len(values)), key=values.__getitem__)
            per_task[name] = TaskPrediction(labels[best], float(values[best]), dict(zip(labels, map(float, values))))
        results.append(per_task)
    return results


class MultiTaskModel(nn.Module):
    """A shared encoder and one head per task; a batch pays only for the heads it asks for."""

    def __init__(self, encoder: SentenceEncoder, tasks: list[TaskSpec]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a MultiTaskModel needs at least one task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.encoder = encoder
        self.tasks: dict[str, TaskSpec] = {t.name: t for t in tasks}
        self.heads = nn.ModuleDict(
            {t.name: build_head(t.head, encoder.embedding_dim, len(t.labels)) for t in tasks}
        )
        self.heads.to(encoder.device)

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    def _check_tasks(self, tasks: list[str] | None) -> list[str]:
        if tasks is None:
            return self.task_names
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise KeyError(f"unknown task(s) {unknown}; the model has {self.task_names}")
        return list(tasks)

    def forward(self, texts_or_batch: list[str] | dict[str, torch.Tensor], tasks: list[str] | None = None) -> MultiTaskOutput:
        """Embeddings and the logits of the requested tasks (all when `tasks` is None)."""
        names = self._check_tasks(tasks)
        if isinstance(texts_or_batch, dict):
            batch = texts_or_batch
        else:
            batch = self.encoder.tokenize(check_texts(texts_or_batch))
        batch = {k: v.to(self.device) for k, v in batch.items()}
        embeddings = self.encoder(batch["input_ids"], batch["attention_mask"])
        return MultiTaskOutput(embeddings, self.head_logits(embeddings, names))

    def head_logits(self, embeddings: torch.Tensor, tasks: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.heads[name](embeddings) for name in tasks}

    @torch.inference_mode()
    def predict_probabilities(self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, **encode_options) -> dict[str, torch.Tensor]:
        """Class probabilities per task, shape (len(texts), num_labels), in input order."""
        names = self._check_tasks(tasks)
        with eval_mode(self):
            embeddings = self.encoder.encode(texts, batch_size=batch_size, output="torch", show_progress=False, **encode_options)
            return {name: torch.softmax(logits.float(), dim=-1) for name, logits in self.head_logits(embeddings.to(self.device), names).items()}

    def predict(self, texts: list[str], tasks: list[str] | None = None, batch_size: int = 32, **encode_options) -> list[dict[str, TaskPrediction]]:
        """Per text and task: label name, its probability and all class probabilities."""
        items = check_texts(texts)
        if not items:
            return []
        probabilities = self.predict_probabilities(items, tasks, batch_size, **encode_options)
        return predictions_from_probabilities(probabilities, self.tasks)

    # ------------------------------------------------------------------ save / load
    def config_dict(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "polyhead_version": __version__,
            "embedding_dim": self.encoder.embedding_dim,
            "pooling": self.encoder.pooling_mode,
            "normalize": self.encoder.normalize,
            "truncation": self.encoder.truncation,
            "tasks": [t.to_dict() for t in self.tasks.values()],
        }

    def save(self, path: str | Path) -> Path:
        """One directory: the encoder in sentence-transformers layout, heads and task labels beside it."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.encoder.save_to(tmp)
            weights = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
            save_file(weights, str(tmp / HEADS_WEIGHTS))
            write_json(tmp / MODEL_CONFIG, self.config_dict())
            write_model_card(tmp, self.config_dict(), self.encoder.source, model_name=path.name)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "MultiTaskModel":
        path = Path(path)
        config_file = path / MODEL_CONFIG
        if not config_file.is_file():
            what = "no such directory" if not path.exists() else f"not a polyhead model directory (no {MODEL_CONFIG})"
            raise FileNotFoundError(f"{path}: {what}")
        config = read_json(config_file)
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{config_file}: unsupported format {config.get('format')!r}")
        encoder = SentenceEncoder(path, device=device, truncation=config.get("truncation", "head"))
        model = cls(encoder, [TaskSpec.from_dict(t) for t in config["tasks"]])
        model.heads.load_state_dict(load_file(str(path / HEADS_WEIGHTS), device=str(model.device)))
        model.eval()
        return model


def load(path: str | Path, device: str | torch.device | None = None) -> MultiTaskModel:
    """Load a model saved by `MultiTaskModel.save` (or a training run's final model)."""
    return MultiTaskModel.load(path, device=device)
