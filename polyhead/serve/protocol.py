"""uvicorn's HTTP protocol with the guards a public server needs and uvicorn leaves out.

- A client must finish its request headers within `read_timeout_s` (uvicorn has no such
  timeout: a connection that sends half a request line would stay open for ever).
- At `max_connections` a new connection first closes the oldest connection that is idle or
  still sending its request, so stalled clients cannot lock out well-behaved ones; only when
  every connection has a request being served is the new one refused, with a JSON 503.
- The request line and headers together may hold at most `max_header_bytes` (httptools has no
  limit, and would buffer a header line of any length): beyond it the client gets a JSON 431,
  the partial head is dropped at once and the rest of what the client sends is discarded
  unread until it stops or the read timeout closes the connection.
- Two Host headers get 400: proxies and the Host check could each read a different one.
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

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .errors import error_body

logger = logging.getLogger("polyhead.serve")

REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def raw_error(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error response, JSON body, `Connection: close`."""
    body = json.dumps(error_body(status, message)).encode()
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, REASONS[status], len(body))
    )
    return head + body


def byte_size(size: int) -> str:
    """65536 -> '64 KiB': limits read the way they are documented."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request the guard refuses."""


def guarded_protocol(max_connections: int, read_timeout_s: float, max_header_bytes: int = 64 * 1024) -> type[HttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)` with these limits."""

    too_large = f"the request line and headers are larger than the limit of {byte_size(max_header_bytes)}"

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, config: Config, server_state: ServerState, app_state: dict, _loop: asyncio.AbstractEventLoop | None = None) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self.opened_at = 0.0
            self.read_timer: asyncio.TimerHandle | None = None
            self.refusal: tuple[int, str] | None = None  # set once a request is refused: later bytes are discarded
            self.in_head = True  # between a request's first byte and the end of its headers
            self.began = False  # a request began inside the chunk being parsed
            self.head_bytes = 0  # bytes of the current head received so far (to the chunk)
            self.counted = 0  # bytes of the current head the parser has handed over (URL and whole headers)
            self.hosts = 0

        def data_received(self, data: bytes) -> None:
            if self.refusal is not None:
                return  # refused: read and drop, never buffer
            was_in_head, self.began = self.in_head, False
            super().data_received(data)
            if self.refusal is not None or not self.in_head:
                return
            # Still inside a head: httptools buffers at most what arrived of it since it began (a head
            # that began in this chunk counts what the parser handed over; the next chunk adds in full).
            self.head_bytes = self.head_bytes + len(data) if was_in_head and not self.began else self.counted
            if self.head_bytes > max_header_bytes:
                self._refuse(431, too_large)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head, self.began, self.head_bytes, self.counted, self.hosts = True, True, 0, 0, 0
            if self.read_timer is None:  # a keep-alive connection starts its next request
                self._arm_read_timer()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            if name.lower() == b"host":
                self.hosts += 1
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._cancel_read_timer()
            self.in_head = False
            if self.hosts > 1:
                self.refusal = (400, "the request has more than one Host header")
                raise _Refused
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.in_head = True

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

        def send_400_response(self, msg: str) -> None:
            if self.refusal is not None:  # a callback refused the request: httptools reports it as a parse error
                self._answer_refusal()
                return
            self.transport.write(raw_error(400, f"malformed HTTP request: {msg}"))
            self.transport.close()

        # -------------------------------------------------------------- refusing
        def _count(self, size: int) -> None:
            self.counted += size
            if self.counted > max_header_bytes:
                self.refusal = (431, too_large)
                raise _Refused

        def _refuse(self, status: int, message: str) -> None:
            self.refusal = (status, message)
            self._answer_refusal()

        def _answer_refusal(self) -> None:
            """Answer, drop the parser (and what it buffered), and discard the rest unread.

            The write side closes after the answer so the client sees it; reading goes on, so a
            client still sending does not get a reset instead, until it stops or the read timer
            (re-armed here) closes the connection.
            """
            status, message = self.refusal or (400, "refused")
            logger.warning("refusing a request from %s: %s", self.client[0] if self.client else "?", message)
            self.parser = httptools.HttpRequestParser(self)
            self.headers = []
            self.transport.write(raw_error(status, message))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            else:
                self.transport.close()
            self._arm_read_timer()

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
