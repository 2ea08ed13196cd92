"""Starting from a trained model (`model.from`): its tasks join the run, and the protection strategy says how they train.

The strategies are written into the run's own config (task shares, what is frozen), so the
resolved `config.yaml` shows exactly what ran and a resumed run applies them again unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..fileio import read_json
from ..head_config import HeadConfig
from ..task_spec import MODEL_CONFIG, TaskSpec
from .config import RunConfig, TaskConfig
from .data import TaskData
from .freezing import FreezeConfig


@dataclass
class StartingPoint:
    """The trained model a run extends, and which of the run's tasks it already has."""

    path: Path
    old_tasks: dict[str, TaskSpec]
    """The starting model's tasks as it saved them (labels, head, fitted state, data)."""

    def new_tasks(self, config: RunConfig) -> list[str]:
        return [name for name in config.tasks if name not in self.old_tasks]


def starting_point(config: RunConfig) -> StartingPoint | None:
    """The model named by `model.from`, checked; None for a run that starts from a backbone."""
    if config.model.start_from is None:
        return None
    path = Path(config.model.start_from)
    if not (path / MODEL_CONFIG).is_file():
        what = "no such directory" if not path.exists() else f"not a saved polyhead model (no {MODEL_CONFIG}); give a run's model directory"
        raise InputError(f"{path}: {what}", field="model.from")
    saved = read_json(path / MODEL_CONFIG)
    return StartingPoint(path, {t["name"]: TaskSpec.from_dict(t) for t in saved["tasks"]})


DEFAULT_DATA = TaskConfig.__dataclass_fields__["data"].default
"""A task config's `data` when none is given."""


def add_saved_tasks(config: RunConfig) -> StartingPoint | None:
    """Old tasks the config leaves out join it, read from the data their model records, evaluated but not trained
    (share 0) unless the strategy trains them: the guard compares them before and after."""
    from .saved_data import recorded_source

    start = starting_point(config)
    if start is None:
        return None
    if Path(config.output_dir).resolve() == start.path.resolve().parent:
        raise InputError(f"output_dir is the run that made the starting model ({start.path}); choose another, so that model stays untouched",
                         field="output_dir")
    for name, spec in start.old_tasks.items():
        listed = config.tasks.get(name)
        if listed is not None:
            if listed.head == HeadConfig():
                listed.head = spec.head  # a listed old task without head settings keeps its trained head
            if listed.data == DEFAULT_DATA and spec.data is not None:
                # ... and without data, its recorded data: `tasks.topic.max_eval_examples=500` guards on a subset
                listed.data, listed.kind = recorded_source(spec, ""), listed.kind or spec.kind
        else:
            source = recorded_source(spec, "list the task in the config with its data")
            config.tasks[name] = TaskConfig(data=source, kind=spec.kind, head=spec.head, share=0.0)
    if not start.new_tasks(config) and config.protect.strategy != "plain":
        raise InputError(f"strategy {config.protect.strategy} protects the old tasks while new ones train, but every task of the "
                         f"config is one the starting model has ({', '.join(start.old_tasks)}); add a task", field="tasks")
    return start


def apply_protection(config: RunConfig, start: StartingPoint, train_sizes: dict[str, int]) -> None:
    """Write the strategy into the config: which old tasks train at which share, and what is frozen."""
    strategy = config.protect.strategy
    old = [name for name in config.tasks if name in start.old_tasks]
    if strategy == "plain":
        return
    if strategy == "rehearsal":
        sizes = {name: train_sizes[name] for name in old}
        if not all(sizes.values()):
            raise InputError(f"rehearsal needs the old tasks' training data; {[n for n, s in sizes.items() if not s]} have none",
                             field="protect.strategy")
        for name in old:
            config.tasks[name].share = config.protect.rehearsal_share * sizes[name] / sum(sizes.values())
        return
    for name in old:
        config.tasks[name].share = 0.0
    for freeze in [config.freeze] if not config.phases else [phase.freeze for phase in config.phases]:
        _freeze_old(freeze, old, encoder=strategy == "isolate")


