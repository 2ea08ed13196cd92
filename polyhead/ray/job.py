"""`polyhead encode/predict --engine ray`: many input files in, Parquet shards and a manifest out.

The driver plans shards (fixed row ranges of each input), hands them to a pool of Ray
actors (one model each, loaded once) and records each finished shard in the manifest. A
worker reads its rows from the shared filesystem and writes its shard itself (temp file +
rename), so neither texts nor vectors pass through the driver. Actors are restarted and
their calls retried when a worker process dies; a shard is rewritten whole, so every row
is there exactly once. `resume=True` skips shards already written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..textio import DEFAULT_CHUNK
from .faults import fault_once
from .loading import ModelSpec
from .manifest import MANIFEST, SHARD_STATS_KEY, Manifest, Shard, check_same_job, plan, shard_written, written_stats
from .texts import check_on_invalid

KINDS = ("encode", "predict")
IN_FLIGHT_PER_WORKER = 2
"""Shards queued on each actor: one computing, one ready, so a worker never waits for the driver."""


@dataclass
class JobOptions:
    """One job: what to read, what to compute, where to write, on which cluster."""

    inputs: str
    """A folder, a glob pattern or one file (.txt, .csv, .jsonl, .parquet)."""
    output: Path
    """The output folder: manifest.json and shards/part-NNNNN.parquet."""
    spec: ModelSpec = field(default_factory=ModelSpec)
    """The model each worker loads, and how it computes."""
    kind: str = "encode"
    """`encode` (an `embedding` column) or `predict` (a column per task)."""
    text_column: str = "text"
    """Column holding the text (.csv/.jsonl/.parquet); a .txt file has one text a line."""
    tasks: list[str] | None = None
    """predict: the tasks to answer (default: every task that answers one text)."""
    all_probabilities: bool = False
    """predict: keep every class's probability in the answers."""
    on_invalid: str = "error"
    """Null, empty or non-string texts: `error` (naming file and line) or `null` (row kept, null result)."""
    chunk_size: int = DEFAULT_CHUNK
    """Rows per shard; the default cuts where single-process `polyhead encode` cuts its chunks (same vectors, bit for bit)."""
    resume: bool = False
    """Finish an earlier job in `output`: only shards not fully written are computed."""
    address: str | None = None
    """Join this Ray cluster; None starts a local one for the job and stops it afterwards."""
    workers: int | None = None
    """Actors (each loads the model once); None: as many as the cluster's CPUs (or GPUs) allow."""
    cpus_per_worker: float = 1.0
    """CPUs Ray reserves for each worker (its encoding threads)."""
    gpus_per_worker: float = 0.0
    """GPUs for each worker (1 on a GPU cluster)."""
    show_progress: bool = True
    """A bar over all rows of the job."""


@dataclass
class JobResult:
    """What a job did."""

    output: Path
    total_rows: int
    shards: int
    computed: list[int]
    """Indexes of the shards computed by this call (the others were already written)."""
    invalid: int
    truncated: int
    workers: int
    seconds: float


def run_job(options: JobOptions) -> JobResult:
    """Compute every shard not yet written; the manifest records each as it finishes."""
    from .inputs import count_rows, expand_inputs
    from .require import require_ray

    require_ray()
    if options.kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {options.kind!r}")
    check_on_invalid(options.on_invalid)
    started = time.perf_counter()
    files = expand_inputs(options.inputs)
    output = Path(options.output)
    if output.exists() and not output.is_dir():
        raise InputError("is a file; the Ray engine writes a folder of shards", file=output)
    existing = output / MANIFEST
    if existing.exists() and not options.resume:
        raise InputError("holds an earlier job's manifest: add --resume to finish it, or choose an empty folder", file=output)
    counted = [count_rows(f, options.text_column, every=options.chunk_size) for f in files]
    manifest = plan(options.kind, _settings(options), files, [rows for rows, _ in counted], options.chunk_size,
                    [starts for _, starts in counted])
    if existing.exists():
        old = Manifest.load(output)
        check_same_job(old, manifest, output)
        for shard, fresh in zip(old.shards, manifest.shards):
            shard.seek = fresh.seek  # found again just now: the old job's may predate them
        manifest.shards = old.shards
    output.mkdir(parents=True, exist_ok=True)
    for shard in manifest.shards:
        if shard.status == "done" and not shard_written(output, shard):
            shard.status = "pending"  # deleted or damaged since: computed again
        elif shard.status != "done" and shard_written(output, shard):  # written just before a kill, not yet recorded
            stats = written_stats(output, shard)
            shard.status, shard.rows = "done", shard.expected_rows
            shard.invalid, shard.truncated, shard.seconds = stats.get("invalid", 0), stats.get("truncated", 0), stats.get("seconds")
    manifest.save(output)
    todo = [s for s in manifest.shards if s.status != "done"]
    workers = 0
    if todo:
        workers = _run_shards(options, manifest, todo, output)
    done = [s for s in manifest.shards if s.status == "done"]
    return JobResult(output=output, total_rows=manifest.total_rows, shards=len(manifest.shards), computed=[s.index for s in todo],
                     invalid=sum(s.invalid for s in done), truncated=sum(s.truncated for s in done), workers=workers,
                     seconds=time.perf_counter() - started)


def _settings(options: JobOptions) -> dict:
    spec = options.spec
    settings = {"model": spec.model, "backend": spec.backend, "pooling": spec.pooling, "normalize": spec.normalize,
                "max_seq_length": spec.max_seq_length, "max_int8_loss": spec.max_int8_loss, "batch_size": spec.batch_size,
                "text_column": options.text_column, "chunk_size": options.chunk_size, "on_invalid": options.on_invalid}
    if options.kind == "predict":
        settings.update(tasks=options.tasks, all_probabilities=options.all_probabilities)
    return settings


