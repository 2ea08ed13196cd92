"""/v1/embeddings against the real server: OpenAI's shape, the library's numbers, shared batches."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Literal

import httpx
import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from .conftest import API_KEY

TOLERANCE = 1e-5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OpenAIEmbedding(_Strict):
    """OpenAI's `Embedding` object: exactly these fields."""

    object: Literal["embedding"]
    index: int
    embedding: list[float]


class OpenAIUsage(_Strict):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(_Strict):
    """OpenAI's `CreateEmbeddingResponse`."""

    object: Literal["list"]
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


def _matrix(body: dict) -> np.ndarray:
    return np.array([item["embedding"] for item in sorted(body["data"], key=lambda d: d["index"])], dtype=np.float32)


def test_health_said_loading_before_ready(server):
    """The socket opens before the model loads: /health answers 503 "loading" until then."""
    codes = [code for code, _ in server.startup_health]
    assert codes[-1] == 200
    assert 503 in codes, codes
    assert all(body == {"status": "loading"} for code, body in server.startup_health if code == 503)


def test_embeddings_match_library_and_openai_schema(client, encoder, rt_texts):
    texts = rt_texts[:24]
    answer = client.post("/v1/embeddings", json={"input": texts, "model": "text-embedding-3-small"})
    assert answer.status_code == 200, answer.text
    body = OpenAIEmbeddingsResponse.model_validate(answer.json()).model_dump()
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    assert body["model"] == "all-MiniLM-L6-v2"
    served = _matrix(body)
    expected = encoder.encode(texts, show_progress=False, backend="torch")
    assert served.shape == (len(texts), encoder.embedding_dim)
    assert np.abs(served - expected).max() <= TOLERANCE
    tokens = sum(len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=encoder.max_seq_length)["input_ids"])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_single_string_input(client, encoder):
    answer = client.post("/v1/embeddings", json={"input": "A gripping, beautifully shot thriller."})
    body = OpenAIEmbeddingsResponse.model_validate(answer.json()).model_dump()
    assert len(body["data"]) == 1
    expected = encoder.encode("A gripping, beautifully shot thriller.", show_progress=False, backend="torch")
    assert np.abs(np.array(body["data"][0]["embedding"], dtype=np.float32) - expected).max() <= TOLERANCE


def test_base64_format_decodes_to_the_same_vectors(client, encoder, rt_texts):
    texts = rt_texts[24:30]
    answer = client.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"})
    assert answer.status_code == 200, answer.text
    vectors = np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in answer.json()["data"]])
    assert np.abs(vectors - encoder.encode(texts, show_progress=False, backend="torch")).max() <= TOLERANCE


def test_normalize_false_gives_raw_vectors(client, encoder, rt_texts):
    texts = rt_texts[30:34]
    raw = _matrix(client.post("/v1/embeddings", json={"input": texts, "normalize": False}).json())
    expected = encoder.encode(texts, normalize=False, show_progress=False, backend="torch")
    assert np.abs(raw - expected).max() <= TOLERANCE * np.abs(expected).max()
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)


def test_models_lists_the_served_model(client, encoder):
    answer = client.get("/v1/models")
    assert answer.status_code == 200
    (card,) = answer.json()["data"]
    assert card["id"] == "all-MiniLM-L6-v2" and card["object"] == "model"
    assert card["embedding_dim"] == encoder.embedding_dim
    assert card["pooling"] == encoder.pooling_mode and card["normalize"] is True
    assert card["tasks"] == []


def test_openapi_and_docs_are_served(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/embeddings", "/v1/predict", "/v1/models", "/health"} <= set(spec["paths"])
    request_schema = spec["components"]["schemas"]["EmbeddingsRequest"]
    assert {"input", "model", "encoding_format"} <= set(request_schema["properties"])
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def _post_all(url: str, bodies: list[dict]) -> list[tuple[float, httpx.Response]]:
    """POST every body at once; each answer with the second it arrived."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120.0, limits=limits) as http:
        async def one(body: dict, delay: float) -> tuple[float, httpx.Response]:
            await asyncio.sleep(delay)
            answer = await http.post("/v1/embeddings", json=body)
            return time.monotonic(), answer

        return await asyncio.gather(*(one(b, b.pop("_delay", 0.0)) for b in bodies))


def test_concurrent_requests_share_batches(server, client, encoder, rt_texts):
    texts = rt_texts[40:104]
    requests = [{"input": texts[i : i + 4]} for i in range(0, len(texts), 4)]
    before = client.get("/v1/stats").json()
    answers = asyncio.run(_post_all(server.url, requests))
    after = client.get("/v1/stats").json()
    for request, (_, answer) in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        assert np.abs(_matrix(answer.json()) - encoder.encode(request["input"], show_progress=False, backend="torch")).max() <= TOLERANCE
    batches = after["batches"] - before["batches"]
    assert after["texts"] - before["texts"] == len(texts)
    assert batches < len(requests), f"{len(requests)} concurrent requests ran in {batches} batches"


@pytest.mark.slow
def test_big_request_does_not_hold_up_small_ones(server, sentiment):
    """Round-robin slices: small requests sent after a 256-text one finish before it."""
    big = {"input": sentiment.train.texts[1000:1256]}
    small = [{"input": [text], "_delay": 0.3} for text in sentiment.train.texts[2000:2004]]
    answers = asyncio.run(_post_all(server.url, [big, *small]))
    assert all(answer.status_code == 200 for _, answer in answers)
    big_done = answers[0][0]
    assert all(done < big_done for done, _ in answers[1:])
