"""One real server for the serve tests: the built-in model behind an API key, small limits."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .server_process import ServerProcess, start_server

API_KEY = "test-key-7f3a"
MAX_ITEMS = 256
MAX_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """`polyhead serve` on the default model, shared by every serve test that needs it."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    limits = ["--max-items", str(MAX_ITEMS), "--max-chars", str(MAX_CHARS), "--max-body-bytes", str(MAX_BODY_BYTES)]
    # fp32 (`torch`): bit-exact and independent of which texts share a batch, so the
    # served vectors can be compared with the library's to 1e-5.
    running = start_server(["--api-key", API_KEY, "--backend", "torch", *limits], log)
    yield running
    status = running.stop()
    assert status == 0, running.log()


@pytest.fixture
def client(server) -> Iterator[httpx.Client]:
    """An authorized client of the shared server."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120.0) as http:
        yield http
