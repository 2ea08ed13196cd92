"""Multi-task training: config, data, sampling, loss balancing, loop, checkpoints.

The loop (PyTorch, Accelerate) is imported on first use, so a config can be read and
checked without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "RunConfig": ".config",
    "load_config": ".config",
    "TrainResult": ".loop",
    "TrainingError": ".loop",
    "TrainingInterrupted": ".loop",
    "train": ".loop",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from .config import RunConfig, load_config
    from .loop import TrainingError, TrainingInterrupted, TrainResult, train
