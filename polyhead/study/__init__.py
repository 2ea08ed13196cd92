"""`polyhead study`: the same tasks trained under several strategies, measured side by side."""

from .report import write_study_report
from .runner import run_study
from .strategies import DEFAULT_STRATEGIES, build_strategies

__all__ = ["DEFAULT_STRATEGIES", "build_strategies", "run_study", "write_study_report"]
