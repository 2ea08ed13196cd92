"""Bound every request body before the app sees it.

An ASGI middleware rather than a FastAPI dependency: it must refuse a huge body on its
Content-Length alone, and count the bytes of a chunked body as they stream in, so no
request can make the server buffer more than `max_bytes`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_error


# After a refused body the rest of it may still be on the wire: never reuse the connection.
CLOSE = [(b"connection", b"close")]


class BodySizeLimit:
    """Reads each HTTP body up to `max_bytes`, then hands the app a replay of it; 413 beyond."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = _content_length(scope)
        except ValueError:
            await send_error(send, 400, "invalid Content-Length header")
            return
        if declared is not None and declared > self.max_bytes:
            # Reading a moderately oversized body first lets clients that write the whole
            # request before reading the answer see the 413 instead of a reset connection.
            if declared <= 2 * self.max_bytes:
                await _drain(receive, declared)
            await send_error(send, 413, self._too_large(declared), headers=CLOSE)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _drain(receive, self.max_bytes)
                await send_error(send, 413, self._too_large(None), headers=CLOSE)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _too_large(self, declared: int | None) -> str:
        size = f" of {declared} bytes" if declared is not None else ""
        return f"request body{size} is larger than the limit of {self.max_bytes} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            length = int(value)
            if length < 0:
                raise ValueError("negative Content-Length")
            return length
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that yields the buffered body once, then defers to the real one."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _drain(receive: Receive, budget: int) -> None:
    """Read and discard up to `budget` more bytes of the body."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return
