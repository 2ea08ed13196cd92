"""polyhead: one sentence encoder, many task heads.

Classes are imported on first use, so `polyhead --help` and config checks never load
PyTorch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "EncodeStats": ".encoder",
    "SentenceEncoder": ".encoder",
    "TruncationWarning": ".encoder",
    "HeadConfig": ".head_config",
    "MultiTaskModel": ".model",
    "TaskPrediction": ".model",
    "TaskSpec": ".model",
    "load": ".model",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .encoder import EncodeStats, SentenceEncoder, TruncationWarning
    from .head_config import HeadConfig
    from .model import MultiTaskModel, TaskPrediction, TaskSpec, load
