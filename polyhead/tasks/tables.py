"""The terminal's metrics tables: one table per kind of task present, each with its kind's columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..metrics import PER_CLASS_HEADERS, per_class_rows, text_table
from .base import get_kind, summary_tables


def format_metrics_table(metrics_by_task: Mapping[str, Mapping[str, Any]]) -> str:
    """Plain-text tables for the terminal, one line per task and one table per kind of task."""
    return "\n\n".join(text_table(headers, rows) for headers, rows in summary_tables(dict(metrics_by_task)))


def format_classification_report(metrics: Mapping[str, Any]) -> str:
    """Per-class (or per-label) precision/recall/F1/support as plain text, then the task's summary metrics."""
    kind = get_kind(metrics.get("kind"))
    averages = "   ".join(f"{header} {cell}" for (_, header), cell in zip(kind.table_metrics, kind.summary_cells(dict(metrics))))
    if not metrics.get("per_class"):
        return averages
    return f"{text_table(PER_CLASS_HEADERS, per_class_rows(metrics))}\n\n{averages}"
