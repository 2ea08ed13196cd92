"""Run every strategy with every seed, resumably; add forgetting and a logistic-regression baseline.

Each finished run is appended to results.json at once, so a killed study continues with the
runs it has not finished (an interrupted run resumes from its last checkpoint).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..encoder import SentenceEncoder, TruncationWarning
from ..errors import InputError
from ..fileio import read_json, write_json
from ..metrics import classification_metrics
from ..similarity import evaluate_similarity
from ..training.config import RunConfig
from ..training.data import load_task_data
from ..training.parts import find_layer_list
from .strategies import Budget, Strategy, build_strategies

RESULTS = "results.json"
RESULTS_VERSION = 2
BASELINE = "logistic_regression"


@dataclass
class StudyRun:
    """One (strategy, seed) run's outcome."""

    strategy: str
    description: str
    seed: int | None
    """None for deterministic rows (the logistic-regression baseline)."""
    tasks: dict[str, dict] = field(default_factory=dict)
    """Per task: test accuracy, macro_f1, majority_rate."""
    wall_s: float = 0.0
    """Training time including validation (and the starting model's, for runs that start from another)."""
    cpu_s: float | None = None
    """CPU seconds of training and validation (all threads), summed over resumptions; None in results of older versions."""
    trainable_parameters: int = 0
    examples_seen: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    best_step: int | None = None
    best_epoch: float | None = None
    epochs_trained: float | None = None
    """Epochs the run trained before it stopped (early, or at its budget); None in results of older versions."""
    best_validation: float | None = None
    """Mean validation macro-F1 at the best step (the model that was tested)."""
    stop_reason: str = ""
    lee_spearman_after: float | None = None
    """The trained encoder's Spearman rho on lee (forgetting = before - after)."""


def _summary(metrics: dict[str, dict]) -> dict[str, dict]:
    """Per task: its kind, score and summary-table metrics (accuracy, macro_f1 and majority_rate for classification)."""
    from ..tasks import get_kind

    kept = {}
    for task, m in metrics.items():
        keys = ("kind", "score", *(key for key, _ in get_kind(m.get("kind")).table_metrics))
        kept[task] = {k: m[k] for k in keys if k in m and k != "support"}
    return kept


def logistic_regression_baseline(base: RunConfig, encoder: SentenceEncoder, base_dir: Path) -> StudyRun:
    """scikit-learn logistic regression on the frozen pretrained embeddings, per task (deterministic)."""
    from sklearn.linear_model import LogisticRegression

    row = StudyRun(BASELINE, "scikit-learn LogisticRegression (C=10) on frozen pretrained embeddings", None)
    start, cpu = time.perf_counter(), time.process_time()
    for name, task in base.tasks.items():
        data = load_task_data(name, task, base_dir)
        if not data.task_kind.stratify:  # one class per text: the baseline is a classifier
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            train_x = encoder.encode(data.texts["train"], batch_size=64)
            test_x = encoder.encode(data.texts["test"], batch_size=64)
        classifier = LogisticRegression(max_iter=2000, C=10.0)
        classifier.fit(train_x, data.targets["train"])
        predicted = classifier.predict(test_x)
        metrics = classification_metrics(np.asarray(data.targets["test"]), predicted, data.label_names)
        row.tasks[name] = _summary({name: {"kind": data.kind, "score": metrics["macro_f1"], **metrics}})[name]
        row.trainable_parameters += int(classifier.coef_.size + classifier.intercept_.size)
        row.examples_seen[name] = len(data.texts["train"])
    row.wall_s, row.cpu_s = time.perf_counter() - start, time.process_time() - cpu
    return row


def _steps_per_epoch(config: RunConfig, sizes: dict[str, int]) -> float:
    """As the trainer counts them: the tasks that train, fixed shares (rehearsal) on top."""
    from ..training.extending import apply_protection, fixed_shares, starting_point, trained_tasks
    from ..training.sampler import steps_per_epoch

    start = starting_point(config)
    if start is not None:
        apply_protection(config, start, sizes)
    t = config.training
    return steps_per_epoch({name: sizes[name] for name in trained_tasks(config)}, t.batch_size * t.grad_accum_steps,
                           fixed_shares(config))


