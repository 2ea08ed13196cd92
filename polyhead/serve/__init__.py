"""HTTP serving: OpenAI-compatible embeddings and multi-task predictions with micro-batching.

Exports are imported on first use, so `polyhead serve --help` and its argument errors answer
without PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {"ServeConfig": ".config", "create_app": ".app", "serve": ".server"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from .app import create_app
    from .config import ServeConfig
    from .server import serve
