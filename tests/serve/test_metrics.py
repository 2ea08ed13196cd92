"""GET /metrics: Prometheus counts that match the traffic a real server process received."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from polyhead.cli import build_parser
from polyhead.cli.serve import config_from_args
from polyhead.serve import ServeConfig, create_app

from .server_process import ServerProcess, start_server

KEY = "metrics-key-91c2"
AUTH = {"Authorization": f"Bearer {KEY}"}
BATCH = 4
"""--max-batch-texts: a request of 10 texts, alone in the queue, is encoded as batches of 4, 4 and 2."""

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def metrics_server(tiny_st_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    """The tiny encoder behind a key, batches of at most 4 texts that never wait for company."""
    log = tmp_path_factory.mktemp("metrics") / "server.log"
    batching = ["--max-batch-texts", str(BATCH), "--slice-texts", str(BATCH), "--batch-wait-ms", "0"]
    running = start_server([str(tiny_st_dir), "--api-key", KEY, *batching, "--no-access-log"], log)
    yield running
    assert running.stop() == 0, running.log()


def scrape(url: str) -> Samples:
    answer = httpx.get(url + "/metrics", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_batches_texts_and_tokens(metrics_server, sentiment):
    url = metrics_server.url
    texts = sentiment.train.texts[:13]
    before = scrape(url)
    with httpx.Client(base_url=url, headers=AUTH, timeout=60.0) as http:
        ten = http.post("/v1/embeddings", json={"input": texts[:10]})
        three = http.post("/v1/embeddings", json={"input": texts[10:]})
        empty = http.post("/v1/embeddings", json={"input": []})
        probes = [http.get("/wp-login.php"), http.get("/v1/embeddings/12345"), http.post("/health")]
    keyless = httpx.post(url + "/v1/embeddings", json={"input": "hi"})
    assert (ten.status_code, three.status_code, empty.status_code, keyless.status_code) == (200, 200, 422, 401)
    assert [probe.status_code for probe in probes] == [404, 404, 405]
    after = scrape(url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "polyhead_http_requests_total"
    assert grew(requests, endpoint="/v1/embeddings", status="200") == 2
    assert grew(requests, endpoint="/v1/embeddings", status="422") == 1
    assert grew(requests, endpoint="/v1/embeddings", status="401") == 1
    assert grew(requests, endpoint="/health", status="405") == 1
    assert grew(requests, endpoint="other", status="404") == 2  # raw paths never become labels
    endpoints = {dict(labels)["endpoint"] for name, labels in after if name == requests}
    assert endpoints <= {"/v1/embeddings", "/health", "/metrics", "other"}
    assert grew("polyhead_http_request_duration_seconds_count", endpoint="/v1/embeddings") == 4
    assert grew("polyhead_http_request_duration_seconds_bucket", endpoint="/v1/embeddings", le="+Inf") == 4
    assert grew("polyhead_http_request_duration_seconds_sum", endpoint="/v1/embeddings") > 0

    # 10 texts: batches of 4, 4 and 2; then 3 texts: one batch of 3.
    assert grew("polyhead_batch_texts_count") == 4
    assert grew("polyhead_batch_texts_sum") == 13
    assert grew("polyhead_batch_texts_bucket", le="2.0") == 1
    assert grew("polyhead_batch_texts_bucket", le="4.0") == 4
    assert grew("polyhead_texts_embedded_total") == 13
    sent_tokens = ten.json()["usage"]["total_tokens"] + three.json()["usage"]["total_tokens"]
    assert grew("polyhead_tokens_embedded_total") == sent_tokens
    assert value(after, "polyhead_queued_texts") == 0
    assert value(after, "polyhead_model_load_seconds") > 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["missing", "wrong"])
def test_metrics_need_the_api_key(metrics_server, headers):
    answer = httpx.get(metrics_server.url + "/metrics", headers=headers)
    assert answer.status_code == 401, answer.text
    assert "polyhead_" not in answer.text


def _local(config: ServeConfig) -> TestClient:
    """The app in-process, model not loaded (no lifespan): enough for routing and the key."""
    return TestClient(create_app(config), base_url="http://localhost")


def test_no_metrics_auth_opens_metrics_only():
    client = _local(ServeConfig(api_key=KEY, metrics_auth=False))
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert any(family.name == "polyhead_http_requests" for family in text_string_to_metric_families(answer.text))
    assert client.get("/v1/stats").status_code == 401


def test_no_metrics_removes_the_endpoint():
    client = _local(ServeConfig(metrics=False))
    assert client.get("/metrics").status_code == 404


def test_metrics_flags():
    config = config_from_args(build_parser().parse_args(["serve", "--no-metrics", "--no-metrics-auth"]))
    assert (config.metrics, config.metrics_auth) == (False, False)
    config = config_from_args(build_parser().parse_args(["serve"]))
    assert (config.metrics, config.metrics_auth) == (True, True)


def test_each_app_has_its_own_registry():
    first, second = _local(ServeConfig()), _local(ServeConfig())
    first.get("/health")
    first.get("/health")
    second.get("/health")

    def health_503(client: TestClient) -> float:
        families = text_string_to_metric_families(client.get("/metrics").text)
        samples = {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}
        return value(samples, "polyhead_http_requests_total", endpoint="/health", status="503")

    assert (health_503(first), health_503(second)) == (2, 1)
