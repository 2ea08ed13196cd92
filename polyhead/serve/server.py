"""Run the app under uvicorn with the config's limits and a graceful shutdown."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading

import uvicorn

from ..errors import InputError
from .app import create_app
from .config import ServeConfig
from .protocol import guarded_protocol

logger = logging.getLogger("polyhead.serve")


def serve(config: ServeConfig) -> int:
    """Serve until SIGINT/SIGTERM; 0 after a graceful stop, 1 when the model failed to load.

    On a signal uvicorn stops accepting connections, lets requests in flight finish (up to
    `graceful_timeout_s`; those still running then get a JSON 503 and their texts leave the
    queue), then the batcher drains its queue before the process exits.
    """
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_load_failure(error: BaseException) -> None:
        failures.append(error)
        if server is not None:
            server.should_exit = True

    check_address(config.host, config.port)
    app = create_app(config, on_load_failure)
    if not config.is_loopback and not config.api_key:
        logger.warning("listening on %s without an API key: anyone who can reach this address can use the model", config.host)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=config.access_log,
            http=guarded_protocol(config.max_connections, config.read_timeout_s, config.max_header_bytes),
            limit_concurrency=None,  # the guarded protocol bounds connections, answering in JSON
            timeout_graceful_shutdown=config.graceful_timeout_s,
            server_header=False,
            lifespan="on",
        )
    )
    with _sigterm_is_a_clean_stop():
        server.run()
    return 1 if failures else 0


def check_address(host: str, port: int) -> None:
    """Fail in one line before the model loads (seconds to minutes) when the address cannot be bound."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise InputError(f"cannot listen on {host!r}: {error.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise InputError(f"port {port} on {host} is already in use; stop what holds it or choose another --port") from None
            raise InputError(f"cannot listen on {host}:{port}: {error.strerror}") from None


class _sigterm_is_a_clean_stop:
    """uvicorn re-raises the stop signal after its graceful shutdown; by then SIGTERM has
    done its job, so it should end the process with status 0, not death by signal."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
