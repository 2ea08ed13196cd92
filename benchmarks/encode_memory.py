"""Peak memory of `polyhead encode` on a file of a million lines: it must stay flat (< 1.5 GB).

    .venv/bin/python benchmarks/encode_memory.py                    # 1,000,000 lines, backend auto
    .venv/bin/python benchmarks/encode_memory.py --lines 100000      # a quicker look
    python benchmarks/encode_memory.py --device cuda --in-memory-texts 200000   # a GPU: streaming vs in-memory rate

Writes a text file of real Rotten Tomatoes reviews (the sentiment train split, cycled,
one review a line), runs `polyhead encode FILE -o OUT.npy` as a subprocess and samples
the resident memory of its process tree twice a second. The exact peak comes from the
kernel's high-water mark of the finished child (getrusage). Rows done are read from the
growing .npy, so the run prints memory against progress: a flat line is the point.

Run time: the encoding dominates; at ~500 texts/s (2 cores, bf16) a million lines take
about half an hour. --max-minutes stops a run that would take longer and reports what
it saw until then.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LIMIT_BYTES = 1.5e9
NPY_HEADER = 128
DIM = 384


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the generated file (default: 1,000,000)")
    parser.add_argument("--backend", default="auto", help="polyhead encode --backend (default: auto)")
    parser.add_argument("--max-minutes", type=float, default=90.0, help="stop the encode after this long (default: 90)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the input and output go (default: a temp dir, removed after)")
    parser.add_argument("--device", default=None, help="polyhead encode --device (cpu, cuda; default: its own default)")
    parser.add_argument("--in-memory-texts", type=int, default=0,
                        help="also encode this many of the lines in memory, in this process, and compare rates (default: 0, skip)")
    return parser.parse_args(argv)


def write_lines(path: Path, count: int) -> int:
    """`count` lines of real reviews, cycling through the train split; returns the file size."""
    from polyhead.datasets import rotten_tomatoes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reviews = [" ".join(t.split()) for t in rotten_tomatoes("sentiment").train.texts]
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, count, len(reviews)):
            handle.write("\n".join(reviews[: min(len(reviews), count - start)]) + "\n")
    return path.stat().st_size


def tree_rss(process) -> int:
    """Resident bytes of a process and all its children (0 once it is gone)."""
    import psutil

    try:
        members = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in members)
    except psutil.Error:
        return 0


def rows_written(path: Path) -> int:
    """Rows in the growing .npy (the encoder writes to a temp file beside it)."""
    sizes = [p.stat().st_size for p in path.parent.glob(f".{path.name}.tmp-*")] or ([path.stat().st_size] if path.exists() else [0])
    return max(0, (max(sizes) - NPY_HEADER) // (DIM * 4))


def run(args: argparse.Namespace, workdir: Path) -> int:
    import psutil

    source, target = workdir / "lines.txt", workdir / "embeddings.npy"
    target.unlink(missing_ok=True)  # progress is read from the output's size: a previous run's file would read as done
    started = time.perf_counter()
    size = write_lines(source, args.lines)
    print(f"wrote {args.lines:,} lines ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    command = [sys.executable, "-m", "polyhead", "encode", str(source), "-o", str(target), "--backend", args.backend, "--no-progress"]
    command += ["--device", args.device] if args.device else []
    print("command: " + " ".join(command[1:]))
    started = time.perf_counter()
    child = subprocess.Popen(command)
    process = psutil.Process(child.pid)
    samples: list[tuple[float, int, int]] = []  # (seconds, rows done, rss bytes)
    next_report = 0.0
    deadline = started + args.max_minutes * 60
    while child.poll() is None:
        now = time.perf_counter()
        samples.append((now - started, rows_written(target), tree_rss(process)))
        if now >= next_report:
            seconds, rows, rss = samples[-1]
            rate = rows / seconds if seconds else 0.0
            print(f"  {seconds:7.0f} s  {rows:>9,} rows  {rate:6.0f} rows/s  RSS {rss / 1e6:7.0f} MB", flush=True)
            next_report = now + 60
        if now > deadline:
            child.terminate()
            child.wait()
            print(f"stopped after --max-minutes {args.max_minutes:g}")
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    sampled = max((rss for _, _, rss in samples), default=0)
    done = args.lines if child.returncode == 0 else rows_written(target)
    print(f"\n{done:,} of {args.lines:,} lines in {elapsed / 60:.1f} min ({done / elapsed:.0f} lines/s), exit status {child.returncode}")
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        window = [rss for _, rows, rss in samples if rows <= fraction * args.lines and rss]
        if window:
            print(f"  peak RSS up to {fraction:4.0%} of the lines: {max(window) / 1e6:6.0f} MB")
    print(f"peak RSS: {peak / 1e6:.0f} MB (kernel high-water mark; sampled max {sampled / 1e6:.0f} MB); limit {LIMIT_BYTES / 1e9:.1f} GB")
    if child.returncode == 0:
        import numpy as np

        shape = np.load(target, mmap_mode="r").shape
        print(f"output: {target.name} {shape}")
        if shape != (args.lines, DIM):
            print("FAIL: output has the wrong shape")
            return 1
    if args.in_memory_texts > 0:
        in_memory = in_memory_rate(source, args)
        print(f"in memory: {in_memory:.0f} texts/s (encode of the first {args.in_memory_texts:,} lines in one call); "
              f"streaming / in memory = {done / elapsed / in_memory:.2f} (the streaming figure includes start-up)")
    ok = peak < LIMIT_BYTES
    print("PASS" if ok else "FAIL", f"peak {peak / 1e9:.2f} GB {'<' if ok else '>='} {LIMIT_BYTES / 1e9:.1f} GB")
    return 0 if ok and child.returncode == 0 else 1


def in_memory_rate(source: Path, args: argparse.Namespace) -> float:
    """texts/s of one in-process `encode` call on the first --in-memory-texts lines (after a warm-up call)."""
    import torch

    from polyhead import SentenceEncoder

    with open(source, encoding="utf-8") as handle:
        texts = [line.rstrip("\n") for _, line in zip(range(args.in_memory_texts), handle)]
    encoder = SentenceEncoder(device=args.device, backend=args.backend)
    encoder.encode(texts[:20_000], show_progress=False)  # warm-up (and auto's probe on a GPU)

    def clock() -> float:
        if encoder.device.type == "cuda":
            torch.cuda.synchronize(encoder.device)
        return time.perf_counter()

    start = clock()
    encoder.encode(texts, show_progress=False)
    return len(texts) / (clock() - start)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="polyhead-memory-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
