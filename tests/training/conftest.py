"""Fixtures for training tests: small real-data configs on the real or a tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


def small_config(model: str | None, output_dir: Path, *, tasks: tuple[str, ...] = ("topic", "sentiment"), **training) -> dict:
    """Both real tasks (or those named in `tasks`) on small fixed slices; deterministic (no dropout) unless told.

    A test that needs no second task passes `tasks=("sentiment",)`: the 40-class topic task's
    confusion-matrix plot is most of a tiny run's report time.
    """
    settings = {"max_steps": 12, "batch_size": 8, "eval_every": 4, "log_every": 2, "backbone_dropout": 0.0, "progress": False}
    settings.update(training)
    every = {
        "topic": {"data": "jeopardy", "max_train_examples": 200, "max_eval_examples": 60, "head": {"dropout": 0.0}},
        "sentiment": {"data": "rotten_tomatoes:sentiment", "max_train_examples": 200, "max_eval_examples": 60, "head": {"dropout": 0.0}},
    }
    return {
        "model": {"name": model, "max_seq_length": 32},
        "tasks": {name: every[name] for name in tasks},
        "training": settings,
        "output_dir": str(output_dir),
    }


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_polyhead(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """`python -m polyhead ARGS` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "polyhead", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs
    )
