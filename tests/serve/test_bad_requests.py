"""Every bad request gets its 4xx with a readable message, and the server keeps answering."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import API_KEY, MAX_BODY_BYTES, MAX_CHARS, MAX_ITEMS

JSON = {"Content-Type": "application/json"}

# (name, request body as bytes or JSON-able, expected status, words the message must hold)
BAD_BODIES = [
    ("not json", b'{"input": ["a",', 400, "not valid JSON"),
    ("not utf-8", b'{"input": "\xff\xfe"}', 400, "not valid JSON"),
    ("array body", [1, 2], 422, "must be a JSON object"),
    ("missing input", {"model": "m"}, 422, "'input' is required"),
    ("input number", {"input": 3}, 422, "must be a string or a list of strings"),
    ("input null", {"input": None}, 422, "must be a string or a list of strings"),
    ("item number", {"input": ["ok", 7]}, 422, "input[1] must be a string"),
    ("token arrays", {"input": [[101, 2023, 102]]}, 422, "token arrays are not supported"),
    ("empty list", {"input": []}, 422, "must not be empty"),
    ("empty string", {"input": ""}, 422, "empty string"),
    ("empty item", {"input": ["ok", ""]}, 422, "input[1] is an empty string"),
    ("too many items", {"input": ["a"] * (MAX_ITEMS + 1)}, 422, f"the limit is {MAX_ITEMS}"),
    ("too long item", {"input": ["ok", "x" * (MAX_CHARS + 1)]}, 422, f"input[1] has {MAX_CHARS + 1} characters"),
    ("lone surrogate", b'{"input": ["ok", "\\ud800"]}', 422, "not valid Unicode"),
    ("unknown field", {"input": "ok", "normalise": True}, 422, "unknown field 'normalise'"),
    ("bad encoding", {"input": "ok", "encoding_format": "int8"}, 422, "encoding_format"),
    ("string for bool", {"input": "ok", "normalize": "yes"}, 422, "normalize"),
    ("wrong dimensions", {"input": "ok", "dimensions": 256}, 422, "'dimensions' must be 384"),
    ("body too large", {"input": ["x" * 1000] * (MAX_BODY_BYTES // 1000 + 1)}, 413, f"limit of {MAX_BODY_BYTES} bytes"),
]


def _still_serving(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    answer = client.post("/v1/embeddings", json={"input": "still here"})
    assert answer.status_code == 200 and len(answer.json()["data"][0]["embedding"]) == 384


def _assert_error(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert words in error["message"], error
    assert "Traceback" not in answer.text and 'File "' not in answer.text


@pytest.mark.parametrize("name,body,status,words", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_body_gets_4xx(client, name, body, status, words):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    _assert_error(client.post("/v1/embeddings", content=content, headers=JSON), status, words)
    _still_serving(client)


def test_bad_predict_body_gets_4xx(client):
    _assert_error(client.post("/v1/predict", json={"input": 5}), 422, "must be a string or a list of strings")
    _still_serving(client)


def test_streamed_body_over_the_limit_gets_413(client):
    """No Content-Length: the bytes are counted as they stream in."""

    def chunks():
        for _ in range(4 * MAX_BODY_BYTES // 8192):
            yield b" " * 8192

    _assert_error(client.post("/v1/embeddings", content=chunks(), headers=JSON), 413, "larger than the limit")
    _still_serving(client)


def test_huge_declared_length_is_refused_before_reading(server, client):
    """A 100 GB Content-Length is answered at once, without waiting for any of it."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as raw:
        raw.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {API_KEY}\r\nContent-Length: 100000000000\r\n\r\n".encode()
        )
        head = raw.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")
    _still_serving(client)


def test_form_body_gets_415(client):
    _assert_error(client.post("/v1/embeddings", data={"input": "x"}), 415, "Content-Type: application/json")
    _still_serving(client)


def test_wrong_method_and_route(client):
    _assert_error(client.get("/v1/embeddings"), 405, "not allowed")
    _assert_error(client.post("/v1/nothing", json={}), 404, "no route")
    _still_serving(client)


def test_predict_without_heads_says_so(client):
    _assert_error(client.post("/v1/predict", json={"input": ["fine"]}), 404, "no task heads")
    _still_serving(client)
