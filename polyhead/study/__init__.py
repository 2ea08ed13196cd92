"""`polyhead study`: the same tasks trained under several strategies and seeds, measured side by side.

Exports are imported on first use, so `polyhead study --help` answers without PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_STRATEGIES": ".strategies",
    "build_strategies": ".strategies",
    "run_study": ".runner",
    "write_study_report": ".report",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from .report import write_study_report
    from .runner import run_study
    from .strategies import DEFAULT_STRATEGIES, build_strategies
