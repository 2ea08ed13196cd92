"""Assemble the FastAPI app: routes, error shapes, body limits, Host check, API key, metrics, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.routing import Route

from .. import __version__
from .auth import OPEN_PATHS, ApiKeyCheck
from .config import ServeConfig
from .errors import install_error_handlers
from .hosts import HostCheck
from .limits import BodySizeLimit
from .metrics import METRICS_PATH, RequestMetrics, metrics_endpoint
from .routes import router
from .shutdown import LastAnswer
from .state import ServerState


def create_app(config: ServeConfig, on_load_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The ASGI app for `config`; the model loads in the background once the app starts."""
    state = ServerState(config, on_load_failure)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    app = FastAPI(
        title="polyhead",
        version=__version__,
        description="Sentence embeddings (OpenAI-compatible) and multi-task predictions from one shared encoder.",
        lifespan=lifespan,
    )
    app.state.polyhead = state
    app.include_router(router)
    if state.metrics is not None:
        app.add_api_route(METRICS_PATH, metrics_endpoint, methods=["GET"], tags=["server"], response_class=PlainTextResponse)
    install_error_handlers(app)
    # The last middleware added runs first: the request metrics see every answer, LastAnswer
    # wraps everything else, the Host and the key are checked before any body is read.
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes, timeout_s=config.read_timeout_s)
    if config.api_key:
        open_paths = OPEN_PATHS if config.metrics_auth else OPEN_PATHS | {METRICS_PATH}
        app.add_middleware(ApiKeyCheck, api_key=config.api_key, open_paths=open_paths)
    host_names = config.host_names()
    if host_names is not None:
        app.add_middleware(HostCheck, names=host_names)
    app.add_middleware(LastAnswer)
    if state.metrics is not None:
        # Every path route, polyhead's own and FastAPI's docs: their templates are the endpoint labels.
        routes = [route for route in (*router.routes, *app.router.routes) if isinstance(route, Route)]
        app.add_middleware(RequestMetrics, metrics=state.metrics, routes=routes)
    return app
