"""Start the real `python -m polyhead serve` in a subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its URL, process, log file, and the /health answers seen while it started."""

    url: str
    process: subprocess.Popen
    log_path: Path
    startup_health: list[tuple[int, dict]] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


def start_server(args: list[str], log_path: Path, *, env: dict[str, str] | None = None, wait: bool = True) -> ServerProcess:
    """Launch the server with `args` after `serve` and wait until /health says ok."""
    port = free_port()
    command = [sys.executable, "-m", "polyhead", "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    log = open(log_path, "w", encoding="utf-8")  # a file, not a pipe: a full pipe would block the server
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    log.close()
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    if wait:
        try:
            wait_ready(server)
        except BaseException:
            server.stop()
            raise
    return server


def wait_ready(server: ServerProcess, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
            try:
                answer = client.get(server.url + "/health")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            server.startup_health.append((answer.status_code, answer.json()))
            if answer.status_code == 200:
                return
            time.sleep(0.05)
    raise TimeoutError(f"server not ready after {timeout} s:\n{server.log()}")


def serve_model_dir(directory: Path, log_dir: Path):
    """A module fixture's body: a server on a saved model directory (fp32: exact), stopped cleanly afterwards."""
    running = start_server([str(directory), "--backend", "torch"], log_dir / "server.log")
    yield running
    assert running.stop() == 0, running.log()


def read_answer(connection: socket.socket) -> tuple[int, dict | None]:
    """Status and JSON body of the answer on a raw socket, read until the server closes; (0, None) when it was closed unanswered."""
    data = b""
    try:
        while chunk := connection.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    if not data:
        return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None
