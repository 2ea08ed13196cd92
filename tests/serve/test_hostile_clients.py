"""A real server against clients that stall, vanish, lie about their Host, flood it or outlast shutdown.

One server process on a tiny model serves every test here. It encodes one text per shared
batch, so queued work stays visible for a while; its read timeout (3 s) is longer than any
answer these tests wait for, so what keeps the server answering is the guard under test,
not the timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from .server_process import ServerProcess, read_answer, start_server

READ_TIMEOUT_S = 3.0
SLOW = ["--max-batch-texts", "1", "--slice-texts", "1", "--encode-batch-size", "1"]
MIXED_LOAD_S = 5.0
"""How long 64 clients load the server in the mixed test (20 s when measured for docs/serving.md)."""


@pytest.fixture(scope="module")
def hostile_server(tiny_st_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    args = [str(tiny_st_dir), *SLOW, "--read-timeout-s", str(READ_TIMEOUT_S), "--graceful-timeout-s", "1", "--no-access-log"]
    running = start_server(args, log)
    yield running
    running.stop()


def _address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _raw(server: ServerProcess, payload: bytes) -> socket.socket:
    connection = socket.create_connection(_address(server), timeout=10)
    connection.sendall(payload)
    return connection


def _post_head(server: ServerProcess, length: int) -> bytes:
    return (
        f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1:{_address(server)[1]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_stalled_connections_do_not_lock_anyone_out(hostile_server):
    stalled = [_raw(hostile_server, _post_head(hostile_server, 1000) + b'{"input": ["half a bo') for _ in range(256)]
    stalled += [_raw(hostile_server, b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le") for _ in range(16)]
    try:
        started = time.monotonic()
        with httpx.Client(base_url=hostile_server.url, timeout=10) as http:
            health = http.get("/health")
            answer = http.post("/v1/embeddings", json={"input": ["a well-behaved client"]})
        elapsed = time.monotonic() - started
        assert health.status_code == 200 and answer.status_code == 200, (health.text, answer.text)
        assert elapsed < 2.0, f"answers took {elapsed:.2f} s with 272 stalled connections open"
        # The stalled bodies still open are answered 408 JSON at the read timeout (the
        # oldest were closed to make room); the stalled headers are closed unanswered.
        answers = [read_answer(connection) for connection in stalled]
        assert {status for status, _ in answers[:256]} <= {0, 408}
        assert sum(status == 408 for status, _ in answers[:256]) >= 200
        timed_out = next(body for status, body in answers if status == 408)
        assert timed_out["error"]["code"] == "timeout"
        assert {status for status, _ in answers[256:]} == {0}
    finally:
        for connection in stalled:
            connection.close()


def test_abandoned_requests_leave_the_queue(hostile_server, sentiment):
    texts = (sentiment.train.texts * 4)[:2048]
    body = json.dumps({"input": texts}).encode()
    clients = [_raw(hostile_server, _post_head(hostile_server, len(body)) + body) for _ in range(4)]
    with httpx.Client(base_url=hostile_server.url, timeout=10) as http:
        time.sleep(0.3)
        assert http.get("/v1/stats").json()["queued_texts"] > 4000, "the requests never queued: the test proves nothing"
        for connection in clients:
            connection.close()
        disconnected = time.monotonic()
        while (queued := http.get("/v1/stats").json()["queued_texts"]) and time.monotonic() - disconnected < 5:
            time.sleep(0.05)
        freed_after = time.monotonic() - disconnected
        assert queued == 0
        assert freed_after < 1.5, f"the queue emptied {freed_after:.2f} s after the clients left"
        encoded_before = http.get("/v1/stats").json()["texts"]
        answer = http.post("/v1/embeddings", json={"input": ["still served"]})
        assert answer.status_code == 200, answer.text
        assert http.get("/v1/stats").json()["texts"] - encoded_before < 32, "abandoned texts were still encoded"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.2", ""])
def test_a_foreign_host_is_refused(hostile_server, host):
    header = f"Host: {host}\r\n" if host else ""
    connection = _raw(hostile_server, f"GET /health HTTP/1.1\r\n{header}\r\n".encode())
    status, body = read_answer(connection)
    assert status == 421
    assert body["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_local_names_are_served(hostile_server, host):
    port = _address(hostile_server)[1]
    answer = httpx.get(hostile_server.url + "/health", headers={"Host": f"{host}:{port}"})
    assert answer.status_code == 200


@pytest.mark.parametrize("megabytes", [20, 200])
def test_a_huge_body_from_urllib_gets_413_json(hostile_server, megabytes):
    request = urllib.request.Request(
        hostile_server.url + "/v1/embeddings", data=b"x" * (megabytes * 1_000_000), headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "larger than the limit" in json.loads(refused.value.read())["error"]["message"]


def test_malformed_http_gets_json(hostile_server):
    status, body = read_answer(_raw(hostile_server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n"))
    assert status == 400
    assert body["error"]["message"].startswith("malformed HTTP request")


def test_mixed_clients_get_no_undocumented_5xx(hostile_server, sentiment):
    """64 concurrent clients for MIXED_LOAD_S, half of them sending requests that are wrong in various ways."""
    bad_bodies = [b"{not json", b'{"input": []}', b'{"input": [1, 2]}', b'{"input": "x", "dimensions": 7}', b'[]',
                  json.dumps({"input": ["x"] * 5000}).encode(), b'{"input": "\\ud800"}']

    resets: list[int] = []

    async def post(http: httpx.AsyncClient, **request) -> httpx.Response:
        """One retry when a kept-alive connection was closed as the request went out (idle past the read
        timeout: the server may close it, and HTTP keep-alive cannot rule out that race)."""
        try:
            return await http.post("/v1/embeddings", **request)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            resets.append(1)
            return await http.post("/v1/embeddings", **request)

    async def client(index: int, http: httpx.AsyncClient, until: float) -> list[int]:
        statuses = []
        while time.monotonic() < until:
            if index % 2:
                body = bad_bodies[(index + len(statuses)) % len(bad_bodies)]
                answer = await post(http, content=body, headers={"Content-Type": "application/json"})
            else:
                answer = await post(http, json={"input": sentiment.train.texts[index : index + 2]})
            statuses.append(answer.status_code)
            if answer.status_code >= 500:
                assert answer.json()["error"]["type"] == "service_unavailable", answer.text
        return statuses

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=hostile_server.url, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
            until = time.monotonic() + MIXED_LOAD_S
            return [s for batch in await asyncio.gather(*(client(i, http, until) for i in range(64))) for s in batch]

    statuses = asyncio.run(run())
    print(f"{len(statuses)} answers in {MIXED_LOAD_S:g} s: " + ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses)))
          + f"; {len(resets)} kept-alive connections closed under a request")
    assert len(resets) <= max(2, len(statuses) // 50)
    assert 200 in statuses and 422 in statuses and 400 in statuses
    assert {s for s in statuses if s >= 500} <= {503}, sorted(set(statuses))


def test_requests_cut_off_by_shutdown_get_json_503(hostile_server, sentiment):
    """SIGTERM with more work queued than the 1 s grace period allows. Last here: it stops the server."""
    server = hostile_server
    texts = (sentiment.train.texts * 4)[:2048]

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            pending = [asyncio.create_task(http.post("/v1/embeddings", json={"input": texts})) for _ in range(2)]
            while (await http.get("/v1/stats")).json()["queued_texts"] < 3000:
                await asyncio.sleep(0.05)
            os.kill(server.process.pid, signal.SIGTERM)
            return await asyncio.gather(*pending)

    started = time.monotonic()
    answers = asyncio.run(scenario())
    status = server.process.wait(30)
    stopped_in = time.monotonic() - started
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["type"] == "service_unavailable"
    assert status == 0
    assert stopped_in < 10, f"shutdown took {stopped_in:.1f} s"
    assert "CancelledError" not in server.log()
