"""Optional API key, checked OpenAI style (`Authorization: Bearer <key>`) on every request.

A middleware so that no route can forget it. /health stays open for load balancers and
the API docs stay open because they describe the API, not its data; /metrics is open only
when the server is told so (`--no-metrics-auth`).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import send_error

OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class ApiKeyCheck:
    """401 unless the request carries the configured key as a Bearer token."""

    def __init__(self, app: ASGIApp, api_key: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.expected = api_key.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        await send_error(
            send, 401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key",
            headers=[(b"www-authenticate", b'Bearer realm="polyhead"')],
        )

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.expected)
        return False
