"""Run every strategy with the same budget and seed; add forgetting and a baseline row."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..encoder import SentenceEncoder, TruncationWarning
from ..fileio import read_json, write_json
from ..metrics import classification_metrics
from ..model import load
from ..similarity import evaluate_similarity
from ..training import RunConfig, train
from ..training.data import load_task_data
from ..training.parts import find_layer_list
from .strategies import build_strategies

RESULTS = "results.json"


@dataclass
class StudyRow:
    """One strategy's outcome."""

    strategy: str
    description: str
    tasks: dict[str, dict] = field(default_factory=dict)
    """Per task: test accuracy, macro_f1, majority_rate."""
    training_time_s: float = 0.0
    trainable_parameters: int = 0
    lee_spearman_after: float | None = None
    """The trained encoder's lee Spearman (forgetting = before - after)."""
    steps: int = 0
    examples_seen: dict[str, int] = field(default_factory=dict)


def _summary(metrics: dict[str, dict]) -> dict[str, dict]:
    return {t: {k: m[k] for k in ("accuracy", "macro_f1", "majority_rate")} for t, m in metrics.items()}


def logistic_regression_baseline(base: RunConfig, encoder: SentenceEncoder, base_dir: Path) -> StudyRow:
    """scikit-learn logistic regression on the frozen pretrained embeddings, per task."""
    from sklearn.linear_model import LogisticRegression

    row = StudyRow("logistic_regression", "scikit-learn LogisticRegression on frozen pretrained embeddings")
    start = time.perf_counter()
    for name, task in base.tasks.items():
        data = load_task_data(name, task, base_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            train_x = encoder.encode(data.texts["train"], batch_size=64)
            test_x = encoder.encode(data.texts["test"], batch_size=64)
        classifier = LogisticRegression(max_iter=2000, C=10.0)
        classifier.fit(train_x, data.labels["train"])
        predicted = classifier.predict(test_x)
        row.tasks[name] = _summary({name: classification_metrics(np.asarray(data.labels["test"]), predicted, data.label_names)})[name]
        row.trainable_parameters += int(classifier.coef_.size + classifier.intercept_.size)
    row.training_time_s = time.perf_counter() - start
    row.lee_spearman_after = None
    return row


def run_study(base: RunConfig, strategy_names: list[str], study_dir: Path, base_dir: Path = Path("."), baseline: bool = True) -> dict:
    """Train each strategy into study_dir/runs/<name>; write and return results.json's content."""
    study_dir.mkdir(parents=True, exist_ok=True)
    results_path = study_dir / RESULTS
    previous = read_json(results_path) if results_path.exists() else {}
    pretrained = SentenceEncoder(base.model.name, pooling=base.model.pooling, normalize=base.model.normalize,  # type: ignore[arg-type]
                                 max_seq_length=base.model.max_seq_length)
    num_layers = len(find_layer_list(pretrained.backbone)[1])
    before = previous.get("lee_spearman_before") or evaluate_similarity(pretrained).spearman
    done = {row["strategy"]: row for row in previous.get("rows", [])}
    rows: list[dict] = []
    for strategy in build_strategies(base, strategy_names, num_layers):
        if strategy.name in done:  # a re-run continues where an interrupted study stopped
            rows.append(done[strategy.name])
            continue
        config = copy.deepcopy(strategy.config)
        config.output_dir = str(study_dir / "runs" / strategy.name.replace(":", "_"))
        print(f"\n=== {strategy.name}: {strategy.description}", flush=True)
        result = train(config, base_dir=base_dir)
        summary = read_json(result.run_dir / "test_metrics.json")
        model = load(result.model_dir)
        row = StudyRow(
            strategy=strategy.name, description=strategy.description, tasks=_summary(result.test_metrics),
            training_time_s=result.elapsed_s, trainable_parameters=int(summary.get("trainable_parameters", 0)),
            lee_spearman_after=evaluate_similarity(model.encoder).spearman, steps=result.steps,
            examples_seen=summary.get("examples_seen", {}),
        )
        rows.append(asdict(row))
        _save(results_path, base, before, rows)
    if baseline and "logistic_regression" not in done:
        rows.append(asdict(logistic_regression_baseline(base, pretrained, base_dir)))
    elif "logistic_regression" in done:
        rows.append(done["logistic_regression"])
    return _save(results_path, base, before, rows)


def _save(path: Path, base: RunConfig, before: float, rows: list[dict]) -> dict:
    content = {"lee_spearman_before": before, "budget_steps": base.training.max_steps, "seed": base.training.seed,
               "batch_size": base.training.batch_size, "tasks": list(base.tasks), "rows": rows}
    write_json(path, content)
    return content
