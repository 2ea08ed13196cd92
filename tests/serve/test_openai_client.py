"""A real `polyhead serve` on loopback, its key from $POLYHEAD_API_KEY, used by OpenAI's own client."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from polyhead import SentenceEncoder

from .server_process import ServerProcess, start_server

ENV_KEY = "env-key-91c2"


@pytest.fixture(scope="module")
def env_key_server(tiny_st_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    """The tiny saved encoder served with no --api-key flag: the key comes from the environment only."""
    log = tmp_path_factory.mktemp("serve-env-key") / "server.log"
    running = start_server([str(tiny_st_dir), "--backend", "torch"], log, env={"POLYHEAD_API_KEY": ENV_KEY})
    yield running
    assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def texts(rt_texts) -> list[str]:
    return rt_texts[:12]


def test_the_environment_key_guards_a_real_server(env_key_server):
    url = env_key_server.url + "/v1/embeddings"
    assert httpx.post(url, json={"input": "hi"}).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer wrong"}, json={"input": "hi"}).status_code == 401
    assert httpx.post(url, headers={"Authorization": f"Bearer {ENV_KEY}"}, json={"input": "hi"}).status_code == 200
    assert ENV_KEY not in env_key_server.log(), "the key is never logged"


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"], ids=["client-default", "float", "base64"])
def test_openai_client_gets_the_vectors_encode_gives(env_key_server, tiny_st_dir, texts, encoding_format):
    expected = SentenceEncoder(tiny_st_dir, device="cpu").encode(texts, backend="torch")
    client = openai.OpenAI(base_url=env_key_server.url + "/v1", api_key=ENV_KEY, max_retries=0)
    options = {"encoding_format": encoding_format} if encoding_format else {}
    answer = client.embeddings.create(model="polyhead", input=texts, **options)
    assert [item.index for item in answer.data] == list(range(len(texts)))
    if encoding_format == "base64":  # asked for explicitly, the client hands the string over undecoded
        vectors = np.stack([np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in answer.data])
    else:  # the client's default asks for base64 and decodes it; "float" comes as numbers
        vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    assert vectors.shape == expected.shape
    assert np.abs(vectors - expected).max() <= 1e-5
    assert answer.usage.prompt_tokens > len(texts)


def test_openai_client_with_a_wrong_key_gets_an_authentication_error(env_key_server):
    client = openai.OpenAI(base_url=env_key_server.url + "/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="polyhead", input="hi")