def _best_validation(run_dir: Path, best_step: int | None) -> float | None:
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("type") == "eval" and event.get("step") == best_step:
            return event.get("score")
    return None


def run_dir_of(study_dir: Path, strategy: str, seed: int) -> Path:
    return study_dir / "runs" / strategy.replace(":", "_") / f"seed-{seed}"


class StudyInterrupted(RuntimeError):
    """A signal stopped the study during a run; that run's checkpoint is kept and re-running the study resumes it."""


def _train_resumably(config: RunConfig, base_dir: Path):
    """Resume the run from its checkpoint when an earlier study was killed during it.

    A signal (Ctrl-C, SIGTERM) stops the whole study at once, whether the run was fresh or
    resumed, and keeps the checkpoint the trainer just wrote; only a checkpoint that cannot be
    resumed for another reason costs the run a fresh start.
    """
    from ..training import train
    from ..training.loop import TrainingInterrupted

    run_dir = Path(config.output_dir)
    try:
        if (run_dir / "checkpoints").exists():
            try:
                return train(config, resume=True, base_dir=base_dir), True
            except TrainingInterrupted:
                raise
            except Exception as error:  # noqa: BLE001 - a checkpoint that cannot be resumed costs one run, not the study
                print(f"cannot resume {run_dir} ({type(error).__name__}: {error}); starting it again", flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        return train(config, base_dir=base_dir), False
    except TrainingInterrupted as stopped:
        raise StudyInterrupted(f"{stopped.what} of {run_dir}, which is kept; run the same `polyhead study` command "
                               "again to continue the study from there") from None


def train_one(strategy: Strategy, seed: int, study_dir: Path, base_dir: Path, sizes: dict[str, int],
              started: dict[str, dict], origin_strategy: Strategy | None = None) -> StudyRun:
    """Train one strategy with one seed; `started` holds finished rows of the strategy it starts from."""
    from ..model import load

    config = copy.deepcopy(strategy.config)
    config.training.seed = seed
    per_epoch = _steps_per_epoch(config, sizes)
    config.training.eval_every = max(1, math.ceil(per_epoch / strategy.evals_per_epoch))
    config.output_dir = str(run_dir_of(study_dir, strategy.name, seed))
    extra_wall, extra_cpu, extra_examples = 0.0, 0.0, {}
    if strategy.starts_from:
        origin = started[strategy.starts_from]
        config.model.name = str(run_dir_of(study_dir, strategy.starts_from, seed) / "model")
        extra_wall, extra_cpu, extra_examples = origin["wall_s"], origin.get("cpu_s") or 0.0, origin["examples_seen"]
        if not Path(config.model.name).is_dir():  # results kept, run directories lost (another machine): train it again
            print(f"{config.model.name} is missing: training {strategy.starts_from} (seed {seed}) again to start from it", flush=True)
            train_one(origin_strategy, seed, study_dir, base_dir, sizes, started)
    result, _ = _train_resumably(config, base_dir)
    summary = read_json(result.run_dir / "test_metrics.json")
    model = load(result.model_dir)
    seen = {t: summary.get("examples_seen", {}).get(t, 0) + extra_examples.get(t, 0) for t in config.tasks}
    row = StudyRun(
        strategy=strategy.name, description=strategy.description, seed=seed, tasks=_summary(result.test_metrics),
        wall_s=result.elapsed_s + extra_wall, cpu_s=result.cpu_s + extra_cpu,
        trainable_parameters=int(summary.get("trainable_parameters", 0)), examples_seen=seen, steps=result.steps,
        best_step=result.best_step, best_epoch=None if result.best_step is None else round(result.best_step / per_epoch, 2),
        epochs_trained=round(result.steps / per_epoch, 2),
        best_validation=_best_validation(result.run_dir, result.best_step), stop_reason=result.stop_reason,
        lee_spearman_after=evaluate_similarity(model.encoder).spearman,
    )
    shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)  # the run is done: keep its model, not its resume state
    shutil.rmtree(result.run_dir / "cache", ignore_errors=True)
    return row


