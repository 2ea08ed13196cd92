"""`polyhead study --engine ray`: every (strategy, seed) run is a Ray task; results land as each finishes.

The runs of a study are independent, except that a strategy that starts from another's
model (`starts_from`) needs that run, with the same seed, first: its task takes the other
task's result as an argument, and Ray starts it only once that result exists. Each task
asks for one GPU where the cluster has GPUs, else `cpus_per_run` CPUs, and trains exactly
as the sequential study does (`train_one`, resuming from a checkpoint a killed study left).
Only the driver writes results.json (through `save`), so a killed study resumes as before.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .strategies import Strategy


def _train_task(strategy: Strategy, seed: int, study_dir: Path, base_dir: Path, sizes: dict[str, int], origin_row,
                origin_strategy: Strategy | None, threads: int | None):
    """Runs inside a Ray worker: one run, its starting model's row given by Ray once computed."""
    from .runner import train_one

    if threads:
        import torch

        torch.set_num_threads(threads)
    started = {}
    if strategy.starts_from and origin_row is not None:
        started[strategy.starts_from] = origin_row if isinstance(origin_row, dict) else asdict(origin_row)
    return train_one(strategy, seed, study_dir, base_dir, sizes, started, origin_strategy)


def run_on_ray(strategies: list[Strategy], seeds: list[int], done: set, by_key: dict, study_dir: Path, base_dir: Path,
               sizes: dict[str, int], save: Callable, *, address: str | None = None, cpus_per_run: float = 1.0) -> None:
    """Submit every run not in `done` (dependencies first), and `save` each row as its task finishes."""
    from ..ray.cluster import ray_cluster

    with ray_cluster(address) as resources:
        import ray

        gpus = resources.get("GPU", 0) >= 1
        # A worker process that dies is retried (the run resumes from its checkpoint); an exception is not.
        task = ray.remote(_train_task).options(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else cpus_per_run, max_retries=3)
        threads = None if gpus else max(1, int(cpus_per_run))
        pending: dict = {}
        refs: dict[tuple[str, int], object] = {}
        for seed in seeds:
            for strategy in strategies:  # dependencies first: an origin's ref exists before its dependents are submitted
                key = (strategy.name, seed)
                if key in done:
                    continue
                origin = next((s for s in strategies if s.name == strategy.starts_from), None)
                origin_row = None
                if strategy.starts_from:
                    origin_key = (strategy.starts_from, seed)
                    origin_row = refs[origin_key] if origin_key in refs else by_key.get(origin_key)
                print(f"\n=== {strategy.name} (seed {seed}): {strategy.description} [ray task]", flush=True)
                ref = task.remote(strategy, seed, study_dir, base_dir, sizes, origin_row, origin, threads)
                refs[key] = ref
                pending[ref] = key
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                key = pending.pop(ready[0])
                row = ray.get(ready[0])
                print(f"=== finished {key[0]} (seed {key[1]})", flush=True)
                save(row)
                by_key[key] = asdict(row)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
