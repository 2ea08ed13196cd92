"""`polyhead serve` refuses what it can see is wrong before it loads a model: a taken port, an empty key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from .server_process import free_port


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "polyhead", "serve", *args], capture_output=True, text=True, timeout=120, env=environment)


def test_a_port_in_use_fails_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--port", str(port), "--no-access-log")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0], result.stderr
    assert "ready: dimension" not in result.stdout + result.stderr and "Started server process" not in result.stdout + result.stderr


def test_an_empty_api_key_in_the_environment_is_refused():
    result = _serve("--port", str(free_port()), env={"POLYHEAD_API_KEY": ""})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "POLYHEAD_API_KEY" in lines[0] and "empty" in lines[0], result.stderr


def test_shared_batches_are_capped_by_tokens_on_a_gpu_only():
    from polyhead.serve.config import GPU_BATCH_TOKENS, ServeConfig

    assert ServeConfig().batch_tokens_for("cpu") is None
    assert ServeConfig().batch_tokens_for("cuda") == GPU_BATCH_TOKENS
    assert ServeConfig(max_batch_tokens=4096).batch_tokens_for("cpu") == 4096
    with pytest.raises(ValueError, match="max_batch_tokens must be >= 1"):
        ServeConfig(max_batch_tokens=0)
