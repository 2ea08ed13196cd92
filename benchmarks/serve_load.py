"""Load test of `polyhead serve` on loopback, against offline `encode` of the same texts.

Starts the server on a free 127.0.0.1 port (or uses --url, which must be a loopback
address), sends real Rotten Tomatoes snippets from --clients concurrent clients for
--duration seconds (and at most --max-requests requests), and prints requests/s,
p50/p99 latency, errors and texts/s. The load runs in --rounds rounds; the same texts are
encoded offline in this process before the first round and after each one, and each
round's served texts/s is divided by the mean of the offline runs around it (the machine's
speed drifts, so only neighbours in time compare). The reported ratio is their median.

    python benchmarks/serve_load.py --clients 32 --duration 30
    python benchmarks/serve_load.py --device cuda --clients 64 --texts-per-request 16 --corpus 4096 \
        --server-arg=--max-batch-texts=1024 --server-arg=--batch-wait-ms=2     # on a GPU
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
    parser.add_argument("--rounds", type=int, default=3, help="load rounds, each between two offline runs (default: 3)")
    parser.add_argument("--corpus", type=int, default=512, help="distinct Rotten Tomatoes texts cycled through and encoded offline (default: 512)")
    parser.add_argument("--encoding-format", choices=("float", "base64"), default="float")
    parser.add_argument("--offline-batch-size", type=int, default=32, help="batch size of the offline encode reference")
    parser.add_argument("--threads", type=int, default=None, help="cores encoding uses, in the server and offline alike (default: all)")
    parser.add_argument("--backend", default=None, help="encode backend, in the server and offline alike (default: the encoder's, auto)")
    parser.add_argument("--device", default=None, help="torch device, in the server and offline alike (cpu, cuda; default: cuda when available)")
    parser.add_argument("--url", default=None, help="an already running server on a loopback address; default: start one")
    parser.add_argument("--model-dir", default=None, help="model for the started server (default: the built-in model)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for `polyhead serve` (repeatable), e.g. --server-arg=--max-batch-texts=128")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if min(args.clients, args.max_requests, args.texts_per_request, args.rounds) < 1 or args.duration <= 0:
        parser.error("--clients, --duration, --max-requests, --texts-per-request and --rounds must be positive")
    if args.corpus < args.texts_per_request:
        parser.error("--corpus must hold at least --texts-per-request texts")
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
def offline_texts_per_second(texts: list[str], batch_size: int, model_dir: str | None = None, encoder=None,
                             device: str | None = None) -> tuple[float, float, object]:
    """(texts/s, CPU seconds per text) of `encode` on the served model's encoder.

    A MultiTaskModel directory holds an encoder too, so SentenceEncoder loads either kind.
    On a GPU the warm-up encodes every text once (every shape warmed, `auto`'s probe made)
    and the clock is read after a device synchronize.
    """
    import torch

    from polyhead import SentenceEncoder

    encoder = encoder or SentenceEncoder(model_dir, device=device)
    on_gpu = encoder.device.type == "cuda"
    encoder.encode(texts if on_gpu else texts[:64], batch_size=batch_size, show_progress=False)  # warm-up
    if on_gpu:
        torch.cuda.synchronize(encoder.device)
    cpu, start = time.process_time(), time.perf_counter()
    encoder.encode(texts, batch_size=batch_size, show_progress=False)
    if on_gpu:
        torch.cuda.synchronize(encoder.device)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(texts) / wall, cpu / len(texts), encoder


def cpu_seconds(pid: int | None) -> float:
    """CPU time a process has used so far (user + system, all threads)."""
    if pid is None:
        return float("nan")
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


# ---------------------------------------------------------------------------- load
class Connection:
    """One keep-alive HTTP/1.1 connection, just enough to POST JSON and read the answer.

    The load generator shares this machine's cores with the server, so it should cost as
    little CPU per request as it can: a general client library costs several times more.
    """

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n{self.extra}\r\n"
        self.writer.write(head.encode() + payload)
        status = int((await self.reader.readline()).split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_load(url: str, slices: list[list[str]], args: argparse.Namespace, headers: dict[str, str], seconds: float, counter) -> LoadResult:
    """`args.clients` clients, one connection each, posting back to back for `seconds`, or
    until `counter` runs out. An answer counts only if it is 200 with one vector per text."""
    result = LoadResult()
    address = urlsplit(url)
    bodies = [json.dumps({"input": texts, "encoding_format": args.encoding_format}).encode() for texts in slices]
    connections = [Connection(address.hostname or "127.0.0.1", address.port or 80, headers) for _ in range(args.clients)]
    # Warm-up, not counted: opens every connection and runs a first round of batches.
    await asyncio.gather(*(c.post("/v1/embeddings", bodies[i % len(bodies)]) for i, c in enumerate(connections)))
    start = time.perf_counter()
    deadline = start + seconds

    async def client(connection: Connection) -> None:
        while time.perf_counter() < deadline:
            number = next(counter, None)
            if number is None:
                return
            texts = slices[number % len(slices)]
            sent = time.perf_counter()
            try:
                status, body = await connection.post("/v1/embeddings", bodies[number % len(bodies)])
                ok = status == 200 and len(json.loads(body)["data"]) == len(texts)
                problem = f"{status}: {body[:200]!r}"
            except (OSError, ValueError, KeyError, asyncio.IncompleteReadError) as error:
                connection.close()
                ok, problem = False, repr(error)
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            result.requests += 1
            if ok:
                result.texts += len(texts)
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(problem)

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        from polyhead.inference import set_threads

        set_threads(args.threads)
        args.server_arg.append(f"--threads={args.threads}")
    if args.backend is not None:
        os.environ["POLYHEAD_BACKEND"] = args.backend  # the offline encoder's default
        args.server_arg.append(f"--backend={args.backend}")
    if args.device is not None:
        args.server_arg.append(f"--device={args.device}")
    texts = load_texts(args.corpus)
    per = args.texts_per_request
    slices = [texts[i : i + per] for i in range(0, len(texts) - per + 1, per)]
    headers = {"Authorization": f"Bearer {os.environ['POLYHEAD_API_KEY']}"} if os.environ.get("POLYHEAD_API_KEY") else {}
    counter = iter(range(args.max_requests))
    process = None
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"polyhead-serve-load-{os.getpid()}.log"
    rounds: list[tuple[LoadResult, float]] = []
    offline: list[float] = []
    offline_cpu: list[float] = []
    served_cpu: list[float] = []
    try:
        if args.url is None:
            process, url = start_server(args.model_dir, args.server_arg, log_path)
        else:
            url = args.url.rstrip("/")
        rate, cpu_per_text, encoder = offline_texts_per_second(texts, args.offline_batch_size, args.model_dir, device=args.device)
        offline.append(rate)
        offline_cpu.append(cpu_per_text)
        stats_before = httpx.get(url + "/v1/stats", headers=headers).json()
        for _ in range(args.rounds):
            server_cpu = cpu_seconds(process.pid if process else None)
            load = asyncio.run(run_load(url, slices, args, headers, args.duration / args.rounds, counter))
            served_cpu.append(cpu_seconds(process.pid if process else None) - server_cpu)
            rate, cpu_per_text, _ = offline_texts_per_second(texts, args.offline_batch_size, encoder=encoder)
            offline.append(rate)
            offline_cpu.append(cpu_per_text)
            rounds.append((load, rate))
            if args.json is not None:  # each finished round, so a run cut short by a timeout keeps them
                done = [{"requests": r.requests, "errors": r.errors, "texts_per_s": r.texts / r.seconds, "p50_ms": r.percentile(50),
                         "p99_ms": r.percentile(99)} for r, _ in rounds]
                args.json.write_text(json.dumps({"partial": True, "argv": sys.argv[1:], "offline_runs": offline, "rounds": done}) + "\n")
        stats_after = httpx.get(url + "/v1/stats", headers=headers).json()
    finally:
        if process is not None:
            stop_server(process)
    # Each round against the mean of the offline runs just before and after it: the machine's
    # speed drifts, so only neighbours in time compare fairly.
    ratios = [(load.texts / load.seconds) / statistics.mean(offline[i : i + 2]) for i, (load, _) in enumerate(rounds)]
    total = LoadResult(
        requests=sum(r.requests for r, _ in rounds),
        errors=sum(r.errors for r, _ in rounds),
        texts=sum(r.texts for r, _ in rounds),
        seconds=sum(r.seconds for r, _ in rounds),
        latencies_ms=[x for r, _ in rounds for x in r.latencies_ms],
        error_samples=[x for r, _ in rounds for x in r.error_samples][:5],
    )
    batches = stats_after["batches"] - stats_before["batches"]
    # CPU time per text is steadier than wall time on a shared machine: other processes
    # slow both sides, but do not add to their CPU time.
    served_cpu_per_text = sum(served_cpu) / max(total.texts, 1)
    figures = {
        "threads": args.threads,
        "device": str(encoder.device),
        "backend": getattr(encoder.last_encode_stats, "backend", None) or args.backend,
        "clients": args.clients,
        "texts_per_request": per,
        "encoding_format": args.encoding_format,
        "seconds": round(total.seconds, 1),
        "requests": total.requests,
        "requests_per_s": round(total.requests / total.seconds, 1),
        "p50_ms": round(total.percentile(50), 1),
        "p99_ms": round(total.percentile(99), 1),
        "errors": total.errors,
        "served_texts_per_s": round(total.texts / total.seconds, 1),
        "offline_texts_per_s": round(statistics.median(offline), 1),
        "offline_runs": [round(x, 1) for x in offline],
        "round_ratios": [round(x, 3) for x in ratios],
        "ratio_served_to_offline": round(statistics.median(ratios), 3),
        "server_cpu_ms_per_text": round(1000 * served_cpu_per_text, 2),
        "offline_cpu_ms_per_text": round(1000 * statistics.median(offline_cpu), 2),
        "cpu_ratio_offline_to_served": round(statistics.median(offline_cpu) / served_cpu_per_text, 3) if served_cpu_per_text else None,
        "mean_batch_texts": round((stats_after["texts"] - stats_before["texts"]) / batches, 1) if batches else 0.0,
    }
    print(f"load: {args.clients} clients x {per} texts/request ({args.encoding_format}), {args.rounds} rounds, {total.seconds:.1f} s in all; "
          f"backend {figures['backend']} on {figures['device']}")
    print(f"requests  {total.requests} ({figures['requests_per_s']} req/s), errors {total.errors}")
    print(f"latency   p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    print(f"served    {figures['served_texts_per_s']} texts/s (mean shared batch {figures['mean_batch_texts']} texts)")
    print(f"offline   {figures['offline_texts_per_s']} texts/s median (encode, batch {args.offline_batch_size}; runs {figures['offline_runs']})")
    print(f"ratio     {figures['ratio_served_to_offline']} served/offline (median of rounds {figures['round_ratios']})")
    print(f"cpu       {figures['server_cpu_ms_per_text']} ms/text in the server, {figures['offline_cpu_ms_per_text']} ms/text offline (ratio {figures['cpu_ratio_offline_to_served']})")
    for sample in total.error_samples:
        print(f"error sample: {sample}")
    if total.errors and process is not None:
        print(f"server log: {log_path}")
    elif process is not None:
        log_path.unlink(missing_ok=True)
    if args.json is not None:
        args.json.write_text(json.dumps({**figures, "argv": sys.argv[1:]}, indent=2) + "\n")
    return 0 if total.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
