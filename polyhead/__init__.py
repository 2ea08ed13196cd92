"""polyhead: one sentence encoder, many task heads."""

__version__ = "0.1.0"

from .encoder import EncodeStats, SentenceEncoder, TruncationWarning  # noqa: E402
from .heads import HeadConfig  # noqa: E402
from .model import MultiTaskModel, TaskPrediction, TaskSpec, load  # noqa: E402

__all__ = [
    "EncodeStats",
    "HeadConfig",
    "MultiTaskModel",
    "SentenceEncoder",
    "TaskPrediction",
    "TaskSpec",
    "TruncationWarning",
    "__version__",
    "load",
]
