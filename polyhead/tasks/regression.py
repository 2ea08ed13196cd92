"""Regression: one or more real-valued targets, MSE (or Huber) on standardized targets, answers in the targets' units.

The head learns standardized targets (each column's training mean and standard deviation,
saved with the model), so one learning rate suits a target in dollars and one in [0, 1];
`outputs` undoes the scaling, so predictions, the server and the exported graph all speak
the original units. Huber (`loss: huber`) is quadratic within one standard deviation of the
target and linear beyond, so a few extreme targets (a $10,000 clue among $200-$2,000 ones) do not
dominate the gradient as they do under MSE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from .base import TargetColumns, TaskKind, Where, register_kind

HUBER_DELTA = 1.0
"""Where Huber turns from quadratic to linear, in standard deviations of the target (the loss sees standardized targets)."""

PLOT_POINTS = 300
"""(true, predicted) pairs kept per target in the metrics, for the report's predicted-vs-true plot."""


def _number(value: Any, where: Where, column: str) -> float:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise InputError(f"expected a number, got {value!r}", file=where.file, line=where.line, field=column)
    try:
        number = float(value.strip().replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {value!r}", file=where.file, line=where.line, field=column) from None
    if not math.isfinite(number):
        raise InputError(f"expected a finite number, got {value!r}", file=where.file, line=where.line, field=column)
    return number


@register_kind
class Regression(TaskKind):
    name = "regression"
    score_metric = "spearman"
    table_metrics = (("rmse", "RMSE"), ("mae", "MAE"), ("pearson", "Pearson"), ("spearman", "Spearman"), ("r2", "R²"),
                     ("support", "support"))
    hub_task_type = "text-regression"
    losses = ("mse", "huber")
    outputs_meaning = "predicted values in the targets' own units, one per target column"
    output_noun = "targets"
    plot_file = "predicted_vs_true"
    plot_caption = "Each point is one text (the first 300 of the split); the dashed line is a perfect prediction."

    def parse(self, record: dict[str, Any], columns: TargetColumns, where: Where) -> list[float]:
        return [_number(record[column], where, column) for column in columns.columns]

    def fit(self, targets: list, columns: TargetColumns, where: Where, lines: list[int] | None = None) -> tuple[list[str], dict]:
        values = np.asarray(targets, dtype=np.float64)
        std = values.std(axis=0)
        for column, spread in zip(columns.columns, std):
            if spread == 0:
                raise InputError("every training target has the same value: there is nothing to learn", file=where.file, field=column)
        return list(columns.columns), {"mean": values.mean(axis=0).tolist(), "std": std.tolist()}

    def target_tensor(self, targets: list, spec):
        import torch

        return torch.tensor(targets, dtype=torch.float32).reshape(len(targets), len(spec.labels))

    def _scale(self, spec, like):
        import torch

        mean = torch.tensor(spec.state["mean"], dtype=torch.float32, device=like.device)
        std = torch.tensor(spec.state["std"], dtype=torch.float32, device=like.device)
        return mean, std

    def loss(self, logits, targets, spec, weights=None):
        import torch.nn.functional as F

        mean, std = self._scale(spec, logits)
        standardized = (targets.float() - mean) / std
        if spec.state.get("loss") == "huber":
            return F.huber_loss(logits.float(), standardized, delta=HUBER_DELTA)
        return F.mse_loss(logits.float(), standardized)

    def outputs(self, logits, spec):
        mean, std = self._scale(spec, logits)
        return logits.float() * std + mean

    def metrics(self, outputs: np.ndarray, targets: list, spec) -> dict[str, Any]:
        from scipy.stats import pearsonr, spearmanr
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        predicted = np.asarray(outputs, dtype=np.float64).reshape(len(targets), -1)
        true = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        per_target = {}
        for i, name in enumerate(spec.labels):
            t, p = true[:, i], predicted[:, i]
            constant = np.ptp(t) == 0 or np.ptp(p) == 0
            per_target[name] = {
                "rmse": float(math.sqrt(mean_squared_error(t, p))), "mae": float(mean_absolute_error(t, p)),
                "pearson": 0.0 if constant else float(pearsonr(t, p)[0]),
                "spearman": 0.0 if constant else float(spearmanr(t, p)[0]),
                "r2": float(r2_score(t, p)) if len(t) > 1 else 0.0,
                "mean_baseline_rmse": float(np.sqrt(np.mean((t - np.mean(spec.state["mean"][i])) ** 2))),
                "points": [[round(float(a), 4), round(float(b), 4)] for a, b in zip(t[:PLOT_POINTS], p[:PLOT_POINTS])],
            }
        averaged = {key: float(np.mean([m[key] for m in per_target.values()])) for key in ("rmse", "mae", "pearson", "spearman", "r2")}
        return {"kind": self.name, "score": averaged[self.score_metric], **averaged, "support": len(targets),
                "labels": list(spec.labels), "per_target": per_target}

    def answer(self, row: list[float], spec) -> dict[str, Any]:
        values = {name: float(v) for name, v in zip(spec.labels, row)}
        return {"value": float(row[0]), "values": values} if len(values) == 1 else {"values": values}

    def plot(self, task: str, metrics: dict[str, Any], source: str):
        from .plots import predicted_vs_true

        return predicted_vs_true(task, metrics, source)
