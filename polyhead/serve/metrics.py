"""Prometheus metrics for `polyhead serve`: what an operator graphs and alerts on.

Each app owns its own `CollectorRegistry`, so several apps in one process (tests, an
embedding app mounted next to another) never share or collide on counters. Label values
are bounded: a request's endpoint is the route template it matched, and every path that
matches no route counts as "other", so scanners probing random URLs cannot grow the series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED_ENDPOINT = "other"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def batch_buckets(max_batch_texts: int) -> tuple[float, ...]:
    """Powers of two up to the largest possible batch, which gets a bucket of its own."""
    edges = [1]
    while edges[-1] * 2 < max_batch_texts:
        edges.append(edges[-1] * 2)
    if edges[-1] != max_batch_texts:
        edges.append(max_batch_texts)
    return tuple(float(edge) for edge in edges)


class ServerMetrics:
    """The server's counters, histograms and gauges, in a registry of their own."""

    def __init__(self, *, max_batch_texts: int, queued_texts: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "polyhead_http_requests", "HTTP requests answered, by route template and status code.",
            ("endpoint", "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "polyhead_http_request_duration_seconds", "Time from a request's arrival to the end of its answer, by route template.",
            ("endpoint",), buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.batch_texts = Histogram(
            "polyhead_batch_texts", "Texts in each shared batch the model encoded.",
            buckets=batch_buckets(max_batch_texts), registry=self.registry,
        )
        self.texts = Counter("polyhead_texts_embedded", "Texts encoded by the model for requests.", registry=self.registry)
        self.tokens = Counter(
            "polyhead_tokens_embedded", "Tokens of the texts encoded for requests, after truncation, special tokens included.",
            registry=self.registry,
        )
        self.queue = Gauge("polyhead_queued_texts", "Texts waiting to be encoded.", registry=self.registry)
        self.queue.set_function(lambda: float(queued_texts()))
        self.load_seconds = Gauge(
            "polyhead_model_load_seconds", "Seconds the model took to load and warm up (0 until it is ready).",
            registry=self.registry,
        )

    def batch_done(self, texts: int, tokens: int) -> None:
        """One shared batch was encoded; called on the model thread (the metrics are thread-safe)."""
        self.batch_texts.observe(texts)
        self.texts.inc(texts)
        self.tokens.inc(tokens)

    def model_loaded(self, seconds: float) -> None:
        self.load_seconds.set(seconds)

    def request_done(self, endpoint: str, status: int | str, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def endpoint_of(scope: Scope, routes: Sequence[Route]) -> str:
    """The template of the route `scope` matches (also on a wrong method), else "other"."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return route.path
    return UNMATCHED_ENDPOINT


class RequestMetrics:
    """Counts every answered request and its latency; outermost, so refusals by the other
    middlewares (401, 413, 421) and the last-resort 500/503 are counted too."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, routes: Sequence[Route]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | str = "none"  # no answer was started: the connection was lost first

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            self.metrics.request_done(endpoint_of(scope, self.routes), status, time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format: requests, latency, batch sizes, queue depth, texts and tokens, load time."""
    metrics: ServerMetrics = request.app.state.polyhead.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
