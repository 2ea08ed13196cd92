"""`polyhead encode --engine ray` against single-process encoding of the same files, on a local Ray cluster.

    .venv/bin/python benchmarks/ray_encode.py                        # 200,000 texts in 8 files
    .venv/bin/python benchmarks/ray_encode.py --texts 24000          # a quicker look

Writes `--texts` real texts (Rotten Tomatoes reviews and Jeopardy! questions, whitespace
collapsed, empty ones left out, cycled as needed) into 8 files: two each of .txt, .jsonl,
.csv and .parquet. Then, in this order:

1. the anchor: one process (`encode_file`, what `polyhead encode FILE -o OUT.npy` runs) over
   the 8 files one after another, the model loaded once;
2. `polyhead encode DIR -o OUT --engine ray` (a local cluster started and stopped by the
   command, counted in its time): throughput ratio against the anchor, every row exactly
   once (row ids), the same vectors as the anchor's (max abs difference; 0 with
   --backend torch), and the peak memory of the whole job: the sum of the resident memory
   of the driver and every process under it (GCS, raylet, workers), sampled twice a second
   (shared library pages count once per process, so this is an upper bound);
3. the same job killed (SIGKILL of the driver) after --kill-after shards are recorded,
   then `--resume`: every row exactly once, and only the unfinished shards computed.

Figures depend on the machine's load: run it on an otherwise idle machine, and read the
ratio, not the absolute rates. `--rounds N` alternates the two sides N times and compares
the fastest of each; the CPU-time ratio (CPU seconds of the anchor's process over those of
the whole Ray job) is printed too, as it moves less with load from elsewhere. The load
average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
FILES = ("part-0.txt", "part-1.jsonl", "part-2.csv", "part-3.parquet", "part-4.txt", "part-5.jsonl", "part-6.csv", "part-7.parquet")
TARGET_RATIO = 0.85


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=200_000, help="texts over the 8 files (default: 200,000)")
    parser.add_argument("--backend", default="auto", help="--backend of both sides (default: auto)")
    parser.add_argument("--workers", type=int, default=None, help="Ray workers (default: one per CPU)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="anchor and Ray runs alternated this many times; the fastest of each is compared (default: 1)")
    parser.add_argument("--kill-after", type=int, default=3, help="shards recorded before the driver is killed (0: skip that part)")
    parser.add_argument("--resume-shard-rows", type=int, default=1000, help="rows per shard in the kill/resume part (default: 1000)")
    parser.add_argument("--workdir", type=Path, default=None, help="where inputs and outputs go (default: a temp dir, removed after)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


def real_texts() -> list[str]:
    from polyhead.datasets import jeopardy, rotten_tomatoes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pools = [rotten_tomatoes("sentiment"), jeopardy()]
    texts = [" ".join(t.split()) for pool in pools for split in (pool.train, pool.validation, pool.test) for t in split.texts]
    return [t for t in texts if t]


def write_inputs(folder: Path, count: int) -> list[Path]:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    pool = real_texts()
    texts = [pool[i % len(pool)] for i in range(count)]
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-count // len(FILES))
    paths = []
    for index, name in enumerate(FILES):
        part = texts[index * per_file : (index + 1) * per_file]
        path = folder / name
        if path.suffix == ".txt":
            path.write_text("\n".join(part) + "\n", encoding="utf-8")
        elif path.suffix == ".jsonl":
            path.write_text("".join(json.dumps({"id": f"{index}-{i}", "text": t}) + "\n" for i, t in enumerate(part)), encoding="utf-8")
        elif path.suffix == ".csv":
            with open(path, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", "text"])
                writer.writerows((f"{index}-{i}", t) for i, t in enumerate(part))
        else:
            pq.write_table(pa.table({"text": part}), path, row_group_size=4096)
        paths.append(path)
    return paths


ANCHOR = """
import sys, time
from pathlib import Path
from polyhead import SentenceEncoder
from polyhead.encode_file import encode_file
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
encoder = SentenceEncoder(backend=sys.argv[1])
for name in sys.argv[3:]:
    encode_file(encoder, name, out / (Path(name).stem + ".npy"), show_progress=False)
