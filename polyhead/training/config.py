"""Run configuration: dataclasses with a docstring per field, loaded from YAML.

A config file is a mapping with `model`, `tasks` (task name -> task), `training` and
`output_dir`. Command-line overrides are `dotted.key=value` pairs whose value is parsed
as YAML (`training.max_steps=200`, `tasks.topic.weight=2`, `model.pooling=cls`).
Unknown keys and wrong types are errors that name the file, line and field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..devices import DEVICE_NAME
from ..errors import InputError
from ..head_config import HeadConfig
from ..truncation import TRUNCATION_SIDES
from .data_sources import HF_IN_MEMORY, DataFiles, HFDataset
from .extend_config import GuardConfig, ProtectConfig
from .freezing import FreezeConfig
from .precision import PRECISIONS
from .yaml_dataclasses import apply_override, build_dataclass, compose_with_lines


@dataclass
class LoraConfig:
    """Low-rank adapters (LoRA, Hu et al. 2021) in every linear layer of the transformer blocks."""

    rank: int = 8
    """Rank r of each adapter's update B @ A."""
    alpha: float = 16.0
    """Scale: the update is multiplied by alpha / rank."""
    dropout: float = 0.1
    """Dropout on the adapter's input."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise InputError("must be >= 1", field="model.lora.rank")
        if not 0 <= self.dropout < 1:
            raise InputError("must be in [0, 1)", field="model.lora.dropout")


@dataclass
class ModelConfig:
    """The shared encoder."""

    name: str | None = None
    """Backbone: a model directory or hub name; None is the built-in all-MiniLM-L6-v2."""
    pooling: str | None = None
    """mean, cls, max or cls_pooler; None keeps the model's own (mean for plain backbones)."""
    normalize: bool | None = None
    """L2-normalize embeddings before the heads; None keeps the model's own setting."""
    max_seq_length: int | None = 128
    """Texts are truncated to this many tokens; the run start reports, per task and split, how many are cut."""
    truncation: str = "head"
    """What a longer text keeps: head (its start), tail (its end) or head+tail (a quarter from the start, the rest from the end)."""
    lora: LoraConfig | None = None
    """Train low-rank adapters inside the transformer blocks instead of the backbone's weights (saved merged)."""
    start_from: str | None = field(default=None, metadata={"key": "from"})
    """`from:` a saved polyhead model to start from: its encoder, its heads and their label sets (see `protect`, `guard`)."""


@dataclass
class TaskConfig:
    """One task: its data, its head and its share of the loss."""

    data: str | DataFiles | HFDataset = "rotten_tomatoes:sentiment"
    """A built-in dataset name (jeopardy, jeopardy:value, rotten_tomatoes:sentiment, rotten_tomatoes:subjectivity), files, or a Hugging Face dataset ({hf: ...})."""
    kind: str | None = None
    """classification, regression, multilabel or contrastive (polyhead.tasks); None: the built-in dataset's kind, else classification."""
    head: HeadConfig = field(default_factory=HeadConfig)
    """The head on the sentence embedding; its output size comes from the kind (classes, targets or labels)."""
    weight: float = 1.0
    """Static loss weight, used when training.loss_weighting is `static` (`equal` gives every task 1)."""
    max_train_examples: int | None = None
    """Use only the first N training examples (a fixed, seeded subset)."""
    max_eval_examples: int | None = None
    """Use only the first N validation and test examples."""
    share: float | None = None
    """A fixed share of the training batches for this task; 0 evaluates it without training it. None: tasks share
    what fixed shares leave by `training.mixing`."""
    loss: str | None = None
    """The kind's loss where it offers a choice (regression: `mse`, the default, or `huber`); None: the kind's default."""
    extend_labels: bool = False
    """Starting from a saved model whose head for this task knows fewer labels: keep its rows for the labels it
    knows and add rows for the new ones (off: a changed label set is an error)."""
    class_weights: str | dict[str, float] | None = None
    """`balanced`: each class weighs n / (classes x its count), as scikit-learn's `compute_class_weight`, so small classes
    count as much as large ones (multi-label: per label, its positives and negatives each weigh half); or label -> weight
    (multi-label: the weight of that label's positives); unlisted labels weigh 1. None: every example counts the same."""
    sampling: str = "natural"
    """natural (each example once per epoch) or balanced (every class drawn equally often within the task's batches:
    small classes repeated, large ones subsampled; for kinds with one class per text)."""

    def __post_init__(self) -> None:
        from ..tasks import KIND_NAMES, check_loss, get_kind

        check_class_weights(self.class_weights, "class_weights")
        if self.sampling not in SAMPLINGS:
            raise InputError(f"must be one of {', '.join(SAMPLINGS)}", field="sampling")

        if self.kind is not None and self.kind not in KIND_NAMES:
            raise InputError(f"unknown task kind {self.kind!r}; choose one of {', '.join(KIND_NAMES)}", field="kind")
        if self.kind is not None and self.loss is not None:
            check_loss(get_kind(self.kind), self.loss, "loss")