def run_study(base: RunConfig, strategy_names: list[str], study_dir: Path, base_dir: Path = Path("."), *,
              seeds: list[int], budget: Budget = Budget(), baseline: bool = True, command: str = "",
              on_progress: Callable[[dict], None] | None = None, engine: str = "local", address: str | None = None) -> dict:
    """Train every strategy with every seed into study_dir/runs/; write and return results.json's content.

    `on_progress(content)` runs after each finished run (the CLI rewrites the report there).
    `engine="ray"` runs them as Ray tasks instead (on the cluster at `address`, else a local one).
    """
    study_dir.mkdir(parents=True, exist_ok=True)
    results_path = study_dir / RESULTS
    previous = read_json(results_path) if results_path.exists() else {}
    if previous and previous.get("version") != RESULTS_VERSION:
        raise InputError(f"{results_path} was written by another version of the study; choose another output directory")
    from ..training.extending import add_saved_tasks

    add_saved_tasks(base)  # extending a trained model: its tasks join every strategy's runs (evaluated, or rehearsed)
    pretrained = SentenceEncoder(base.model.start_from or base.model.name, pooling=base.model.pooling, normalize=base.model.normalize,  # type: ignore[arg-type]
                                 max_seq_length=base.model.max_seq_length)
    num_layers = len(find_layer_list(pretrained.backbone)[1])
    strategies = build_strategies(base, strategy_names, num_layers, budget)
    for strategy in strategies:
        if strategy.starts_from and strategy.starts_from not in {s.name for s in strategies}:
            raise InputError(f"{strategy.name} starts from {strategy.starts_from}'s model: add {strategy.starts_from} to --strategies",
                             field="--strategies")
    sizes = {name: load_task_data(name, task, base_dir).size("train") for name, task in base.tasks.items()}
    content = {
        "version": RESULTS_VERSION, "tasks": list(base.tasks), "seeds": seeds, "budget": asdict(budget),
        "train_examples": sizes, "batch_size": base.training.batch_size, "max_seq_length": base.model.max_seq_length,
        "strategies": [{"name": s.name, "description": s.description, "tags": s.tags, "starts_from": s.starts_from} for s in strategies],
        "command": command or previous.get("command", ""),
        "lee_spearman_before": previous.get("lee_spearman_before") or evaluate_similarity(pretrained).spearman,
        "runs": previous.get("runs", []),
    }
    done = {(row["strategy"], row["seed"]) for row in content["runs"]}

    def save(row: StudyRun) -> None:
        content["runs"].append(asdict(row))
        done.add((row.strategy, row.seed))
        write_json(results_path, content)
        if on_progress is not None:
            on_progress(content)

    write_json(results_path, content)
    if baseline and (BASELINE, None) not in done:
        save(logistic_regression_baseline(base, pretrained, base_dir))
    by_key = {(row["strategy"], row["seed"]): row for row in content["runs"]}
    if engine == "ray":
        from .ray_engine import run_on_ray

        run_on_ray(_dependencies_first(strategies), seeds, done, by_key, study_dir, base_dir, sizes, save, address=address)
        return content
    for seed in seeds:  # every strategy with one seed before the next seed: partial results cover all strategies
        for strategy in _dependencies_first(strategies):
            if (strategy.name, seed) in done:
                continue
            print(f"\n=== {strategy.name} (seed {seed}): {strategy.description}", flush=True)
            started = {name: row for (name, s), row in by_key.items() if s == seed}
            origin = next((s for s in strategies if s.name == strategy.starts_from), None)
            row = train_one(strategy, seed, study_dir, base_dir, sizes, started, origin)
            save(row)
            by_key[(row.strategy, row.seed)] = asdict(row)
    return content


def _dependencies_first(strategies: list[Strategy]) -> list[Strategy]:
    names = {s.name for s in strategies}
    first = [s for s in strategies if s.name in {t.starts_from for t in strategies if t.starts_from in names}]
    return first + [s for s in strategies if s not in first]
