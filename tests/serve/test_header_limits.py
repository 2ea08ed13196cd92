"""Request heads are bounded (431 JSON, memory freed), Host is single, and extra hosts add to loopback.

One real server on a tiny model, reached on loopback by raw sockets so that the tests can send
what no well-behaved client library would: megabytes of headers, two Host lines.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from polyhead.serve.config import ServeConfig

from .server_process import ServerProcess, read_answer, start_server

EXTRA_HOSTS = "embed.internal,10.0.0.5"
FLOOD_BYTES = 32 * 1024 * 1024
"""Header bytes each of four flooding clients sends (400 MB each when measured for docs/serving.md)."""
MAX_GROWTH = 24 * 1024 * 1024
"""Most the server's resident memory may grow while four clients flood it (today's unbounded head grew it by GBs)."""


@pytest.fixture(scope="module")
def header_server(tiny_st_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("headers") / "server.log"
    running = start_server([str(tiny_st_dir), "--allowed-hosts", EXTRA_HOSTS, "--no-access-log"], log)
    yield running
    assert running.stop() == 0, running.log()


def _address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _flood(server: ServerProcess, total: int, line_bytes: int, results: list) -> None:
    """Send a GET whose headers add up to `total` bytes in lines of `line_bytes`, then read the answer."""
    connection = socket.create_connection(_address(server), timeout=30)
    try:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Pad: " + b"a" * (line_bytes - 9) + b"\r\n"
        block = line * max(1, (1024 * 1024) // len(line))
        sent = 0
        try:
            while sent < total:
                connection.sendall(block if line_bytes < 1024 * 1024 else line)
                sent += len(block) if line_bytes < 1024 * 1024 else len(line)
            connection.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read what it said
        results.append(read_answer(connection))
    finally:
        connection.close()


def test_a_header_flood_gets_431_and_does_not_grow_the_server(header_server):
    server = psutil.Process(header_server.process.pid)
    baseline = server.memory_info().rss
    peak = baseline
    results: list = []
    clients = [threading.Thread(target=_flood, args=(header_server, FLOOD_BYTES, 1024, results)) for _ in range(3)]
    clients.append(threading.Thread(target=_flood, args=(header_server, FLOOD_BYTES, FLOOD_BYTES, results)))  # one endless line
    for client in clients:
        client.start()
    while any(client.is_alive() for client in clients):
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.01)
    assert len(results) == 4
    for status, body in results:
        assert status == 431, results
        assert body["error"]["type"] == "request_header_fields_too_large" and "64 KiB" in body["error"]["message"]
    assert peak - baseline < MAX_GROWTH, f"server grew by {(peak - baseline) / 2**20:.0f} MiB"
    with httpx.Client(base_url=header_server.url, timeout=10) as http:
        assert http.get("/health").status_code == 200


def test_a_head_just_under_the_limit_is_served(header_server):
    pad = "a" * (ServeConfig.max_header_bytes - 200)
    with httpx.Client(base_url=header_server.url, timeout=10) as http:
        assert http.get("/health", headers={"X-Pad": pad}).status_code == 200
        many = {f"X-Pad-{i}": "b" * 1000 for i in range(70)}  # 70 lines of 1 KB: over the total
        answer = http.get("/health", headers=many)
    assert answer.status_code == 431 and answer.json()["error"]["type"] == "request_header_fields_too_large"


def test_two_host_headers_are_refused(header_server):
    connection = socket.create_connection(_address(header_server), timeout=10)
    connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    status, body = read_answer(connection)
    connection.close()
    assert status == 400 and "Host" in body["error"]["message"]


@pytest.mark.parametrize("host, status", [("embed.internal", 200), ("10.0.0.5:8000", 200), ("127.0.0.1", 200), ("localhost", 200), ("[::1]", 200), ("evil.example", 421)])
def test_allowed_hosts_add_to_the_loopback_names(header_server, host, status):
    with httpx.Client(base_url=header_server.url, timeout=10) as http:
        assert http.get("/health", headers={"Host": host}).status_code == status


def test_allowed_hosts_in_config_and_help():
    from polyhead.serve.config import field_docs

    assert "in addition to localhost, 127.0.0.1, [::1] and the bound host" in field_docs()["allowed_hosts"]  # --help's text
    names = ServeConfig(allowed_hosts="embed.internal").host_names()
    assert names is not None and {"embed.internal", "localhost", "127.0.0.1", "::1"} <= names
    assert ServeConfig(allowed_hosts="*").host_names() is None
