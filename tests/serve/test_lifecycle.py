"""Start-up, configuration and graceful shutdown of `polyhead serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from polyhead.cli import build_parser, main
from polyhead.cli.serve import API_KEY_ENV, config_from_args
from polyhead.serve import ServeConfig

from .server_process import free_port, start_server


def test_sigterm_lets_requests_in_flight_finish(tiny_st_dir, tmp_path, sentiment):
    """SIGTERM while texts are still queued: every request still gets all its embeddings."""
    one_at_a_time = ["--max-batch-texts", "1", "--slice-texts", "1", "--encode-batch-size", "1", "--no-access-log"]
    server = start_server([str(tiny_st_dir), *one_at_a_time], tmp_path / "server.log")
    requests = [sentiment.train.texts[i * 32 : (i + 1) * 32] for i in range(4)]
    total = sum(len(texts) for texts in requests)

    async def scenario() -> tuple[list[httpx.Response], float, list[float], int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120.0) as http:

            async def post(texts: list[str]) -> tuple[httpx.Response, float]:
                answer = await http.post("/v1/embeddings", json={"input": texts})
                return answer, time.monotonic()

            pending = [asyncio.create_task(post(texts)) for texts in requests]
            queued = 0
            for _ in range(500):
                stats = (await http.get("/v1/stats")).json()
                queued = stats["queued_texts"]
                if stats["texts"] + queued >= total - 1:
                    break
                await asyncio.sleep(0.01)
            os.kill(server.process.pid, signal.SIGTERM)
            killed_at = time.monotonic()
            results = await asyncio.gather(*pending)
        return [answer for answer, _ in results], killed_at, [done for _, done in results], queued

    try:
        answers, killed_at, finished_at, queued_at_kill = asyncio.run(scenario())
        status = server.process.wait(60)
    finally:
        server.stop()
    assert queued_at_kill > 0, "every text was encoded before SIGTERM: the test proved nothing"
    assert max(finished_at) > killed_at
    for texts, answer in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]) == len(texts)
    assert status == 0, server.log()
    log = server.log()
    assert "Shutting down" in log and "Application shutdown complete" in log


def test_model_that_cannot_load_exits_nonzero(tmp_path):
    missing = tmp_path / "no-such-model"
    command = [sys.executable, "-m", "polyhead", "serve", str(missing), "--port", str(free_port())]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=environment)
    assert done.returncode == 1, done.stderr
    assert "could not load the model" in done.stderr
    assert "the model could not be loaded" in done.stderr


def test_file_instead_of_directory_is_an_input_error(tmp_path, capsys):
    not_a_dir = tmp_path / "model.txt"
    not_a_dir.write_text("x")
    assert main(["serve", str(not_a_dir)]) == 2
    assert "must be a model directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--max-items", "0"], "max_items must be >= 1"),
        (["--max-items", "9000"], "must not exceed max_queued_texts"),
        (["--port", "70000"], "port must be in"),
        (["--batch-wait-ms", "-1"], "batch_wait_ms"),
        (["--api-key", " "], "api_key"),
        (["--threads", "0"], "threads must be >= 1"),
    ],
)
def test_bad_flags_are_input_errors(flags, words, capsys):
    assert main(["serve", *flags]) == 2
    assert words in capsys.readouterr().err


def test_flags_map_onto_config(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    args = build_parser().parse_args(["serve", "some/dir", "--max-batch-texts", "8", "--batch-wait-ms", "2.5", "--no-access-log"])
    config = config_from_args(args)
    assert config.model_dir == "some/dir" and config.max_batch_texts == 8 and config.batch_wait_ms == 2.5
    assert config.access_log is False
    assert config.api_key == "from-env"
    assert config.host == "127.0.0.1"
    explicit = config_from_args(build_parser().parse_args(["serve", "--api-key", "flag-key"]))
    assert explicit.api_key == "flag-key" and explicit.model_dir is None


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.4", False)])
def test_loopback_detection(host, loopback):
    assert ServeConfig(host=host).is_loopback is loopback
