"""The sharded job behind `--engine ray`: every row exactly once, the same bits as `polyhead encode`, resumable, fault-tolerant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from polyhead.errors import InputError
from polyhead.ray import JobOptions, ModelSpec, run_job
from polyhead.ray.manifest import Manifest

from .conftest import write_inputs

REPO = Path(__file__).resolve().parents[2]


def _table(output: Path):
    return pq.read_table(output / "shards").sort_by("row_id")


def _assert_every_row_once(output: Path, total: int) -> None:
    ids = pq.read_table(output / "shards", columns=["row_id"]).column("row_id").to_pylist()
    assert sorted(ids) == list(range(total)), "a row is missing or repeated"


def test_vectors_equal_single_process_encode_bit_for_bit(ray_local, tmp_path, default_model_dir, rt_texts):
    """The built-in model, --backend torch: each file's shard holds what `polyhead encode FILE` writes, in the manifest's row order."""
    from polyhead import SentenceEncoder
    from polyhead.encode_file import encode_file

    files = write_inputs(tmp_path / "in", rt_texts[:90])
    output = tmp_path / "out"
    result = run_job(JobOptions(str(tmp_path / "in"), output, ModelSpec(str(default_model_dir), backend="torch"), show_progress=False))
    assert result.total_rows == 90 and result.shards == 3 and result.computed == [0, 1, 2]
    table = _table(output)
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    encoder = SentenceEncoder(default_model_dir, device="cpu")
    want = []
    for file in files:
        encode_file(encoder, file, tmp_path / f"{file.stem}.npy", show_progress=False, backend="torch")
        want.append(np.load(tmp_path / f"{file.stem}.npy"))
    assert np.array_equal(got, np.concatenate(want))
    manifest = Manifest.load(output)
    assert [(s.input, s.row_start, s.row_end, s.row_id_start) for s in manifest.shards] == [
        (str(files[0]), 0, 30, 0), (str(files[1]), 0, 30, 30), (str(files[2]), 0, 30, 60)]
    assert table.column("line").to_pylist()[:2] == [1, 2] and table.column("text").to_pylist() == rt_texts[:90]


def test_resume_recomputes_only_missing_shards(ray_local, tmp_path, tiny_st_dir, rt_texts):
    write_inputs(tmp_path / "in", rt_texts[:60])
    output = tmp_path / "out"
    options = JobOptions(str(tmp_path / "in" / "*"), output, ModelSpec(str(tiny_st_dir), backend="torch"), chunk_size=8, workers=1,
                         show_progress=False)
    first = run_job(options)
    assert first.shards == 9 and first.computed == list(range(9))  # 20 rows a file: 8 + 8 + 4, three times
    _assert_every_row_once(output, 60)
    kept = {p.name: p.stat().st_mtime_ns for p in (output / "shards").iterdir()}
    (output / "shards" / "part-00004.parquet").unlink()
    with pytest.raises(InputError, match="add --resume"):
        run_job(options)
    options.resume = True
    again = run_job(options)
    assert again.computed == [4]
    _assert_every_row_once(output, 60)
    assert {p.name: p.stat().st_mtime_ns for p in (output / "shards").iterdir() if p.name != "part-00004.parquet"} == {
        k: v for k, v in kept.items() if k != "part-00004.parquet"}
    options.spec = ModelSpec(str(tiny_st_dir), backend="torch", normalize=False)
    with pytest.raises(InputError, match="other settings .*normalize"):
        run_job(options)


@pytest.mark.slow  # two more jobs; the invalid-text rules themselves are tested fast in test_datasets.py
def test_an_invalid_text_names_its_file_and_line_or_is_kept_null(ray_local, tmp_path, tiny_st_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "t.jsonl").write_text('{"text": "fine"}\n{"text": null}\n{"text": 7}\n{"text": "also fine"}\n', encoding="utf-8")
    options = JobOptions(str(folder), tmp_path / "out", ModelSpec(str(tiny_st_dir)), show_progress=False)
    with pytest.raises(InputError, match=r"t\.jsonl:2: text is null \(1 more invalid"):
        run_job(options)
    options.on_invalid, options.output = "null", tmp_path / "out2"
    result = run_job(options)
    assert result.invalid == 2
    table = _table(tmp_path / "out2")
    assert table.num_rows == 4 and table.column("embedding").null_count == 2

    # A driver killed after the worker wrote the shard but before the manifest recorded it: the resume finds the
    # shard's stats in its file, so the job still reports both invalid rows.
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    for shard in manifest["shards"]:
        shard.update(status="pending", rows=None, invalid=0, truncated=0, seconds=None)
    (tmp_path / "out2" / "manifest.json").write_text(json.dumps(manifest))
    options.resume = True
    resumed = run_job(options)
    assert resumed.invalid == 2 and resumed.total_rows == 4 and resumed.computed == []


def _cli(args: list, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyhead", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.slow  # a job in a subprocess with its own local cluster: over 30 s here
def test_a_killed_worker_is_retried_and_every_row_is_there_once(tmp_path, tiny_st_dir, rt_texts):
    write_inputs(tmp_path / "in", rt_texts[:60])
    marker = tmp_path / "killed-once"
    run = _cli(["encode", tmp_path / "in", "-o", tmp_path / "out", "--engine", "ray", "--model", tiny_st_dir, "--shard-rows", "8",
                "--no-progress"], env={"POLYHEAD_FAULT_AT": "ray-worker-shard-computed:2", "POLYHEAD_FAULT_ONCE": str(marker)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert marker.exists()  # a worker really died after computing its second shard
    assert "wrote 60 rows in 9 shards" in run.stderr
    _assert_every_row_once(tmp_path / "out", 60)


@pytest.mark.slow  # two jobs, each starting its own local cluster: about a minute
def test_a_killed_driver_resumes_with_only_unfinished_shards(tmp_path, tiny_st_dir, rt_texts):
    import psutil

    write_inputs(tmp_path / "in", rt_texts[:60])
    output = tmp_path / "out"
    command = ["encode", tmp_path / "in", "-o", output, "--engine", "ray", "--model", tiny_st_dir, "--shard-rows", "8", "--no-progress"]
    env = {**os.environ, "POLYHEAD_FAULT_AT": "ray-driver-shard-done:3", "POLYHEAD_FAULT_ONCE": str(tmp_path / "driver-killed")}
    driver = subprocess.Popen([sys.executable, "-m", "polyhead", *map(str, command)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tree = psutil.Process(driver.pid)
    cluster: dict[int, psutil.Process] = {}
    while driver.poll() is None:  # remember the local cluster's processes: a killed driver cannot stop them
        try:
            cluster.update({p.pid: p for p in tree.children(recursive=True)})
        except psutil.NoSuchProcess:
            break
    assert driver.returncode == -signal.SIGKILL, driver.stderr.read()[-3000:]
    for process in cluster.values():
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    done_before = {s.index for s in Manifest.load(output).shards if s.status == "done"}
    assert len(done_before) >= 3
    written = {p.name: p.stat().st_mtime_ns for p in (output / "shards").iterdir() if not p.name.startswith(".")}

    resumed = _cli([*command, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = Manifest.load(output)
    assert all(s.status == "done" for s in manifest.shards)
    _assert_every_row_once(output, 60)
    for name, mtime in written.items():  # what was written before the kill stayed as it was
        assert (output / "shards" / name).stat().st_mtime_ns == mtime
    assert f"{9 - len(written)} computed now" in resumed.stderr and f"{len(written)} already written" in resumed.stderr
    assert not list((output / "shards").glob(".*"))  # no temp file left over


@pytest.mark.slow  # one more job; predict shares the job machinery tested above
def test_a_predict_job_writes_each_task_answer_per_row(ray_local, tmp_path, tiny_task_model, rt_texts):
    from polyhead import load

    write_inputs(tmp_path / "in", rt_texts[:30])
    result = run_job(JobOptions(str(tmp_path / "in"), tmp_path / "out", ModelSpec(str(tiny_task_model), backend="torch"), kind="predict",
                                tasks=["topic"], show_progress=False))
    assert result.total_rows == 30
    table = _table(tmp_path / "out")
    assert "topic" in table.column_names and "sentiment" not in table.column_names
    want = load(tiny_task_model, device="cpu").predict(rt_texts[:30], tasks=["topic"])
    assert [row["label"] for row in table.column("topic").to_pylist()] == [p["topic"].label for p in want]
