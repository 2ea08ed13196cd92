"""Bound every request body before the app sees it: its size and the time it takes to arrive.

An ASGI middleware rather than a FastAPI dependency: it must refuse a huge body on its
Content-Length alone, count the bytes of a chunked body as they stream in, so no request
can make the server buffer more than `max_bytes`, and drop a client that stops sending
half-way, so a stalled upload cannot hold a connection forever.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_error

# After a refused body the rest of it may still be on the wire: never reuse the connection.
CLOSE = [(b"connection", b"close")]

DISCARD_LIMIT = 256 * 1024 * 1024
"""Most bytes of a refused body read and thrown away before answering 413. Clients such as
urllib write the whole body before they read a byte of the answer: closing on them early
resets the connection and they never see the 413. Beyond this a client that does not send
`Expect: 100-continue` gets the reset; the bytes are discarded, never held."""


class BodySizeLimit:
    """Reads each HTTP body up to `max_bytes` within `timeout_s`, then hands the app a replay of it.

    413 beyond the size, 408 when the body stops arriving; both close the connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = _content_length(scope)
        except ValueError:
            await send_error(send, 400, "invalid Content-Length header", headers=CLOSE)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        if declared is not None and declared > self.max_bytes:
            # A client that asked `Expect: 100-continue` has sent nothing yet: answer at once.
            if not _expects_continue(scope) and declared <= DISCARD_LIMIT:
                await _discard(receive, declared, deadline)
            await send_error(send, 413, self._too_large(declared), headers=CLOSE)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await _receive_by(receive, deadline)
            if message is None:
                await send_error(send, 408, f"the request body did not arrive within {self.timeout_s:g} s", code="timeout", headers=CLOSE)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _discard(receive, DISCARD_LIMIT - size, deadline)
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


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ()))


async def _receive_by(receive: Receive, deadline: float) -> Message | None:
    """The next message, or None once `deadline` (event-loop time) has passed."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(receive(), remaining)
    except asyncio.TimeoutError:
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


async def _discard(receive: Receive, budget: int, deadline: float) -> None:
    """Read and throw away up to `budget` more bytes of the body, until `deadline` at most."""
    while budget > 0:
        message = await _receive_by(receive, deadline)
        if message is None or message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return
