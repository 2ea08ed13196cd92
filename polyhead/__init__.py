"""polyhead: one sentence encoder, many task heads."""

__version__ = "0.1.0"

from .encoder import EncodeStats, SentenceEncoder, TruncationWarning  # noqa: E402

__all__ = ["SentenceEncoder", "EncodeStats", "TruncationWarning", "__version__"]
