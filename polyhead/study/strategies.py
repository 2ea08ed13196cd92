"""Named training strategies: each turns the base config into one study run's config.

Every strategy keeps the base config's tasks, data and seed. Each trains up to its budget of
epochs with early stopping on validation, so strategies that train few parameters (and are
cheap, with cached embeddings) get to converge instead of being cut off at a shared step count.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..training.config import EarlyStoppingConfig, LoraConfig, PhaseConfig, RunConfig, TaskConfig
from ..training.freezing import FreezeConfig

LAYER_DECAY = 0.8
LORA_LEARNING_RATE = 5e-4
RECIPES_DIR = Path(__file__).resolve().parents[2] / "configs" / "recipes"
"""The ready recipe configs of a source checkout (`recipe:NAME` looks here when NAME is not a file)."""


@dataclass
class Budget:
    """How long each strategy may train, and how often it is validated."""

    epochs: float = 3.0
    """Most epochs of strategies that fine-tune encoder weights."""
    probe_epochs: float = 20.0
    """Most epochs of strategies that train heads only (cheap: the frozen encoder's embeddings are cached)."""
    evals_per_epoch: float = 2.0
    """Validations per epoch of fine-tuning strategies (heads-only strategies validate once per epoch)."""
    patience: int = 2
    """Validations without improvement of the mean score (each task's own selection metric) before a run stops early."""


@dataclass
class Strategy:
    name: str
    description: str
    config: RunConfig
    evals_per_epoch: float = 1.0
    starts_from: str | None = None
    """Another strategy whose trained model (same seed) this one starts from."""
    tags: list[str] = field(default_factory=list)


Apply = Callable[[RunConfig, int, Budget], tuple[RunConfig, float]]
"""(config, number of layers, budget) -> (the strategy's config, its validations per epoch)."""


def _heads_only(config: RunConfig, budget: Budget) -> tuple[RunConfig, float]:
    config.freeze = FreezeConfig(backbone=True)
    config.training.epochs = budget.probe_epochs
    return config, 1.0


def _fine_tune(config: RunConfig, budget: Budget, freeze: FreezeConfig | None = None) -> tuple[RunConfig, float]:
    config.freeze = freeze or FreezeConfig()
    config.training.epochs = budget.epochs
    return config, budget.evals_per_epoch


def _pretrained(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    config.freeze = FreezeConfig(all=True)
    config.training.max_steps = 1
    return config, 1.0


def _frozen_encoder(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    return _heads_only(config, budget)


def _lower_half(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    return _fine_tune(config, budget, FreezeConfig(lower=layers // 2))


def _full(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    return _fine_tune(config, budget)


def _layer_decay(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    config.training.layer_decay = LAYER_DECAY
    return _fine_tune(config, budget)


def _gradual(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    """Heads only for a third of the budget, then the top half of the layers too, then everything."""
    third = budget.epochs / 3
    config.freeze = FreezeConfig()
    config.phases = [
        PhaseConfig(epochs=third, freeze=FreezeConfig(backbone=True), name="heads only"),
        PhaseConfig(epochs=third, freeze=FreezeConfig(lower=layers - layers // 2), name="top half"),
        PhaseConfig(epochs=budget.epochs - 2 * third, freeze=FreezeConfig(), name="everything"),
    ]
    return config, budget.evals_per_epoch


def _lp_ft(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    """Fine-tune everything from heads already trained on the frozen encoder, at the backbone's rate.

    Kumar et al. (ICLR 2022): fresh heads' large early gradients distort pretrained features;
    starting from converged heads avoids it.
    """
    config.training.head_learning_rate = config.training.learning_rate
    config.training.pooler_learning_rate = config.training.learning_rate
    return _fine_tune(config, budget)


def _lora(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    config.model.lora = LoraConfig()
    config.training.learning_rate = LORA_LEARNING_RATE
    return _fine_tune(config, budget)


def _kind_of(task: TaskConfig):
    """A task's kind before its data is read (a built-in dataset's kind is the dataset's)."""
    from .. import datasets
    from ..tasks import get_kind

    builtin = isinstance(task.data, str) and datasets.is_builtin(task.data)
    return get_kind(task.kind or (datasets.get(task.data).kind if builtin else None))  # type: ignore[arg-type]


def _class_weights(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    for task in config.tasks.values():
        if _kind_of(task).weighs_classes:
            task.class_weights = "balanced"
    return _fine_tune(config, budget)


def _balanced_sampling(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    for task in config.tasks.values():
        if _kind_of(task).stratify:
            task.sampling = "balanced"
    return _fine_tune(config, budget)


def _epochs_auto(config: RunConfig, layers: int, budget: Budget) -> tuple[RunConfig, float]:
    """The trainer's own `epochs: auto` rule (its validations per epoch, patience and max_epochs), not the study's budget."""
    config.freeze = FreezeConfig()
    config.training.epochs = "auto"
    config.training.early_stopping.patience = None
    return config, config.training.evals_per_epoch


OWN_BUDGET = "own_budget"
"""The tag of a strategy that trains by the trainer's own length rule, not the study's budget."""


PRESETS: dict[str, tuple[str, Apply, str | None]] = {
    "pretrained": ("nothing trained: pretrained embeddings + fresh heads, evaluated as they are", _pretrained, None),
    "frozen_encoder": ("encoder frozen, heads trained to convergence on cached embeddings", _frozen_encoder, None),
    "lower_half_frozen": ("embeddings and the lower half of the layers frozen", _lower_half, None),
    "full": ("full fine-tuning (the default settings: backbone 5e-5, heads 1e-2)", _full, None),
    "full_layer_decay": (f"full fine-tuning, layer-wise learning-rate decay {LAYER_DECAY}", _layer_decay, None),
    "gradual_unfreezing": ("heads only, then the top half, then everything (thirds of the budget)", _gradual, None),
    "lp_ft": ("LP-FT: heads trained on the frozen encoder first (frozen_encoder's model), then everything at 5e-5", _lp_ft, "frozen_encoder"),
    "lora": (f"encoder frozen, LoRA adapters (rank 8) in every linear layer of the blocks at {LORA_LEARNING_RATE:g}", _lora, None),
    "class_weights": ("full fine-tuning, class_weights: balanced on every task with classes", _class_weights, None),
    "balanced_sampling": ("full fine-tuning, sampling: balanced on every task with one class per text", _balanced_sampling, None),
    "epochs_auto": ("full fine-tuning, epochs: auto: the trainer's own rule (training.evals_per_epoch validations per epoch, "
                    "its patience, at most training.max_epochs), not the study's budget", _epochs_auto, None),
}
DEFAULT_STRATEGIES = (
    "frozen_encoder", "lower_half_frozen", "full", "full_layer_decay", "gradual_unfreezing", "lp_ft", "lora", "single_task",
    "recipe:a_cls_pooler_lower_half", "recipe:b_mean_all_trained", "recipe:c_gradual_layer_decay", "recipe:d_frozen_heads_in_turn",
)
RECIPE_KEEPS = ("learning_rate", "head_learning_rate", "pooler_learning_rate", "layer_decay", "weight_decay", "warmup_ratio",
                "max_grad_norm", "loss_weighting", "mixing", "mixing_temperature", "batch_size")
"""The recipe's own training settings; the study sets seed, budget, validation and early stopping."""


def find_recipe(name: str) -> Path:
    path = Path(name)
    for candidate in (path, RECIPES_DIR / name, RECIPES_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise InputError(f"no recipe {name!r}: give a config file or one of {', '.join(sorted(p.stem for p in RECIPES_DIR.glob('*.yaml')))}",
                     field="--strategies")


def apply_recipe(base: RunConfig, name: str, budget: Budget) -> tuple[RunConfig, float, str]:
    """The recipe's model settings, heads, freezing, phases and learning rates on the base config's tasks."""
    from ..training.config import load_config

    path = find_recipe(name)
    recipe = load_config(path)
    config = copy.deepcopy(base)
    config.model.pooling, config.model.normalize = recipe.model.pooling, recipe.model.normalize
    fallback = next(iter(recipe.tasks.values())).head
    for task_name, task in config.tasks.items():
        task.head = copy.deepcopy(recipe.tasks[task_name].head if task_name in recipe.tasks else fallback)
    for key in RECIPE_KEEPS:
        setattr(config.training, key, getattr(recipe.training, key))
    config.freeze, config.phases = copy.deepcopy(recipe.freeze), copy.deepcopy(recipe.phases)
    heads_only = not config.phases and (config.freeze.backbone or config.freeze.all)
    config.training.epochs = budget.probe_epochs if heads_only else budget.epochs
    description = _first_comment(path)
    return config, 1.0 if heads_only else budget.evals_per_epoch, description


def _first_comment(path: Path) -> str:
    lines = [line.lstrip("# ").strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    return lines[0] if lines else path.stem


def build_strategies(base: RunConfig, names: list[str], num_layers: int, budget: Budget) -> list[Strategy]:
    """Expand names (`single_task` becomes one run per task) into configs."""
    strategies = []
    for name in names:
        config = copy.deepcopy(base)
        config.phases = []
        config.training.max_steps = None
        config.training.early_stopping = EarlyStoppingConfig(metric="score", patience=budget.patience)
        if name == "single_task" or name.startswith("single_task:"):
            tasks = [name.split(":", 1)[1]] if ":" in name else list(base.tasks)
            for task in tasks:
                if task not in base.tasks:
                    raise InputError(f"no task {task!r}; tasks are {', '.join(base.tasks)}", field="--strategies")
                single, evals = _full(copy.deepcopy(config), num_layers, budget)
                single.tasks = {task: single.tasks[task]}
                strategies.append(Strategy(f"single_task:{task}", f"full fine-tuning on {task} alone", single, evals, tags=["single_task"]))
            continue
        if name.startswith("recipe:"):
            recipe, evals, description = apply_recipe(config, name.split(":", 1)[1], budget)
            strategies.append(Strategy(name, description, recipe, evals, tags=["recipe"]))
            continue
        if name.startswith("protect:") or name == JOINT_FROM_SCRATCH:
            strategies.append(_extending(config, name, budget))
            continue
        if name not in PRESETS:
            choices = [*PRESETS, "single_task", "single_task:TASK", "recipe:NAME", "protect:STRATEGY", JOINT_FROM_SCRATCH]
            raise InputError(f"unknown strategy {name!r}; choose from {', '.join(choices)}", field="--strategies")
        description, apply, starts_from = PRESETS[name]
        if name == "pretrained" and base.model.start_from is not None:
            description = "the starting model as it is (old tasks before; the new task's head untrained)"
        config, evals = apply(config, num_layers, budget)
        strategies.append(Strategy(name, description, config, evals, starts_from, tags=[OWN_BUDGET] if apply is _epochs_auto else []))
    return strategies


JOINT_FROM_SCRATCH = "joint_from_scratch"
PROTECTION_NOTES = {
    "plain": "the new task alone, everything trainable: no protection",
    "isolate": "encoder and old heads frozen, only the new head trains (cached embeddings)",
    "rehearsal": "old tasks' training data mixed back in (protect.rehearsal_share of the batches)",
    "distillation": "the starting model's outputs on the new texts kept as soft targets (old heads and embeddings)",
    "adapter": "encoder frozen; the new task gets its own LoRA adapter and head, old tasks keep the unchanged encoder",
}


def _extending(config: RunConfig, name: str, budget: Budget) -> Strategy:
    """`protect:NAME` extends the base config's starting model (`model.from`) under that strategy;
    `joint_from_scratch` trains its old and new tasks together from the backbone, the reference for the new task."""
    from ..training.extend_config import PROTECTIONS

    if config.model.start_from is None:
        raise InputError(f"{name} extends a trained model: give a config with model.from", field="--strategies")
    # The study reports every run's drops side by side; a tolerance would stop the study at the first run over it.
    config.guard.max_drop = config.guard.lee_max_drop = None
    if name == JOINT_FROM_SCRATCH:
        config.model.start_from = None
        for task in config.tasks.values():
            task.share = None
        config, evals = _fine_tune(config, budget)
        return Strategy(name, "every task, old and new, trained jointly from the pretrained backbone", config, evals, tags=["reference"])
    protection = name.split(":", 1)[1]
    if protection not in PROTECTIONS:
        raise InputError(f"unknown protection {protection!r}; choose one of {', '.join(PROTECTIONS)}", field="--strategies")
    config.protect.strategy = protection
    if protection == "adapter":
        config.training.learning_rate = LORA_LEARNING_RATE
    config, evals = _heads_only(config, budget) if protection == "isolate" else _fine_tune(config, budget)
    return Strategy(name, PROTECTION_NOTES[protection], config, evals, tags=["protect"])
