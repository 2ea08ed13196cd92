"""Experiment trackers (TensorBoard, MLflow, Weights & Biases) through Accelerate's tracking API.

Every numeric value of the train, validation and test lines of `metrics.jsonl` goes to the
trackers under the same names, and the resolved config is logged as hyperparameters. Trackers
write into the run directory by default (TensorBoard: `trackers/`, MLflow: `mlruns/` unless
MLFLOW_TRACKING_URI says otherwise), so they work offline.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import InputError

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
"""Tracker name in `training.report_to` -> the package it needs."""
SKIPPED_KEYS = {"per_class", "confusion_matrix", "labels", "task_epochs", "examples"}
"""Parts of a metrics line too large or too redundant to chart."""


def check_trackers(names: list[str]) -> None:
    """Unknown trackers and missing packages fail before training starts."""
    for name in names:
        if name not in TRACKER_PACKAGES:
            raise InputError(f"unknown tracker {name!r}; choose from {', '.join(TRACKER_PACKAGES)}", field="training.report_to")
        package = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(package) is None:
            raise InputError(f"{name} needs the {package} package: pip install 'polyhead[{name}]'", field="training.report_to")


def prepare_tracker_storage(names: list[str], run_dir: Path) -> Path:
    """Where trackers write: the run directory's `trackers/` (MLflow: `mlruns/`, unless configured)."""
    if "mlflow" in names and not os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow

        # A file store needs no server or database; MLflow 3 asks for this opt-in to use one.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
    return run_dir / "trackers"


def hyperparameters(config: dict, prefix: str = "") -> dict[str, Any]:
    """The config flattened to dotted keys with scalar values (lists and None as text)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(hyperparameters(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def record_scalars(record: dict) -> dict[str, float]:
    """The numeric values of a train / eval / test line of metrics.jsonl, as `split/key/...` names."""
    kind = record.get("type")
    if kind == "train":
        prefix = "train"
    elif kind in ("eval", "test"):
        prefix = record.get("split", kind)
    else:
        return {}
    scalars: dict[str, float] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key not in SKIPPED_KEYS:
                    walk(sub, f"{name}/{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            scalars[name] = float(value)

    for key, value in record.items():
        if key not in ("type", "step", "split") and key not in SKIPPED_KEYS:
            walk(value, f"{prefix}/{key}")
    return scalars


class TrackerBridge:
    """Sends each metrics line's scalars to Accelerate's trackers (a MetricsLog listener)."""

    def __init__(self, accelerator) -> None:
        self.accelerator = accelerator

    def __call__(self, record: dict) -> None:
        scalars = record_scalars(record)
        if scalars:
            self.accelerator.log(scalars, step=int(record.get("step", 0)))
