"""The guard of a run that extends a trained model: the old tasks' metrics before and after, and the tolerated drop.

Before training, the starting model is scored on its tasks' validation and test splits and on
the `lee` similarity benchmark (the embedding space); after training the final model is scored
the same way. `guard.json` and a section of `report.md` show both side by side with the drop.
A drop beyond `guard.max_drop` (or `guard.lee_max_drop`) fails the run's final check: the new
model is kept apart as `model.rejected` and the starting model, never written to, is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..fileio import atomic_file, read_json, write_json
from ..markdown import markdown_table
from .data import TaskData
from .extend_config import GuardConfig

GUARD_BEFORE = "guard_before.json"
GUARD_RESULT = "guard.json"
SPLITS = ("validation", "test")


@dataclass
class GuardRow:
    task: str
    split: str
    metric: str
    before: float
    after: float

    @property
    def drop(self) -> float:
        return self.before - self.after


def measure(model, task_data: dict[str, TaskData], batch_size: int, known: dict[str, dict] | None = None) -> dict:
    """The old tasks' metrics on validation and test, and lee Spearman, of one model; `known`: split -> metrics
    per task already measured (the run's test metrics), not evaluated again."""
    from ..similarity import evaluate_similarity
    from .evaluation import evaluate_tasks

    known = known or {}
    splits = {split: {name: known[split][name] for name in task_data if name in known[split]} if split in known
              else evaluate_tasks(model, task_data, split, batch_size) for split in SPLITS}
    return {"tasks": splits, "lee_spearman": float(evaluate_similarity(model.encoder).spearman)}


def measure_start(start_path: Path, task_data: dict[str, TaskData], run_dir: Path, device, batch_size: int) -> dict:
    """The starting model's figures, measured once per run (a resumed run reads them back)."""
    from ..model import MultiTaskModel

    saved = run_dir / GUARD_BEFORE
    if saved.is_file():
        return read_json(saved)
    before = measure(MultiTaskModel.load(start_path, device=device), task_data, batch_size)
    write_json(saved, before)
    return before


def compare(before: dict, after: dict, config: GuardConfig) -> tuple[list[GuardRow], float, float, list[str]]:
    """Rows per old task and split, lee before and after, and the failures (empty: the check passes)."""
    rows = []
    for split in SPLITS:
        for task, metrics in before["tasks"].get(split, {}).items():
            if config.metric not in metrics:
                raise KeyError(f"guard.metric {config.metric!r}: task {task!r} has no such metric (it has {', '.join(metrics)})")
            rows.append(GuardRow(task, split, config.metric, float(metrics[config.metric]),
                                 float(after["tasks"][split][task][config.metric])))
    failures = []
    if config.max_drop is not None:
        checked = [r for r in rows if r.split == "test"] or rows  # the test split decides; validation where there is none
        failures += [f"task {r.task!r}: {r.metric} on {r.split} fell {r.drop:.4f} (from {r.before:.4f} to {r.after:.4f}), "
                     f"more than guard.max_drop {config.max_drop}" for r in checked if r.drop > config.max_drop]
    lee_before, lee_after = float(before["lee_spearman"]), float(after["lee_spearman"])
    if config.lee_max_drop is not None and lee_before - lee_after > config.lee_max_drop:
        failures.append(f"lee Spearman fell {lee_before - lee_after:.4f} (from {lee_before:.4f} to {lee_after:.4f}), "
                        f"more than guard.lee_max_drop {config.lee_max_drop}")
    return rows, lee_before, lee_after, failures


def guard_markdown(rows: list[GuardRow], lee_before: float, lee_after: float, failures: list[str], start: Path) -> str:
    table = markdown_table(["task", "split", "metric", "before", "after", "drop"],
                           [[r.task, r.split, r.metric, f"{r.before:.4f}", f"{r.after:.4f}", f"{r.drop:+.4f}"] for r in rows]
                           + [["lee (embeddings)", "all pairs", "spearman", f"{lee_before:.4f}", f"{lee_after:.4f}",
                               f"{lee_before - lee_after:+.4f}"]])
    verdict = ("**Guard check failed**; the model is kept as `model.rejected`:\n\n" + "\n".join(f"- {f}" for f in failures)
               if failures else "Guard check passed.")
    return f"## Old tasks before and after\n\nStarting model: `{start}`. A positive drop is a loss.\n\n{table}\n\n{verdict}\n"


def finish_guard(run_dir: Path, start: Path, before: dict, after: dict, config: GuardConfig) -> list[str]:
    """Write guard.json and the report section; move the model apart when the check fails. Returns the failures."""
    rows, lee_before, lee_after, failures = compare(before, after, config)
    write_json(run_dir / GUARD_RESULT, {
        "starting_model": str(start), "metric": config.metric, "max_drop": config.max_drop, "lee_max_drop": config.lee_max_drop,
        "rows": [{"task": r.task, "split": r.split, "before": r.before, "after": r.after, "drop": r.drop} for r in rows],
        "lee_spearman": {"before": lee_before, "after": lee_after}, "passed": not failures, "failures": failures,
    })
    report = run_dir / "report.md"
    section = guard_markdown(rows, lee_before, lee_after, failures, start)
    text = (report.read_text(encoding="utf-8") + "\n" if report.is_file() else "") + section
    with atomic_file(report) as handle:
        handle.write(text)
    if failures:
        rejected = run_dir / "model.rejected"
        if rejected.exists():
            import shutil

            shutil.rmtree(rejected)
        (run_dir / "model").rename(rejected)
    return failures
