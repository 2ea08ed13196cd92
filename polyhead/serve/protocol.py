"""uvicorn's HTTP protocol with the guards a public server needs and uvicorn leaves out.

- A client must finish its request headers within `read_timeout_s` (uvicorn has no such
  timeout: a connection that sends half a request line would stay open for ever).
- At `max_connections` a new connection first closes the oldest connection that is idle or
  still sending its request, so stalled clients cannot lock out well-behaved ones; only when
  every connection has a request being served is the new one refused, with a JSON 503.
- uvicorn's own plain-text answers (400 for a malformed request, 503 over the limit) are
  JSON in the OpenAI error shape like every other error.

The body's own deadline and the 408 for it live in `limits.BodySizeLimit`, where the body
is read. This subclasses uvicorn's httptools protocol (`uvicorn.Config(http=...)` takes a
class) and touches only its connection set, transport and per-request cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .errors import error_body

logger = logging.getLogger("polyhead.serve")

REASONS = {400: b"Bad Request", 503: b"Service Unavailable"}


def raw_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error response, JSON body, `Connection: close`."""
    body = json.dumps(error_body(status, message)).encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, REASONS[status], len(body))
    )
    return head + body


def guarded_protocol(max_connections: int, read_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)` with these limits."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, config: Config, server_state: ServerState, app_state: dict, _loop: asyncio.AbstractEventLoop | None = None) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self.opened_at = 0.0
            self.read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.opened_at = self.loop.time()
            self._arm_read_timer()
            if len(self.connections) > max_connections and not self._evict_one():
                logger.warning("%d connections open, every one with a request in progress: refusing a new one", len(self.connections) - 1)
                self.transport.write(raw_error(503, f"the server has {max_connections} connections busy; retry shortly"))
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_read_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self.read_timer is None:  # a keep-alive connection starts its next request
                self._arm_read_timer()

        def on_headers_complete(self) -> None:
            self._cancel_read_timer()
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            self.transport.write(raw_error(400, f"malformed HTTP request: {msg}"))
            self.transport.close()

        # -------------------------------------------------------------- helpers
        def _arm_read_timer(self) -> None:
            self._cancel_read_timer()
            self.read_timer = self.loop.call_later(read_timeout_s, self._read_timed_out)

        def _cancel_read_timer(self) -> None:
            if self.read_timer is not None:
                self.read_timer.cancel()
                self.read_timer = None

        def _read_timed_out(self) -> None:
            self.read_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _stalled(self) -> bool:
            """Idle between requests, or its request not yet complete (nothing to lose but a slow upload)."""
            cycle = self.cycle
            return cycle is None or cycle.response_complete or (cycle.more_body and not cycle.response_started)

        def _evict_one(self) -> bool:
            others = [c for c in self.connections if c is not self and isinstance(c, GuardedHttpProtocol) and c._stalled()]
            others = [c for c in others if not c.transport.is_closing()]
            if not others:
                return False
            oldest = min(others, key=lambda c: c.opened_at)
            oldest.transport.close()
            return True

    return GuardedHttpProtocol
