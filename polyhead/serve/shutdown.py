"""The last word on a request: JSON even when the request was cut off or something broke outside a route.

uvicorn cancels the requests still running when the graceful shutdown period ends and
answers them, like any exception that escapes the app, with a plain-text 500. This
outermost middleware answers a cancelled request with the documented JSON 503 instead, and
any other escaped failure with the JSON 500; the traceback goes to the log only.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_error

logger = logging.getLogger("polyhead.serve")


class LastAnswer:
    """Turns a cancelled request into 503 and an escaped exception into 500, both JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()  # answered here: the cancellation has done its job
            if not started:
                await send_error(
                    send, 503, "the server is shutting down and could not finish this request in time; retry",
                    headers=[(b"retry-after", b"1"), (b"connection", b"close")],
                )
        except Exception as error:  # noqa: BLE001 - the client gets the generic answer, the log the details
            logger.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=error)
            if not started:
                await send_error(send, 500, "internal server error", headers=[(b"connection", b"close")])