SAMPLINGS = ("natural", "balanced")


def check_class_weights(value: str | dict[str, float] | None, field: str) -> None:
    """`balanced` or a mapping of labels to positive numbers."""
    if isinstance(value, str) and value != "balanced":
        raise InputError(f"must be `balanced` or a mapping of label -> weight, got {value!r}", field=field)
    for label, weight in (value or {}).items() if isinstance(value, dict) else ():
        if not weight > 0:
            raise InputError(f"weight of {label!r} must be > 0, got {weight!r}", field=f"{field}.{label}")


@dataclass
class EarlyStoppingConfig:
    """Stop when the validation metric has not improved for `patience` evaluations."""

    metric: str = "score"
    """Metric averaged over tasks, or one task's (`topic/accuracy`). `score` is each task's own selection metric
    (macro-F1 for classification, Spearman for regression, micro-F1 for multilabel); `macro_f1` etc. need every task to have it."""
    patience: int | None = None
    """Evaluations without improvement before stopping; None: 4 under `epochs: auto` (one epoch at 4 validations per
    epoch), else never stops early (the best model is still kept)."""
    min_delta: float = 0.0
    """Improvement smaller than this does not count."""


@dataclass
class TrainingConfig:
    """The optimisation loop."""

    seed: int = 42
    """Seeds weights of new heads, dropout, data order and task mixing."""
    batch_size: int = 32
    """Global examples per batch (split across processes); each batch holds one task."""
    eval_batch_size: int = 64
    """Texts per forward pass during evaluation."""
    max_steps: int | None = None
    """Optimizer steps; None derives them from `epochs`."""
    epochs: float | str = "auto"
    """Passes over the training data of all tasks (when max_steps is None), or `auto`: validate `evals_per_epoch` times
    per epoch, keep the best model, and stop once `early_stopping.metric` has not improved for `early_stopping.patience`
    validations (4 when unset), after `max_epochs` at most."""
    max_epochs: float = 10.0
    """Most epochs of `epochs: auto`, so a run always ends (the learning rate decays over this many)."""
    evals_per_epoch: float = 4.0
    """Validations per epoch under `epochs: auto` when `eval_every` is unset."""
    learning_rate: float = 5e-5
    """Peak learning rate of the backbone's top layer (AdamW)."""
    head_learning_rate: float = 1e-2
    """Peak learning rate of the task heads (and learned loss weights): fresh layers learn faster."""
    pooler_learning_rate: float | None = None
    """Peak learning rate of the cls_pooler dense layer; None uses head_learning_rate."""
    layer_decay: float = 1.0
    """Layer-wise decay: layer l of L gets learning_rate * layer_decay^(L - l), embeddings the lowest."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    warmup_ratio: float = 0.06
    """Share of steps with linear warm-up before linear decay to 0."""
    grad_accum_steps: int = 1
    """Batches whose gradients are summed before one optimizer step."""
    max_grad_norm: float | None = 1.0
    """Gradient clipping by global norm; None turns it off."""
    mixed_precision: str = "auto"
    """auto (bf16 autocast where the CPU has AVX-512 BF16/AMX or the GPU has bf16, else fp32), no, bf16 or fp16 (GPU)."""
    device: str | None = None
    """cpu, cuda or cuda:N; None trains on a GPU when one is available, else on the CPU. Several processes
    (`accelerate launch`, torchrun) take one GPU each, so with them only cpu or cuda (no index) applies."""
    group_by_length: bool = True
    """Batch texts of similar length together (within each task), so batches carry little padding."""
    length_pool_batches: int = 50
    """Batches per length-sorted pool when group_by_length is on (larger pads less, smaller is more random)."""
    pad_to_multiple: int | None = None
    """Pad each training batch's width up to a multiple of this (a length bucket, capped at max_seq_length). None: 16 on a
    GPU (and under `compile`), where few distinct shapes let kernels, attention plans and compiled graphs be reused; 1 (off)
    on a CPU, where every padded token costs real arithmetic and there is no per-shape cost to save."""
    compile: bool = False
    """torch.compile the trainable part's forward (one graph per length bucket; CUDA graphs on a GPU). Off by default:
    compiling takes tens of seconds, which a short run does not earn back; a failed compile falls back to eager mode."""
    cache_frozen: bool = True
    """Compute frozen lower parts (the whole encoder, or embeddings + lower layers) once per example and reuse them."""
    cache_memory_mb: int = 1024
    """Memory for cached frozen outputs; a task whose cache does not fit goes to a memory-mapped file in the run directory."""
    eval_every: int | None = None
    """Evaluate on each task's validation split every N steps (and at the end); None: `evals_per_epoch` times per epoch
    under `epochs: auto`, else every 200 steps."""
    log_every: int = 20
    """Write a training line to metrics.jsonl every N steps."""
    checkpoint_every: int | None = None
    """Write a resumable checkpoint every N steps; None means at every evaluation."""
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    """Which validation metric picks the best checkpoint, and when to stop."""
    mixing: str = "proportional"
    """Which task the next batch comes from: proportional, temperature, round_robin, uniform."""
    mixing_temperature: float = 2.0
    """T of `temperature` mixing: task probability proportional to size^(1/T)."""
    loss_weighting: str = "equal"
    """equal, static (each task's `weight`) or uncertainty (learned, Kendall et al. 2018)."""
    backbone_dropout: float | None = None
    """Override every dropout probability inside the backbone (0 makes training deterministic across process counts)."""
    progress: bool = True
    """Show progress bars."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers that get metrics.jsonl's scalars and the config: any of tensorboard, mlflow, wandb."""


@dataclass
class PhaseConfig:
    """One phase of a schedule: its own freezing for a number of steps."""

    steps: int | None = None
    """Optimizer steps in this phase (give steps or epochs)."""
    epochs: float | None = None
    """Passes over all tasks' training data in this phase, instead of steps."""
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    """What is frozen during this phase."""
    name: str | None = None
    """A label for logs and reports."""


@dataclass
class RunConfig:
    """Everything a training run needs; written resolved into the run directory."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The shared encoder."""
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    """Task name -> task."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """The optimisation loop."""
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    """What is frozen for the whole run (when `phases` is empty)."""
    phases: list[PhaseConfig] = field(default_factory=list)
    """A schedule of phases (e.g. gradual unfreezing); their steps add up to the run's length."""
    output_dir: str = "runs/polyhead"
    """Run directory: config, metrics, checkpoints, final model, report."""
    protect: ProtectConfig = field(default_factory=ProtectConfig)
    """Starting from a trained model (`model.from`): how the tasks it has are kept while new tasks train."""
    guard: GuardConfig = field(default_factory=GuardConfig)
    """Starting from a trained model: its tasks' metrics before and after, and the tolerated drop."""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise InputError("at least one task is needed", field="tasks")
        t = self.training
        checks = [
            (self.model.truncation in TRUNCATION_SIDES, "model.truncation", f"must be one of {', '.join(TRUNCATION_SIDES)}"),
            (self.model.max_seq_length is None or self.model.max_seq_length >= 2, "model.max_seq_length", "must be >= 2"),
            (t.batch_size >= 1, "training.batch_size", "must be >= 1"),
            (t.grad_accum_steps >= 1, "training.grad_accum_steps", "must be >= 1"),
            (t.max_steps is None or t.max_steps >= 1, "training.max_steps", "must be >= 1"),
            (t.epochs == "auto" if isinstance(t.epochs, str) else t.epochs > 0, "training.epochs", "must be > 0 or auto"),
            (t.max_epochs > 0, "training.max_epochs", "must be > 0"),
            (t.evals_per_epoch > 0, "training.evals_per_epoch", "must be > 0"),
            (t.learning_rate > 0, "training.learning_rate", "must be > 0"),
            (0 <= t.warmup_ratio < 1, "training.warmup_ratio", "must be in [0, 1)"),
            ((t.eval_every is None or t.eval_every >= 1) and t.log_every >= 1, "training.eval_every",
             "eval_every and log_every must be >= 1"),
            (t.checkpoint_every is None or t.checkpoint_every >= 1, "training.checkpoint_every", "must be >= 1 (or unset: every eval_every steps)"),
            (t.mixed_precision in PRECISIONS, "training.mixed_precision", f"must be one of {', '.join(PRECISIONS)}"),
            (t.length_pool_batches >= 1, "training.length_pool_batches", "must be >= 1"),
            (t.device is None or DEVICE_NAME.match(str(t.device).strip().lower()) is not None,
             "training.device", "must be cpu, cuda or cuda:N (or unset: a GPU when there is one)"),
            (t.pad_to_multiple is None or t.pad_to_multiple >= 1, "training.pad_to_multiple", "must be >= 1 (or unset: 16 on a GPU, 1 on a CPU)"),
            (t.cache_memory_mb >= 0, "training.cache_memory_mb", "must be >= 0"),
            (t.mixing in MIXING_STRATEGIES, "training.mixing", f"must be one of {', '.join(MIXING_STRATEGIES)}"),
            (t.loss_weighting in LOSS_WEIGHTINGS, "training.loss_weighting", f"must be one of {', '.join(LOSS_WEIGHTINGS)}"),
            (t.mixing_temperature > 0, "training.mixing_temperature", "must be > 0"),
            (t.layer_decay > 0, "training.layer_decay", "must be > 0"),
            (t.head_learning_rate > 0, "training.head_learning_rate", "must be > 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise InputError(message, field=name)
        from .trackers import check_trackers  # light: finds packages without importing them

        check_trackers(self.training.report_to)
        for index, phase in enumerate(self.phases):
            if (phase.steps is None) == (phase.epochs is None):
                raise InputError("give a phase either steps or epochs", field=f"phases.{index}")
            if phase.steps is not None and phase.steps < 1:
                raise InputError("must be >= 1", field=f"phases.{index}.steps")
            if phase.epochs is not None and phase.epochs <= 0:
                raise InputError("must be > 0", field=f"phases.{index}.epochs")
        if self.phases and not self.freeze.is_empty():
            raise InputError("give freezing per phase when phases are used", field="freeze")
        for name, task in self.tasks.items():
            if task.weight < 0:
                raise InputError("must be >= 0", field=f"tasks.{name}.weight")
            if task.share is not None and not 0 <= task.share < 1:
                raise InputError("must be in [0, 1)", field=f"tasks.{name}.share")
        if sum(task.share or 0 for task in self.tasks.values()) >= 1:
            raise InputError("the tasks' fixed shares add up to 1 or more; leave room for the others", field="tasks")
        if self.model.start_from is not None and self.model.name is not None:
            raise InputError("give model.from (a trained polyhead model to extend) or model.name (a backbone), not both",
                             field="model.from")
        if self.model.start_from is None and self.protect.strategy != "plain":
            raise InputError(f"strategy {self.protect.strategy} protects the tasks of a trained model: set model.from",
                             field="protect.strategy")

    def to_dict(self) -> dict:
        """Plain data for YAML and trackers; a dataset object given in Python becomes HF_IN_MEMORY."""
        data = dataclasses.asdict(self)
        data["model"]["from"] = data["model"].pop("start_from")
        for task in data["tasks"].values():
            if isinstance(task["data"], dict) and "hf" in task["data"] and not isinstance(task["data"]["hf"], str):
                task["data"]["hf"] = HF_IN_MEMORY
        return data


MIXING_STRATEGIES = ("proportional", "temperature", "round_robin", "uniform")
LOSS_WEIGHTINGS = ("equal", "static", "uncertainty")


def config_from_dict(data: dict, overrides: list[str] = (), file: Path | None = None) -> RunConfig:
    data = data if isinstance(data, dict) else {}
    for override in overrides:
        apply_override(data, override)
    try:
        return build_dataclass(RunConfig, data, "", file, None)
    except InputError as error:
        if error.file and error.file.startswith("command line: "):
            raise InputError(error.reason, file=error.file) from None  # the override says which field
        raise


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML run config, apply `key=value` overrides, validate every field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", file=path)
    data = compose_with_lines(path.read_text(encoding="utf-8"), path)
    if not isinstance(data, dict):
        raise InputError("a config must be a mapping", file=path, line=1)
    in_file = {"output_dir": isinstance(data.get("output_dir"), str),
               "model.from": isinstance(data.get("model"), dict) and isinstance(data["model"].get("from"), str)}
    config = config_from_dict(data, list(overrides), path)
    overridden = {o.split("=", 1)[0].strip() for o in overrides}
    if in_file["output_dir"] and "output_dir" not in overridden:
        config.output_dir = resolve_from_config(path, config.output_dir)
    if in_file["model.from"] and "model.from" not in overridden and config.model.start_from is not None:
        config.model.start_from = resolve_from_config(path, config.model.start_from)
    return config


def resolve_from_config(config_path: Path, value: str) -> str:
    """One rule for paths: a relative path written in a config file is relative to that file's folder.

    Paths given on the command line (`--output-dir`, `key=value` overrides) stay relative to the
    current directory, as every shell path is.
    """
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (config_path.parent / path).resolve())


def save_config(config: RunConfig, path: str | Path) -> None:
    from ..fileio import atomic_file

    with atomic_file(path) as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
