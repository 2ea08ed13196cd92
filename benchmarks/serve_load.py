"""Load test of `polyhead serve` on loopback, against offline `encode` of the same texts.

Starts the server on a free 127.0.0.1 port (or uses --url, which must be a loopback
address), sends real Rotten Tomatoes snippets from --clients concurrent clients for
--duration seconds (and at most --max-requests requests), and prints requests/s,
p50/p99 latency, errors and texts/s. The same texts are encoded offline in this process
before and after the load, and the served throughput is reported as a ratio of that.

    python benchmarks/serve_load.py --clients 32 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402


@dataclass
class LoadResult:
    """What the clients saw."""

    requests: int = 0
    errors: int = 0
    texts: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default: 30)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests (default: 200000)")
    parser.add_argument("--texts-per-request", type=int, default=4, help="texts in each request (default: 4)")
    parser.add_argument("--corpus", type=int, default=2000, help="distinct Rotten Tomatoes texts cycled through (default: 2000)")
    parser.add_argument("--encoding-format", choices=("float", "base64"), default="float")
    parser.add_argument("--offline-batch-size", type=int, default=32, help="batch size of the offline encode reference")
    parser.add_argument("--url", default=None, help="an already running server on a loopback address; default: start one")
    parser.add_argument("--model-dir", default=None, help="model for the started server (default: the built-in model)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for `polyhead serve` (repeatable), e.g. --server-arg=--max-batch-texts=128")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.max_requests < 1 or args.texts_per_request < 1:
        parser.error("--clients, --duration, --max-requests and --texts-per-request must be positive")
    if args.duration > 600:
        parser.error("--duration is capped at 600 s")
    if args.url is not None:
        host = urlsplit(args.url).hostname or ""
        if not _is_loopback(host):
            parser.error(f"--url must point at a loopback address (127.0.0.0/8, ::1, localhost), got {host!r}")
    return args


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_texts(count: int) -> list[str]:
    from polyhead.datasets import rotten_tomatoes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = rotten_tomatoes("sentiment")
    return dataset.train.texts[:count]


# ---------------------------------------------------------------------------- server
def start_server(model_dir: str | None, extra: list[str], log_path: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "polyhead", "serve", *([model_dir] if model_dir else []), "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning", *extra]
    log = open(log_path, "w", encoding="utf-8")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise TimeoutError(f"server not ready after 300 s; see {log_path}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# ---------------------------------------------------------------------------- offline
def offline_texts_per_second(texts: list[str], batch_size: int, encoder=None) -> tuple[float, object]:
    from polyhead import SentenceEncoder

    encoder = encoder or SentenceEncoder()
    encoder.encode(texts[:64], batch_size=batch_size, show_progress=False)  # warm-up
    start = time.perf_counter()
    encoder.encode(texts, batch_size=batch_size, show_progress=False)
    return len(texts) / (time.perf_counter() - start), encoder


# ---------------------------------------------------------------------------- load
async def run_load(url: str, texts: list[str], args: argparse.Namespace, headers: dict[str, str]) -> LoadResult:
    result = LoadResult()
    per = args.texts_per_request
    slices = [texts[i : i + per] for i in range(0, len(texts) - per + 1, per)]
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    counter = iter(range(args.max_requests))

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60.0) as http:
        for body in slices[: args.clients]:  # warm-up, not counted
            await http.post("/v1/embeddings", json={"input": body, "encoding_format": args.encoding_format})
        start = time.perf_counter()
        deadline = start + args.duration

        async def client() -> None:
            while time.perf_counter() < deadline:
                number = next(counter, None)
                if number is None:
                    return
                body = slices[number % len(slices)]
                sent = time.perf_counter()
                try:
                    answer = await http.post("/v1/embeddings", json={"input": body, "encoding_format": args.encoding_format})
                    ok = answer.status_code == 200 and len(answer.json()["data"]) == len(body)
                    problem = f"{answer.status_code}: {answer.text[:200]}"
                except httpx.HTTPError as error:
                    ok, problem = False, repr(error)
                result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                result.requests += 1
                if ok:
                    result.texts += len(body)
                else:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(problem)

        await asyncio.gather(*(client() for _ in range(args.clients)))
        result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = load_texts(args.corpus)
    headers = {"Authorization": f"Bearer {os.environ['POLYHEAD_API_KEY']}"} if os.environ.get("POLYHEAD_API_KEY") else {}
    process = None
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"polyhead-serve-load-{os.getpid()}.log"
    try:
        if args.url is None:
            process, url = start_server(args.model_dir, args.server_arg, log_path)
        else:
            url = args.url.rstrip("/")
        offline_before, encoder = offline_texts_per_second(texts, args.offline_batch_size)
        stats_before = httpx.get(url + "/v1/stats", headers=headers).json()
        load = asyncio.run(run_load(url, texts, args, headers))
        stats_after = httpx.get(url + "/v1/stats", headers=headers).json()
        offline_after, _ = offline_texts_per_second(texts, args.offline_batch_size, encoder)
    finally:
        if process is not None:
            stop_server(process)
    offline = statistics.mean([offline_before, offline_after])
    served = load.texts / load.seconds
    batches = stats_after["batches"] - stats_before["batches"]
    batched_texts = stats_after["texts"] - stats_before["texts"]
    figures = {
        "clients": args.clients,
        "texts_per_request": args.texts_per_request,
        "encoding_format": args.encoding_format,
        "seconds": round(load.seconds, 1),
        "requests": load.requests,
        "requests_per_s": round(load.requests / load.seconds, 1),
        "p50_ms": round(load.percentile(50), 1),
        "p99_ms": round(load.percentile(99), 1),
        "errors": load.errors,
        "served_texts_per_s": round(served, 1),
        "offline_texts_per_s": round(offline, 1),
        "offline_before_after": [round(offline_before, 1), round(offline_after, 1)],
        "ratio_served_to_offline": round(served / offline, 3),
        "mean_batch_texts": round(batched_texts / batches, 1) if batches else 0.0,
    }
    print(f"load: {args.clients} clients x {args.texts_per_request} texts/request, {args.encoding_format}, {load.seconds:.1f} s")
    print(f"requests     {load.requests} ({figures['requests_per_s']} req/s), errors {load.errors}")
    print(f"latency      p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    print(f"served       {figures['served_texts_per_s']} texts/s (mean shared batch {figures['mean_batch_texts']} texts)")
    print(f"offline      {figures['offline_texts_per_s']} texts/s (encode, batch {args.offline_batch_size}; before/after {figures['offline_before_after']})")
    print(f"ratio        {figures['ratio_served_to_offline']} (served / offline)")
    for sample in load.error_samples:
        print(f"error sample: {sample}")
    if args.json is not None:
        args.json.write_text(json.dumps({**figures, "argv": sys.argv[1:]}, indent=2) + "\n")
    return 0 if load.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
