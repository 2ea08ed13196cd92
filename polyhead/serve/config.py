"""ServeConfig: every knob of the HTTP server in one validated dataclass.

The CLI builds its flags from these fields (name, type, default and docstring), so a
new setting is one field here and shows up in `polyhead serve --help` by itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields


CPU_ENCODE_BATCH_SIZE = 8
GPU_BATCH_TOKENS = 65_536
"""Estimated tokens in one shared batch on a GPU by default: two of the encode pipeline's 32,768-token batches (unmeasured on a GPU so far)."""


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
    max_batch_tokens: int | None = None
    """Most (estimated) tokens in one shared batch, so a batch of long texts is no heavier than one of short
    ones. Unset: 65,536 on a GPU (whose batches are sized by tokens, as encode's are) and no cap on a CPU."""
    batch_wait_ms: float = 5.0
    """How long a batch that is not yet full waits for more requests before it runs."""
    slice_texts: int = 16
    """Most texts one request puts into each shared batch, so a big request cannot starve small ones."""
    encode_batch_size: int | None = None
    """Texts per forward pass inside a shared batch, which encode sorts by length and spreads over
    the cores. Unset: 8 on a CPU (short passes pad little, and padding costs as much as text) and
    the whole shared batch on a GPU."""
    max_queued_texts: int = 8192
    """Texts waiting to be encoded beyond which new requests get 503 (bounds memory and latency)."""
    max_items: int = 2048
    """Most texts in one request."""
    max_chars: int = 20_000
    """Most characters in one text."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted, checked on Content-Length and on the streamed bytes."""
    max_header_bytes: int = 64 * 1024
    """Largest request head accepted: the request line and all headers together, so every single line too.
    Beyond it the client gets 431 and the connection closes; what the head had buffered is freed at once."""
    max_connections: int = 256
    """Open connections at most. At the limit a new connection first closes the oldest one that is idle or
    still sending its request (a stalled client); only when every connection has a request being served
    does the new one get 503."""
    read_timeout_s: float = 10.0
    """How long a client may take to send a request's headers, and again its body; a stalled connection is
    then answered 408 (or closed, before its headers are complete)."""
    request_timeout_s: float = 60.0
    """Longest a request may wait for its texts to be encoded; beyond it the texts leave the queue and the
    client gets 504. Texts of a client that disconnects leave the queue at once."""
    allowed_hosts: str | None = None
    """Comma-separated Host header values accepted in addition to localhost, 127.0.0.1, [::1] and the bound
    host, which are always accepted ('*': any host). Unset: those names only, or any host when bound to all
    interfaces (0.0.0.0, ::). Others get 421: this stops a web page from reaching a local server by DNS
    rebinding."""
    graceful_timeout_s: float = 30.0
    """On shutdown, how long requests in flight may take to finish before connections are closed."""
    backend: str | None = None
    """How encode computes: auto, torch (bit-exact fp32), torch-bf16, onnx or onnx-int8; unset: the encoder's default (auto, or $POLYHEAD_BACKEND)."""
    threads: int | None = None
    """Cores encoding uses; unset: every core this process may run on."""
    metrics: bool = True
    """Expose GET /metrics in Prometheus text format: requests by endpoint and status, latency, batch sizes,
    queue depth, texts and tokens embedded, model load time."""
    metrics_auth: bool = True
    """When an API key is set, /metrics needs it too; --no-metrics-auth leaves /metrics open to a scraper
    without the key (it shows counts and timings, never texts)."""
    access_log: bool = True
    """Log one line per request (turn off for load tests: it costs CPU)."""
    log_level: str = "info"
    """Server log level: critical, error, warning, info or debug."""

    def __post_init__(self) -> None:
        positive = ("max_batch_texts", "max_batch_tokens", "slice_texts", "encode_batch_size", "max_queued_texts", "max_items", "max_chars", "max_body_bytes", "max_header_bytes", "max_connections", "threads")
        for name in positive:
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {self.batch_wait_ms}")
        for name in ("read_timeout_s", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.allowed_hosts is not None and not self.allowed_hosts.replace(",", "").strip():
            raise ValueError("allowed_hosts must name at least one host (or '*' for any)")
        if self.graceful_timeout_s < 0:
            raise ValueError(f"graceful_timeout_s must be >= 0, got {self.graceful_timeout_s}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.max_items > self.max_queued_texts:
            raise ValueError(f"max_items ({self.max_items}) must not exceed max_queued_texts ({self.max_queued_texts})")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError(f"log_level must be critical, error, warning, info or debug, got {self.log_level!r}")
        if self.backend is not None:
            from ..inference.backends import check_backend

            check_backend(self.backend)
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty or blank")

    def batch_size_for(self, device_type: str) -> int:
        """encode_batch_size, or its default for a model on `device_type` (cpu, cuda, ...)."""
        if self.encode_batch_size is not None:
            return self.encode_batch_size
        return CPU_ENCODE_BATCH_SIZE if device_type == "cpu" else self.max_batch_texts

    def batch_tokens_for(self, device_type: str) -> int | None:
        """max_batch_tokens, or its default for a model on `device_type`: a cap on a GPU, none on a CPU."""
        if self.max_batch_tokens is not None:
            return self.max_batch_tokens
        return None if device_type == "cpu" else GPU_BATCH_TOKENS

    def host_names(self) -> frozenset[str] | None:
        """Host header values accepted, lower-case without brackets or port; None: any."""
        local = {"localhost", "127.0.0.1", "::1", self.host.strip("[]").lower()}
        if self.allowed_hosts is None:
            return None if self.host in ("0.0.0.0", "::", "") else frozenset(local)
        names = {name.strip().strip("[]").lower() for name in self.allowed_hosts.split(",") if name.strip()}
        return None if "*" in names else frozenset(names | local)

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
