"""The benchmarks run end to end on a small input (their figures are recorded in docs/, not asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs a benchmark script in its own process: `make test-slow`, run by CI

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_encode_speed_times_polyhead_against_sentence_transformers_in_its_own_process(tmp_path):
    figures = tmp_path / "bench.json"
    out = _run("benchmarks/encode_speed.py", "--texts", "48", "--repeats", "1", "--paths", "torch", "--no-accuracy", "--json", str(figures))
    assert "sentence-transformers" in out and "polyhead torch" in out
    payload = json.loads(figures.read_text())
    # The independent figure: polyhead's exact path against sentence-transformers' own vectors,
    # computed in the anchor's separate process. (The torch path's min cosine is taken against
    # a reference built with that same path, so it only shows the figures are written.)
    assert payload["st_max_abs_diff"] <= 1e-5
    assert "vs sentence-transformers: max abs diff" in out
    torch_path = payload["paths"]["torch"]
    assert torch_path["min_cosine"] > 0.99999 and torch_path["max_abs_diff"] <= 1e-5
    assert len(payload["anchor_seconds"]["sentence-transformers"]) == 1


def test_encode_memory_encodes_a_file_and_reports_its_peak(tmp_path):
    out = _run("benchmarks/encode_memory.py", "--lines", "300", "--backend", "torch", "--workdir", str(tmp_path))
    assert "300 of 300 lines" in out and "output: embeddings.npy (300, 384)" in out and "PASS" in out


def test_train_speed_trains_polyhead_and_the_plain_loop_on_the_same_examples(tmp_path, tiny_model_dir):
    """On a tiny random backbone: the smoke test checks the benchmark's mechanics, not its figures."""
    figures = tmp_path / "train.json"
    out = _run(
        "benchmarks/train_speed.py", "--train-examples", "48", "--test-examples", "32", "--rounds", "1",
        "--setups", "full", "--epoch-scale", "0.5", "--json", str(figures), "--model", str(tiny_model_dir("bert")),
    )
    assert "ratio polyhead / plain" in out and "load average at end" in out
    payload = json.loads(figures.read_text())
    setups = payload["setups"]
    assert set(setups) == {"full"} and payload["complete"]
    for setup in setups.values():
        (round_figures,) = setup["rounds"]
        for side in ("plain", "polyhead"):
            run = round_figures[side]
            assert run["seconds"] > 0 and run["examples_per_s"] > 0 and run["tokens_per_s"] > 0 and run["examples"] >= 48
            assert set(run["tasks"]) == {"topic", "sentiment"}
            for scores in run["tasks"].values():
                assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["macro_f1"] <= 1.0
        assert setup["summary"]["ratio"] > 0
    assert "fp32" in setups["full"]["summary"]["sides"]["plain"]["peak_share"]


def test_train_profile_splits_a_step_into_parts(tmp_path):
    figures = tmp_path / "profile.json"
    out = _run("benchmarks/train_profile.py", "--steps", "2", "--warmup-steps", "1", "--train-examples", "64", "--eval-examples", "32",
               "--freeze", "lower=3", "--json", str(figures))
    assert "hidden states are cached" in out
    for part in ("frozen part (cache fill)", "forward", "backward", "clip + optimizer", "one validation pass"):
        assert part in out, part
    payload = json.loads(figures.read_text())
    assert {"frozen part (cache fill)", "forward", "backward"} <= set(payload["parts_ms_per_step"])
    assert payload["checkpoint_s"] > 0 and payload["unprofiled_ms_per_step"] > 0


def test_serve_load_runs_a_tiny_load_against_a_real_server(tmp_path, tiny_st_dir):
    """2 clients for 2 s against a started `polyhead serve` on the tiny encoder: no errors, figures written."""
    figures = tmp_path / "serve.json"
    out = _run(
        "benchmarks/serve_load.py", "--clients", "2", "--duration", "2", "--rounds", "1", "--corpus", "16",
        "--texts-per-request", "2", "--model-dir", str(tiny_st_dir), "--backend", "torch", "--json", str(figures),
        "--device", "cpu",
    )
    assert "errors 0" in out and "served/offline" in out and "p99" in out
    payload = json.loads(figures.read_text())
    assert payload["errors"] == 0 and payload["requests"] > 0 and payload["backend"] == "torch" and payload["device"] == "cpu"
    assert payload["served_texts_per_s"] > 0 and payload["offline_texts_per_s"] > 0 and payload["ratio_served_to_offline"] > 0
    assert payload["mean_batch_texts"] >= 2