def _freeze_old(freeze: FreezeConfig, old: list[str], encoder: bool) -> None:
    freeze.heads = sorted(set(freeze.heads) | set(old))
    if encoder:
        freeze.backbone = freeze.pooler = True


def prepare_tasks(config: RunConfig, given: dict[str, TaskData], base_dir: Path
                  ) -> tuple[StartingPoint | None, dict[str, TaskData], dict[str, TaskData]]:
    """(starting point, every task's data, the data of the tasks that train): the starting model's tasks joined,
    data not `given` read and checked, the protection strategy written into the config."""
    from .data import load_task_data

    start = add_saved_tasks(config)
    task_data = {name: given.get(name) or load_task_data(name, task, base_dir) for name, task in config.tasks.items()}
    if start is not None:
        apply_protection(config, start, {name: data.size("train") for name, data in task_data.items()})
    train_data = {name: task_data[name] for name in trained_tasks(config)}
    if not train_data:
        raise InputError("no task trains: every task has share 0", field="tasks")
    return start, task_data, train_data


def old_head_rates(config: RunConfig, start: StartingPoint | None) -> dict[str, float]:
    """The learning rate of each old head (those that train at all): a trained head gets no fresh head's rate."""
    if start is None:
        return {}
    rate = config.protect.old_head_learning_rate or config.training.learning_rate
    return {name: rate for name in config.tasks if name in start.old_tasks}


def trained_tasks(config: RunConfig) -> list[str]:
    """The tasks that get training batches (a share of 0 evaluates a task only)."""
    return [name for name, task in config.tasks.items() if task.share != 0]


def fixed_shares(config: RunConfig) -> dict[str, float]:
    return {name: task.share for name, task in config.tasks.items() if task.share}


class Extension:
    """What a run that extends a trained model adds to the loop: the guard's figures before and after, and the distiller."""

    def __init__(self, config: RunConfig, start: StartingPoint, task_data: dict[str, TaskData], train_data: dict[str, TaskData],
                 run_dir: Path, main: bool, device) -> None:
        from .guard import measure_start

        self.config, self.start, self.main, self.device = config, start, main, device
        self.old_data = {name: data for name, data in task_data.items() if name in start.old_tasks}
        self.new_data = {name: data for name, data in train_data.items() if name not in start.old_tasks}
        run_dir.mkdir(parents=True, exist_ok=True)
        batch_size = config.training.eval_batch_size
        self.before = measure_start(start.path, self.old_data, run_dir, device, batch_size) if main else None

    @classmethod
    def begin(cls, config: RunConfig, start: StartingPoint | None, task_data: dict[str, TaskData], train_data: dict[str, TaskData],
              run_dir: Path, main: bool, module) -> "Extension | None":
        """The extension of a run that has a starting point (None otherwise); gives the training module its distiller."""
        if start is None:
            return None
        extension = cls(config, start, task_data, train_data, run_dir, main, module.model.device)
        module.distiller = extension.distiller()
        return extension

    def failure_message(self, failures: list[str], run_dir: Path) -> str:
        return (f"the guard check failed, the new model is kept apart in {run_dir / 'model.rejected'} and {self.start.path} "
                "is untouched:\n  " + "\n  ".join(failures))

    def distiller(self):
        if self.config.protect.strategy != "distillation":
            return None
        from .distillation import build_distiller

        return build_distiller(self.start.path, list(self.old_data), self.new_data, self.config.protect, self.device,
                               self.config.training.eval_batch_size)

    def finish(self, final_model, run_dir: Path, test_metrics: dict[str, dict]) -> list[str]:
        """Measure the final model as the starting one was (its test metrics are the run's own); write the guard's
        report; the failures on every process."""
        from accelerate.utils import broadcast_object_list

        from .guard import finish_guard, measure

        failures: list[str] = []
        if self.main:
            after = measure(final_model, self.old_data, self.config.training.eval_batch_size, {"test": test_metrics})
            failures = finish_guard(run_dir, self.start.path, self.before, after, self.config.guard)
        return broadcast_object_list([failures])[0]
