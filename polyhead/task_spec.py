"""TaskSpec: a task as a saved model knows it, as plain data (no torch needed to read or check it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .head_config import HeadConfig
from .tasks import TaskKind, get_kind

MODEL_CONFIG = "polyhead_model.json"
"""A saved MultiTaskModel's description (tasks, labels, heads, adapters): readable without torch."""


@dataclass
class TaskSpec:
    """A task as the model knows it: its kind, its output names in head order, its head and fitted state."""

    name: str
    labels: list[str]
    """Output names in head order: class names, target names (regression) or label names (multi-label)."""
    head: HeadConfig = field(default_factory=HeadConfig)
    data: str | dict | None = None
    """Where the task's data came from (a built-in name or files), so `evaluate` can find it."""
    kind: str = "classification"
    """The registered task kind (polyhead.tasks): how outputs are read, scored and answered."""
    state: dict = field(default_factory=dict)
    """What the kind fitted on the data: target scaling (regression), tuned thresholds (multi-label)."""
    adapter: str | None = None
    """The LoRA adapter this task's texts go through (polyhead.task_adapters); None: the shared encoder as it is."""

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "labels": list(self.labels), "head": self.head.to_dict(), "data": self.data,
                "state": dict(self.state), "adapter": self.adapter}

    @classmethod
    def from_dict(cls, data: dict) -> "TaskSpec":
        return cls(name=data["name"], labels=list(data["labels"]), head=HeadConfig(**data.get("head", {})), data=data.get("data"),
                   kind=data.get("kind") or "classification", state=dict(data.get("state") or {}),
                   adapter=data.get("adapter"))

    @property
    def task_kind(self) -> TaskKind:
        return get_kind(self.kind)
