"""`polyhead study --engine ray`: the same results.json entries as the sequential study (tiny settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.conftest import REPO, small_config, write_config

METRIC_TOLERANCE = 1e-6
"""Each run trains in its own process with its own thread count; sums may round differently, no more."""
RANK_TOLERANCE = 1e-4
"""lee's Spearman rho ranks 1,000+ similarities: a rounding-level change in the weights can swap two near-tied ranks."""


def _study(config: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "polyhead", "study", str(config), "--strategies", "frozen_encoder,full", "--seeds", "2",
               "--epochs", "1", "--probe-epochs", "1", "--evals-per-epoch", "1", "--no-baseline", "-o", str(output), "--no-progress",
               *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # eight tiny trainings: two studies of 2 strategies x 2 seeds
def test_ray_study_gives_the_sequential_results(tmp_path, tiny_model_dir):
    raw = small_config(str(tiny_model_dir("bert")), tmp_path / "unused", max_steps=None, batch_size=16)
    for task in raw["tasks"].values():
        task["max_train_examples"], task["max_eval_examples"] = 32, 24
    config = write_config(tmp_path / "study.yaml", raw)
    sequential = _study(config, tmp_path / "sequential")
    assert sequential.returncode == 0, sequential.stderr[-3000:]
    on_ray = _study(config, tmp_path / "ray", "--engine", "ray")
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert (tmp_path / "ray" / "study.md").is_file()

    def runs(folder: str) -> dict:
        content = json.loads((tmp_path / folder / "results.json").read_text())
        return {(r["strategy"], r["seed"]): r for r in content["runs"]}

    expected, got = runs("sequential"), runs("ray")
    assert set(got) == set(expected) == {(s, seed) for s in ("frozen_encoder", "full") for seed in (42, 43)}
    for key, row in expected.items():
        other = got[key]
        for field in ("steps", "best_step", "examples_seen", "trainable_parameters", "stop_reason"):
            assert other[field] == row[field], (key, field)
        assert other["best_validation"] == pytest.approx(row["best_validation"], abs=METRIC_TOLERANCE)
        assert other["lee_spearman_after"] == pytest.approx(row["lee_spearman_after"], abs=RANK_TOLERANCE)
        for task, metrics in row["tasks"].items():
            for name, value in metrics.items():
                if isinstance(value, float):
                    assert other["tasks"][task][name] == pytest.approx(value, abs=METRIC_TOLERANCE), (key, task, name)
                else:
                    assert other["tasks"][task][name] == value, (key, task, name)