def test_train_speed_on_a_gpu_takes_the_faster_plain_loop_as_its_anchor():
    """The GPU mode's bookkeeping (its runs need CUDA): the anchor is the plain variant with the higher median."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import train_speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    def run(side: str, examples_per_s: float):
        return train_speed.RunFigures(side, 0, 1.0, 1.0, int(examples_per_s), 1.0, 1)

    rounds = [{"plain": run("plain", f), "plain_bf16": run("plain_bf16", b), "polyhead": run("polyhead", 5000)}
              for f, b in ((1200, 900), (1300, 1500), (1100, 1400))]
    anchor, anchored = train_speed.anchor_rounds(rounds)
    assert anchor == "plain_bf16" and [r["plain"].examples_per_s for r in anchored] == [900, 1500, 1400]
    assert train_speed.anchor_rounds([{k: v for k, v in r.items() if k != "plain_bf16"} for r in rounds])[0] == "plain"
    targets = {name: setup.target for name, setup in train_speed.GPU_SETUPS.items()}
    assert targets == {"full": 4.0, "lower_half": 5.0, "frozen": 20.0}


def test_gpu_encode_speed_runs_its_protocol_on_a_cpu(tmp_path):
    """The GPU benchmark's mechanics (warm-up, sweep, alternated rounds, cosines, budget sweep) on a CPU."""
    figures = tmp_path / "gpu.json"
    out = _run("benchmarks/encode_speed_gpu.py", "--device", "cpu", "--texts", "40", "--repeats", "1", "--st-batches", "32,8",
               "--budgets", "512", "--paths", "auto,torch", "--json", str(figures))
    assert "tokenizer alone" in out and "batch sweep" in out and "token budget sweep" in out
    payload = json.loads(figures.read_text())
    assert set(payload["st_sweep"]) == {"32", "8"}
    sides = payload["sides"]
    assert {"sentence-transformers b32", "polyhead auto", "polyhead torch"} <= set(sides)
    assert sides["polyhead torch"]["min_cosine"] > 0.9999  # fp32 against sentence-transformers fp32
    assert sides["polyhead auto"]["min_cosine"] >= 0.999



def test_sdpa_backends_times_what_runs_and_reports_what_does_not(tmp_path):
    """On a CPU only math and flash run: the others are reported as unavailable, not a crash; the JSON has every row."""
    figures = tmp_path / "sdpa.json"
    out = _run("benchmarks/sdpa_backends.py", "--device", "cpu", "--backends", "math,efficient,polyhead", "--dtypes", "fp32",
               "--batches", "2", "--calls", "3", "--repeats", "1", "--json", str(figures))
    assert "plan ms" in out and "n/a (efficient fp32" in out
    rows = json.loads(figures.read_text())["rows"]
    assert len(rows) == 3 * 2 * 2 * 2  # backends x length sequences x mask x pass
    math_rows = [r for r in rows if r["backend"] == "math"]
    assert all(r["steady_ms"] > 0 and r["first_pass_ms"] > 0 for r in math_rows)
    assert {r["shapes"] for r in math_rows if r["lengths"] == "varying"} == {3}
    assert all("unavailable" in r for r in rows if r["backend"] == "efficient")


def test_gpu_check_runs_its_steps_on_a_cpu_and_keeps_each_steps_figures(tmp_path):
    """The one GPU command with DEVICE=cpu: a step's figures and its line in steps.txt land in OUT."""
    env = {**os.environ, "DEVICE": "cpu", "STEPS": "sdpa", "OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "sdpa: exit 0" in (tmp_path / "steps.txt").read_text()
    assert json.loads((tmp_path / "sdpa.json").read_text())["rows"]
    assert "torch" in (tmp_path / "env.txt").read_text()


def test_frozen_saves_trains_both_ways_to_the_same_metrics(tmp_path):
    figures = tmp_path / "saves.json"
    out = _run("benchmarks/frozen_saves.py", "--value-examples", "120", "--aid-examples", "80", "--epochs", "1", "--json", str(figures))
    assert "same test metrics on both sides" in out
    sides = json.loads(figures.read_text())
    assert sides["linked"]["checkpoints"] == sides["written"]["checkpoints"] >= 1
