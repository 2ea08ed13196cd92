"""Named training strategies: each turns the base config into one study run's config.

Every strategy keeps the base config's tasks, data, seed and step budget; only what is
frozen, how fast each part learns and which tasks train differ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from ..errors import InputError
from ..training.config import PhaseConfig, RunConfig
from ..training.freezing import FreezeConfig

DEFAULT_STRATEGIES = (
    "pretrained",
    "frozen_backbone",
    "lower_half_frozen",
    "full",
    "full_layer_decay",
    "gradual_unfreezing",
    "single_task",
)
LAYER_DECAY = 0.8


@dataclass
class Strategy:
    name: str
    description: str
    config: RunConfig


def _pretrained(config: RunConfig, layers: int) -> RunConfig:
    config.freeze = FreezeConfig(all=True)
    return config


def _frozen_backbone(config: RunConfig, layers: int) -> RunConfig:
    config.freeze = FreezeConfig(backbone=True)
    return config


def _lower_half(config: RunConfig, layers: int) -> RunConfig:
    config.freeze = FreezeConfig(embeddings=True, lower=layers // 2)
    return config


def _full(config: RunConfig, layers: int) -> RunConfig:
    config.freeze = FreezeConfig()
    return config


def _layer_decay(config: RunConfig, layers: int) -> RunConfig:
    config.freeze = FreezeConfig()
    config.training.layer_decay = LAYER_DECAY
    return config


def _gradual(config: RunConfig, layers: int) -> RunConfig:
    """Heads only for a third of the budget, then the top half of the layers too, then everything."""
    steps = config.training.max_steps or 0
    first, second = steps // 3, steps // 3
    config.freeze = FreezeConfig()
    config.phases = [
        PhaseConfig(steps=first, freeze=FreezeConfig(backbone=True), name="heads only"),
        PhaseConfig(steps=second, freeze=FreezeConfig(embeddings=True, lower=layers - layers // 2), name="top half"),
        PhaseConfig(steps=steps - first - second, freeze=FreezeConfig(), name="everything"),
    ]
    return config


PRESETS: dict[str, tuple[str, Callable[[RunConfig, int], RunConfig]]] = {
    "pretrained": ("nothing trained: pretrained embeddings + fresh heads, evaluated as they are", _pretrained),
    "frozen_backbone": ("backbone frozen, heads (and pooler) trained", _frozen_backbone),
    "lower_half_frozen": ("embeddings and the lower half of the layers frozen", _lower_half),
    "full": ("full fine-tuning", _full),
    "full_layer_decay": (f"full fine-tuning, layer-wise lr decay {LAYER_DECAY}", _layer_decay),
    "gradual_unfreezing": ("heads only, then the top half, then everything (thirds of the budget)", _gradual),
}


def build_strategies(base: RunConfig, names: list[str], num_layers: int) -> list[Strategy]:
    """Expand names (`single_task` becomes one run per task) into configs with the same budget."""
    if base.training.max_steps is None:
        raise InputError("a study needs a fixed budget: set training.max_steps", field="training.max_steps")
    strategies = []
    for name in names:
        if name == "single_task" or name.startswith("single_task:"):
            tasks = [name.split(":", 1)[1]] if ":" in name else list(base.tasks)
            for task in tasks:
                if task not in base.tasks:
                    raise InputError(f"no task {task!r}; tasks are {', '.join(base.tasks)}", field="--strategies")
                config = _full(copy.deepcopy(base), num_layers)
                config.tasks = {task: config.tasks[task]}
                strategies.append(Strategy(f"single_task:{task}", f"full fine-tuning on {task} alone, same budget", config))
            continue
        if name not in PRESETS:
            raise InputError(f"unknown strategy {name!r}; choose from {', '.join([*PRESETS, 'single_task', 'single_task:TASK'])}", field="--strategies")
        description, apply = PRESETS[name]
        config = copy.deepcopy(base)
        config.phases = []
        strategies.append(Strategy(name, description, apply(config, num_layers)))
    return strategies