"""


def watched(command: list[str], env: dict | None = None, kill_when=None) -> dict:
    """Run `command`, sampling the resident memory of its process tree; `kill_when()` true -> SIGKILL the tree's root."""
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    root = psutil.Process(child.pid)
    seen: dict[int, psutil.Process] = {}
    cpu: dict[int, float] = {}  # last CPU seconds seen per process (a process's final half second is missed)
    peak = 0
    while child.poll() is None:
        try:
            members = [root, *root.children(recursive=True)]
            seen.update({p.pid: p for p in members[1:]})
            rss = 0
            for member in members:
                try:
                    rss += member.memory_info().rss
                    times = member.cpu_times()
                    cpu[member.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        if kill_when is not None and kill_when():
            child.kill()
            break
        time.sleep(0.5)
    child.wait()
    elapsed = time.perf_counter() - started
    for process in seen.values():  # a killed driver leaves its local cluster behind: stop what it started
        try:
            process.kill()
        except psutil.Error:
            pass
    output = child.stdout.read() if child.stdout else ""
    return {"seconds": elapsed, "cpu_seconds": sum(cpu.values()), "peak_rss": peak, "returncode": child.returncode, "output": output}


def check_rows(output: Path, total: int) -> bool:
    import pyarrow.parquet as pq

    ids = pq.read_table(output / "shards", columns=["row_id"]).column("row_id").to_pylist()
    return sorted(ids) == list(range(total))


def max_difference(output: Path, anchor: Path, files: list[Path]) -> float:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(output / "shards", columns=["row_id", "embedding"]).sort_by("row_id")
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    want = np.concatenate([np.load(anchor / f"{f.stem}.npy") for f in files])
    return float(np.abs(got - want).max())


def run(args: argparse.Namespace, workdir: Path) -> int:
    figures: dict = {"texts": args.texts, "backend": args.backend, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    print(f"load average before: {figures['load_before']}")
    files = write_inputs(workdir / "inputs", args.texts)
    print(f"wrote {args.texts:,} texts into {len(files)} files")

    engine = [sys.executable, "-m", "polyhead", "encode", str(workdir / "inputs"), "--engine", "ray", "--backend", args.backend,
              "--no-progress", *(["--workers", str(args.workers)] if args.workers else [])]
    anchors, jobs = [], []
    for round_ in range(args.rounds):  # alternated, so that load from elsewhere hits both sides alike
        anchor = watched([sys.executable, "-c", ANCHOR, args.backend, str(workdir / "anchor"), *map(str, files)])
        if anchor["returncode"] != 0:
            print(anchor["output"][-3000:])
            return 1
        anchors.append(anchor)
        print(f"round {round_ + 1}: single process {anchor['seconds']:.1f} s ({args.texts / anchor['seconds']:.0f} texts/s, "
              f"{anchor['cpu_seconds']:.0f} CPU s, peak RSS {anchor['peak_rss'] / 1e6:.0f} MB)", flush=True)
        shutil.rmtree(workdir / "ray", ignore_errors=True)
        job = watched([*engine, "-o", str(workdir / "ray")])
        if job["returncode"] != 0:
            print(job["output"][-3000:])
            return 1
        jobs.append(job)
        print(f"round {round_ + 1}: ray engine {job['seconds']:.1f} s ({args.texts / job['seconds']:.0f} texts/s, "
              f"{job['cpu_seconds']:.0f} CPU s, peak RSS of the job {job['peak_rss'] / 1e6:.0f} MB)", flush=True)
    anchor, job = min(anchors, key=lambda r: r["seconds"]), min(jobs, key=lambda r: r["seconds"])
    figures["anchor"] = [{k: v for k, v in r.items() if k != "output"} for r in anchors]
    once = check_rows(workdir / "ray", args.texts)
    difference = max_difference(workdir / "ray", workdir / "anchor", files)
    ratio = anchor["seconds"] / job["seconds"]
    cpu_ratio = anchor["cpu_seconds"] / job["cpu_seconds"]
    figures["ray"] = {"rounds": [{k: v for k, v in r.items() if k != "output"} for r in jobs], "every_row_once": once,
                      "max_abs_difference": difference, "throughput_ratio": ratio, "cpu_ratio": cpu_ratio,
                      "summary": job["output"].strip().splitlines()[-1]}
    print(f"fastest single process: {anchor['seconds']:.1f} s, {args.texts / anchor['seconds']:.0f} texts/s, "
          f"peak RSS {anchor['peak_rss'] / 1e6:.0f} MB")
    print(f"fastest ray engine:     {job['seconds']:.1f} s, {args.texts / job['seconds']:.0f} texts/s, "
          f"peak RSS of the job {job['peak_rss'] / 1e6:.0f} MB")
    print(f"  {figures['ray']['summary']}")
    print(f"throughput ratio ray / single process: {ratio:.3f} (target >= {TARGET_RATIO}); CPU-time ratio: {cpu_ratio:.3f}; "
          f"every row exactly once: {once}; max |difference| from the anchor: {difference:.3g}")

    resumed_ok = True
    if args.kill_after:
        out = workdir / "ray-killed"
        marker = workdir / "driver-killed"
        env = {"POLYHEAD_FAULT_AT": f"ray-driver-shard-done:{args.kill_after}", "POLYHEAD_FAULT_ONCE": str(marker)}
        killed = watched([*engine, "-o", str(out), "--shard-rows", str(args.resume_shard_rows)], env=env)
        manifest = json.loads((out / "manifest.json").read_text())
        done = sum(s["status"] == "done" for s in manifest["shards"])
        resumed = watched([*engine, "-o", str(out), "--shard-rows", str(args.resume_shard_rows), "--resume"])
        once_after = resumed["returncode"] == 0 and check_rows(out, args.texts)
        summary = resumed["output"].strip().splitlines()[-1] if resumed["output"].strip() else ""
        figures["resume"] = {"killed_returncode": killed["returncode"], "shards": len(manifest["shards"]), "recorded_before_kill": done,
                             "resume_seconds": resumed["seconds"], "every_row_once": once_after, "summary": summary}
        print(f"killed driver (exit {killed['returncode']}) after {done} of {len(manifest['shards'])} shards recorded; resume: "
              f"{resumed['seconds']:.1f} s, every row exactly once: {once_after}\n  {summary}")
        resumed_ok = killed["returncode"] == -signal.SIGKILL and once_after
    figures["load_after"] = os.getloadavg()
    print(f"load average after: {figures['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if once and resumed_ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir is not None:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="polyhead-ray-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
