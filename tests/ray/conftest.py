"""Fixtures of the Ray tests: a local two-CPU Ray cluster per module, small real input files, tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="polyhead[ray] is not installed")


@pytest.fixture(scope="module")
def ray_local():
    """One local cluster for the module's in-process tests (starting Ray costs seconds)."""
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_inputs(folder: Path, texts: list[str]) -> list[Path]:
    """The texts split over three files of the three kinds of reader: .txt, .jsonl (with an id), .parquet (small row groups)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    third = len(texts) // 3
    parts = [texts[:third], texts[third : 2 * third], texts[2 * third :]]
    (folder / "a.txt").write_text("\n".join(parts[0]) + "\n", encoding="utf-8")
    with open(folder / "b.jsonl", "w", encoding="utf-8") as handle:
        for i, text in enumerate(parts[1]):
            handle.write(json.dumps({"id": f"b{i}", "text": text}) + "\n")
    pq.write_table(pa.table({"text": parts[2]}), folder / "c.parquet", row_group_size=7)
    return [folder / "a.txt", folder / "b.jsonl", folder / "c.parquet"]


@pytest.fixture(scope="module")
def tiny_task_model(tiny_st_dir, tmp_path_factory) -> Path:
    """A saved tiny MultiTaskModel: 'sentiment' (fresh/rotten) and 'topic' (3 labels), untrained."""
    from polyhead import MultiTaskModel, SentenceEncoder, TaskSpec

    directory = tmp_path_factory.mktemp("ray-task-model") / "model"
    tasks = [TaskSpec("sentiment", ["fresh", "rotten"]), TaskSpec("topic", ["a", "b", "c"])]
    MultiTaskModel(SentenceEncoder(tiny_st_dir, device="cpu"), tasks).save(directory)
    return directory
