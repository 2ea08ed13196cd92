"""Refuse requests whose Host header names another site (DNS rebinding).

A web page can point a name it controls at 127.0.0.1 and then read a local server with the
visitor's browser; the browser still sends the page's own name as Host. Accepting only the
names this server is really reached by (`ServeConfig.host_names`) closes that door.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import send_error


class HostCheck:
    """421 JSON unless the Host header (port dropped) is one of `names`."""

    def __init__(self, app: ASGIApp, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = host_name(scope)
        if host in self.names:
            await self.app(scope, receive, send)
            return
        shown = repr(host) if host else "a missing Host header"
        await send_error(
            send, 421, f"requests for {shown} are not served here; start the server with --allowed-hosts to accept other names",
            code="host_not_allowed", headers=[(b"connection", b"close")],
        )


def host_name(scope: Scope) -> str:
    """The Host header's name, lower-case, without its port or IPv6 brackets."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1 : host.find("]")] if "]" in host else host
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""
