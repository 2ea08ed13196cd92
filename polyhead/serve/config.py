"""ServeConfig: every knob of the HTTP server in one validated dataclass.

The CLI builds its flags from these fields (name, type, default and docstring), so a
new setting is one field here and shows up in `polyhead serve --help` by itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields


@dataclass
class ServeConfig:
    """How `polyhead serve` listens, batches and bounds requests."""

    model_dir: str | None = None
    """Model to serve: a MultiTaskModel directory (with polyhead_model.json) or an encoder directory; unset means the built-in default model."""
    model_name: str | None = None
    """Model id reported in responses and /v1/models; unset means the directory's name."""
    device: str | None = None
    """Torch device for the model (cpu, cuda, cuda:1); unset means cuda when available, else cpu."""
    host: str = "127.0.0.1"
    """Address to bind. The loopback default keeps the server private to this machine."""
    port: int = 8000
    """TCP port to listen on (0 picks a free one)."""
    api_key: str | None = None
    """When set, every request except /health and the API docs needs `Authorization: Bearer <key>`."""
    max_batch_texts: int = 64
    """Most texts encoded together in one shared batch across all waiting requests."""
    batch_wait_ms: float = 5.0
    """How long a batch that is not yet full waits for more requests before it runs."""
    slice_texts: int = 16
    """Most texts one request puts into each shared batch, so a big request cannot starve small ones."""
    encode_batch_size: int = 64
    """Texts per forward pass inside a shared batch (encode sorts them by length first). As big as a
    shared batch by default: each pass has a fixed cost that grows on a busy multi-threaded CPU. With
    torch_threads=1, 8-16 is faster: shorter passes pad less."""
    max_queued_texts: int = 8192
    """Texts waiting to be encoded beyond which new requests get 503 (bounds memory and latency)."""
    max_items: int = 2048
    """Most texts in one request."""
    max_chars: int = 20_000
    """Most characters in one text."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted, checked on Content-Length and on the streamed bytes."""
    max_connections: int = 256
    """Concurrent connections and tasks before the server answers 503 (uvicorn's limit_concurrency)."""
    graceful_timeout_s: float = 30.0
    """On shutdown, how long requests in flight may take to finish before connections are closed."""
    torch_threads: int | None = None
    """Threads torch uses for the forward pass; unset keeps torch's default (one per core)."""
    access_log: bool = True
    """Log one line per request (turn off for load tests: it costs CPU)."""
    log_level: str = "info"
    """Server log level: critical, error, warning, info or debug."""

    def __post_init__(self) -> None:
        positive = ("max_batch_texts", "slice_texts", "encode_batch_size", "max_queued_texts", "max_items", "max_chars", "max_body_bytes", "max_connections")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        if self.graceful_timeout_s < 0:
            raise ValueError(f"graceful_timeout_s must be >= 0, got {self.graceful_timeout_s}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_items > self.max_queued_texts:
            raise ValueError(f"max_items ({self.max_items}) must not exceed max_queued_texts ({self.max_queued_texts})")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError(f"log_level must be critical, error, warning, info or debug, got {self.log_level!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty or blank")

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the server."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def field_docs() -> dict[str, str]:
    """Each field's docstring, read from this module's source (dataclasses keep none)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ServeConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = " ".join(str(following.value.value).split())
    names = {f.name for f in fields(ServeConfig)}
    return {name: doc for name, doc in docs.items() if name in names}
