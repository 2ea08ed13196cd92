"""metrics.jsonl: one JSON object per log step and per evaluation, appended as it happens.

The training loop appends one JSON object per line to `run_dir/metrics.jsonl` as it runs:

    {"type": "train", "step": 20, "epoch": 0.4, "loss": {"topic": 2.91, "sentiment": 0.62},
     "total_loss": 3.53, "lr": 1.9e-5, "examples": {"topic": 160, "sentiment": 160}, "elapsed_s": 12.3}
    {"type": "eval", "step": 50, "split": "validation", "tasks": {"topic": {...}, ...}, "elapsed_s": 30.1}
    {"type": "test", "step": 100, "split": "test", "tasks": {...}, "elapsed_s": 61.0}
    {"type": "event", "step": 0, "message": "resumed from checkpoint step-40"}

- `train`: mean training loss per task since the previous `train` line. A task that was not
  sampled in that window is absent from `loss`. `step` is required; `total_loss` (the
  weighted sum the optimiser saw), `epoch`, `lr`, `examples` and `elapsed_s` are optional.
- `eval` / `test`: one metrics dict per task, from its kind (`polyhead.tasks`): `kind` and
  `score` (the kind's selection metric) are required, or, without `kind`, classification's
  `accuracy` and `macro_f1`; the confusion plot and the per-class table need `labels`,
  `confusion_matrix` and `per_class`. `split` defaults to "validation" for `eval`.
  An `eval` line may carry `score`, the number the loop selects the best step by; a `test`
  line may carry `best_step`, the step whose model was tested.
- `event`: a free-form note (resume, early stop, phase change), listed in the report.
- Any other `type` is kept by `read_metrics_log` and ignored by the report, so the loop can
  log new kinds of lines without breaking older readers.

`elapsed_s` is wall-clock seconds since the run started; the largest one is the training time.
A last line without its newline that is not valid JSON is a write cut short by a crash: it is
skipped with a warning, so the report of a crashed run can still be written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..fileio import atomic_file

Record = dict[str, Any]


class MetricsLog:
    """Appends JSON lines (flushed at once, so a crash loses at most the line being written)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.listeners: list[Callable[[dict], None]] = []
        """Called with every record written (experiment trackers)."""

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        for listener in self.listeners:
            listener(record)

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after `step` (work a resumed run will redo)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the crash
            if isinstance(record, dict) and int(record.get("step", 0)) <= step:
                kept.append(line)
        with atomic_file(self.path) as handle:
            handle.write("".join(f"{line}\n" for line in kept))


def read_metrics_log(path: str | Path) -> list[Record]:
    """Every record of a metrics log, checked line by line; a bad line raises `InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no metrics log here; the training loop writes it as the run goes", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    lines = text.split("\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: the write was cut short
                warnings.warn(f"{path}:{number}: skipped an unfinished last line (the run stopped mid-write)", stacklevel=2)
                continue
            raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=path, line=number) from None
        try:
            check_record(record)
        except InputError as exc:
            raise InputError(exc.reason, file=path, line=number, field=exc.field) from None
        records.append(record)
    if not records:
        raise InputError("the metrics log is empty: the run logged no step", file=path)
    return records


def check_record(record: Any) -> None:
    """Raise `InputError` (with the field) if a log record does not have the documented shape."""
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, got {type(record).__name__}")
    kind = record.get("type")
    if not isinstance(kind, str):
        raise InputError("missing or non-string 'type' (train, eval, test or event)", field="type")
    if kind in ("train", "eval", "test"):
        _check_step(record.get("step"), required=True)
    if record.get("best_step") is not None:
        _check_count(record["best_step"], "best_step")
    for key in ("epoch", "lr", "total_loss", "elapsed_s", "score"):
        if record.get(key) is not None:
            _check_number(record[key], key)
    if kind == "train":
        losses = record.get("loss")
        if not isinstance(losses, dict):
            raise InputError("'loss' must be an object of task -> loss", field="loss")
        for task, value in losses.items():
            _check_number(value, f"loss.{task}")
    elif kind in ("eval", "test"):
        tasks = record.get("tasks")
        if not isinstance(tasks, dict) or not tasks:
            raise InputError("'tasks' must be a non-empty object of task -> metrics", field="tasks")
        for task, metrics in tasks.items():
            check_task_metrics(metrics, f"tasks.{task}")
    elif kind == "event":
        _check_step(record.get("step"), required=False)
        if record.get("message") is not None and not isinstance(record["message"], str):
            raise InputError("'message' must be a string", field="message")


def check_task_metrics(metrics: Any, where: str) -> None:
    """The parts of a task's metrics dict that the report relies on, when present.

    Every kind's metrics carry `score` (its selection metric); logs written before kinds
    existed carry classification's `accuracy` and `macro_f1` instead.
    """
    if not isinstance(metrics, dict):
        raise InputError("expected an object of metrics", field=where)
    required = ("score",) if "kind" in metrics else ("accuracy", "macro_f1")
    for key in required:
        if key not in metrics:
            raise InputError(f"missing {key!r}", field=where)
    for key in ("score", "accuracy", "macro_f1", "majority_rate", "macro_precision", "macro_recall", "weighted_f1"):
        if metrics.get(key) is not None:
            _check_number(metrics[key], f"{where}.{key}")
    if metrics.get("support") is not None:
        _check_count(metrics["support"], f"{where}.support")
    labels = metrics.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise InputError("'labels' must be a list of strings", field=f"{where}.labels")
    matrix = metrics.get("confusion_matrix")
    if matrix is not None:
        if labels is None:
            raise InputError("'confusion_matrix' needs 'labels' beside it", field=f"{where}.labels")
        n = len(labels)
        if not (isinstance(matrix, list) and len(matrix) == n and all(isinstance(r, list) and len(r) == n for r in matrix)):
            raise InputError(f"'confusion_matrix' must be {n} x {n} (one row and column per label)", field=f"{where}.confusion_matrix")
        for row in matrix:
            for cell in row:
                _check_count(cell, f"{where}.confusion_matrix")
    per_class = metrics.get("per_class")
    if per_class is not None:
        if not isinstance(per_class, dict):
            raise InputError("'per_class' must be an object of label -> scores", field=f"{where}.per_class")
        for name, scores in per_class.items():
            field = f"{where}.per_class.{name}"
            if not isinstance(scores, dict):
                raise InputError("expected an object of scores", field=field)
            for key in ("precision", "recall", "f1"):
                _check_number(scores.get(key), f"{field}.{key}")
            _check_count(scores.get("support"), f"{field}.support")


def _check_number(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number, got {json.dumps(value)}", field=field)


def _check_count(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"expected a non-negative integer, got {json.dumps(value)}", field=field)


def _check_step(value: Any, *, required: bool) -> None:
    if value is None and not required:
        return
    _check_count(value, "step")
