"""Multi-task training: config, data, sampling, loss balancing, loop, checkpoints."""

from .config import RunConfig, load_config
from .loop import TrainingError, TrainingInterrupted, TrainResult, train

__all__ = ["RunConfig", "TrainResult", "TrainingError", "TrainingInterrupted", "load_config", "train"]