def _worker_count(options: JobOptions, resources: dict, shards: int) -> int:
    if options.workers is not None:
        if options.workers < 1:
            raise InputError(f"workers must be >= 1, got {options.workers}", field="--workers")
        return min(options.workers, shards)
    if options.gpus_per_worker > 0:
        fit = int(resources.get("GPU", 0) // options.gpus_per_worker)
        if fit < 1:
            raise InputError(f"the cluster has {resources.get('GPU', 0):g} GPUs; each worker asks for {options.gpus_per_worker:g}",
                             field="--gpus-per-worker")
    else:
        fit = int(resources.get("CPU", 1) // max(options.cpus_per_worker, 1e-9))
    return max(1, min(fit, shards))


def _run_shards(options: JobOptions, manifest: Manifest, todo: list[Shard], output: Path) -> int:
    from ..inference.batching import ThroughputBar
    from .cluster import ray_cluster

    with ray_cluster(options.address) as resources:
        import ray

        count = _worker_count(options, resources, len(todo))
        actor_class = ray.remote(ShardWorker).options(
            num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker, max_restarts=-1, max_task_retries=-1,
        )
        actors = [actor_class.remote(options.spec, options.kind, options.text_column, options.tasks, options.on_invalid,
                                     options.all_probabilities) for _ in range(count)]
        queue = list(todo)
        in_flight: dict = {}
        done_rows = sum(s.expected_rows for s in manifest.shards if s.status == "done")
        with ThroughputBar(manifest.total_rows, f"{options.kind} (ray, {count} workers)", options.show_progress) as bar:
            bar.bar.update(done_rows)
            try:
                for actor in actors:
                    for _ in range(IN_FLIGHT_PER_WORKER):
                        _submit(queue, in_flight, actor, output)
                while in_flight:
                    ready, _ = ray.wait(list(in_flight), num_returns=1)
                    actor, shard = in_flight.pop(ready[0])
                    stats = _result(ray, ready[0])
                    shard.status, shard.rows = "done", stats["rows"]
                    shard.invalid, shard.truncated, shard.seconds = stats["invalid"], stats["truncated"], round(stats["seconds"], 3)
                    manifest.save(output)
                    fault_once("ray-driver-shard-done")
                    bar.update(stats["rows"], stats["tokens"])
                    _submit(queue, in_flight, actor, output)
            finally:
                for ref in in_flight:
                    ray.cancel(ref, force=True)
                for actor in actors:
                    ray.kill(actor)
    return count


def _submit(queue: list[Shard], in_flight: dict, actor, output: Path) -> None:
    if queue:
        shard = queue.pop(0)
        in_flight[actor.run.remote(shard.index, shard.input, shard.row_start, shard.row_end, shard.row_id_start,
                                   str(output / shard.path), shard.seek)] = (actor, shard)


def _result(ray, ref) -> dict:
    """A shard's stats; a worker's InputError (an invalid text) comes out as itself, one line."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, InputError):
            raise cause from None
        raise


class ShardWorker:
    """A Ray actor: loads the model once, then computes and writes one shard per call."""

    def __init__(self, spec: ModelSpec, kind: str, text_column: str, tasks: list[str] | None, on_invalid: str,
                 all_probabilities: bool) -> None:
        from .embedder import _checked_tasks

        self.spec, self.kind, self.text_column = spec, kind, text_column
        self.on_invalid, self.all_probabilities = on_invalid, all_probabilities
        if kind == "encode":
            self.model = spec.load_encoder()
            self.tasks = None
        else:
            self.model = spec.load_task_model()
            self.tasks = _checked_tasks(self.model, tasks)

    def run(self, index: int, input_path: str, row_start: int, row_end: int, row_id_start: int, shard_path: str,
            seek: dict | None = None) -> dict:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..fileio import atomic_file
        from .embedder import embed_values, predict_values
        from .inputs import read_range

        started = time.perf_counter()
        path = Path(input_path)
        lines, values = read_range(path, self.text_column, row_start, row_end, seek)
        if len(values) != row_end - row_start:
            raise InputError(f"expected rows {row_start + 1}-{row_end}, found {len(values)}: the file changed during the job", file=path)

        def where(i: int) -> str:
            return f"{path}:{lines[i]}"

        columns = {
            "row_id": pa.array(np.arange(row_id_start, row_id_start + len(values), dtype=np.int64)),
            "file": pa.array([input_path] * len(values), pa.string()),
            "line": pa.array(lines, pa.int64()),
            self.text_column: pa.array([v if isinstance(v, str) else None for v in values], pa.string()),
        }
        if self.kind == "encode":
            column, stats = embed_values(self.model, values, self.spec, self.on_invalid, where, self.text_column)
            columns["embedding"] = column
        else:
            answers, stats = predict_values(self.model, values, self.tasks, self.spec, self.on_invalid, where, self.text_column,
                                            self.all_probabilities)
            columns.update(answers)
        fault_once("ray-worker-shard-computed")
        result = {"index": index, "rows": stats.rows, "invalid": stats.invalid, "truncated": stats.truncated, "tokens": stats.tokens,
                  "seconds": time.perf_counter() - started}
        with atomic_file(shard_path, "wb") as handle:
            # The stats travel in the file too: a driver killed before recording them finds them there on --resume.
            pq.write_table(pa.table(columns).replace_schema_metadata({SHARD_STATS_KEY: json.dumps(result)}), handle)
        return result
