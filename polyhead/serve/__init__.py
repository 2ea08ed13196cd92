"""HTTP serving: OpenAI-compatible embeddings and multi-task predictions with micro-batching."""

from .app import create_app
from .config import ServeConfig
from .server import serve

__all__ = ["ServeConfig", "create_app", "serve"]
