"""The API key: every model route needs `Authorization: Bearer <key>`; /health stays open."""

from __future__ import annotations

import httpx
import pytest

from .conftest import API_KEY

WRONG_HEADERS = [
    {},
    {"Authorization": "Bearer not-the-key"},
    {"Authorization": f"Basic {API_KEY}"},
    {"Authorization": f"Bearer {API_KEY}x"},
    {"Authorization": "Bearer"},
]


@pytest.mark.parametrize("headers", WRONG_HEADERS, ids=["missing", "wrong", "basic-scheme", "longer", "empty"])
@pytest.mark.parametrize("method,path", [("POST", "/v1/embeddings"), ("POST", "/v1/predict"), ("GET", "/v1/models"), ("GET", "/v1/stats")])
def test_missing_or_wrong_key_gets_401(server, headers, method, path):
    answer = httpx.request(method, server.url + path, headers=headers, json={"input": "hi"} if method == "POST" else None)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in answer.json()["error"]["message"]


def test_right_key_is_accepted(server):
    answer = httpx.post(server.url + "/v1/embeddings", headers={"Authorization": f"Bearer {API_KEY}"}, json={"input": "hi"})
    assert answer.status_code == 200


def test_health_and_docs_stay_open(server):
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/openapi.json").status_code == 200
