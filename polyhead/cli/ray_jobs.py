"""`--engine ray` for `polyhead encode` and `polyhead predict`: many files in, Parquet shards and a manifest out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..ray.texts import INVALID_CHOICES

ENGINES = ("local", "ray")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--engine and the Ray engine's options (used only with --engine ray)."""
    group = parser.add_argument_group("engine (polyhead[ray])")
    group.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: this process, one file; ray: a Ray cluster over a folder or glob of files, writing Parquet "
                       "shards and manifest.json into the -o folder (default: local)")
    group.add_argument("--address", default=None,
                       help="with --engine ray: join this running cluster (e.g. auto, or ray://HOST:10001); default: start a local one "
                       "for the job and stop it afterwards")
    group.add_argument("--resume", action="store_true", help="with --engine ray: finish an earlier job in the -o folder (only shards "
                       "not fully written are computed)")
    group.add_argument("--workers", type=int, default=None, help="with --engine ray: workers, each loading the model once "
                       "(default: as many as the cluster's CPUs, or GPUs, allow)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, help="with --engine ray: CPUs per worker (default: 1)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, help="with --engine ray: GPUs per worker (default: 0; 1 on GPU nodes)")
    group.add_argument("--shard-rows", type=int, default=None, help="with --engine ray: rows per shard (default: 8192, the chunks "
                       "single-process encode uses, so vectors are the same bit for bit)")
    group.add_argument("--invalid", choices=INVALID_CHOICES, default="error",
                       help="with --engine ray: a null, empty or non-string text stops the job naming its file and line (error), or "
                       "keeps its row with a null result (null); both are counted (default: error)")


def _job_options(args: argparse.Namespace, kind: str, inputs: str, output: str | None, spec, tasks: list[str] | None):
    from ..ray.job import JobOptions
    from ..textio import DEFAULT_CHUNK
    from .common import show_progress

    if not output:
        raise InputError("--engine ray writes a folder of Parquet shards: give -o OUT_DIR", field="--output")
    if getattr(args, "device", None) is not None:
        raise InputError("--device does not apply to --engine ray: workers use what Ray gives them (--gpus-per-worker)", field="--device")
    if args.shard_rows is not None and args.shard_rows < 1:
        raise InputError(f"--shard-rows must be at least 1, got {args.shard_rows}", field="--shard-rows")
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise InputError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    return JobOptions(
        inputs=inputs, output=Path(output), spec=spec, kind=kind, text_column=args.text_column, tasks=tasks,
        all_probabilities=getattr(args, "all_probabilities", False), on_invalid=args.invalid,
        chunk_size=args.shard_rows or DEFAULT_CHUNK, resume=args.resume, address=args.address, workers=args.workers,
        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
        show_progress=show_progress(args) if hasattr(args, "no_progress") else sys.stderr.isatty(),
    )


def _check_engine_only(args: argparse.Namespace) -> None:
    """Ray options given without --engine ray would silently do nothing: say so."""
    given = [flag for flag, on in (("--address", args.address), ("--resume", args.resume), ("--workers", args.workers is not None),
                                   ("--shard-rows", args.shard_rows is not None), ("--invalid", args.invalid != "error"),
                                   ("--cpus-per-worker", args.cpus_per_worker != 1.0), ("--gpus-per-worker", args.gpus_per_worker != 0.0))
             if on]
    if given:
        raise InputError(f"{', '.join(given)}: only with --engine ray; add it or leave them out")


def engine_is_ray(args: argparse.Namespace) -> bool:
    """Whether the command runs on Ray; without --engine ray, Ray-only options are an error."""
    if getattr(args, "engine", "local") == "ray":
        return True
    if hasattr(args, "engine"):
        _check_engine_only(args)
    return False


def run_encode(args: argparse.Namespace) -> int:
    """`polyhead encode INPUTS -o OUT_DIR --engine ray`."""
    from ..ray.loading import ModelSpec
    from ..ray.require import require_ray
    from ..resolve import check_model_source

    require_ray("--engine ray")
    if args.model is not None:
        check_model_source(args.model)
    spec = ModelSpec(args.model, backend=args.backend, pooling=args.pooling, normalize=args.normalize,
                     max_seq_length=args.max_seq_length, max_int8_loss=args.max_int8_loss, batch_size=args.batch_size, threads=args.threads)
    return _run(_job_options(args, "encode", args.input, args.output, spec, None))


def run_predict(args: argparse.Namespace) -> int:
    """`polyhead predict MODEL_DIR --input INPUTS -o OUT_DIR --engine ray`."""
    from ..ray.loading import ModelSpec
    from ..ray.require import require_ray
    from .common import check_task_names, task_model_dir

    require_ray("--engine ray")
    if args.texts or not args.input:
        raise InputError("--engine ray predicts the files of --input (a folder, glob or file), not TEXT arguments", field="--input")
    if args.pairs:
        raise InputError("--engine ray answers tasks of one text; --pairs runs with the local engine", field="--pairs")
    model_dir = task_model_dir(args.model_dir, allow_exported=True)
    tasks = check_task_names(args.tasks, model_dir)  # a misspelt task fails here, before a cluster starts
    spec = ModelSpec(str(model_dir), backend=args.backend, max_int8_loss=args.max_int8_loss, batch_size=args.batch_size, threads=args.threads)
    return _run(_job_options(args, "predict", args.input, getattr(args, "output", None), spec, tasks))


def _run(options) -> int:
    from ..ray.job import run_job

    result = run_job(options)
    skipped = result.shards - len(result.computed)
    notes = [f"{len(result.computed)} computed now on {result.workers} workers" if result.computed else "nothing left to compute"]
    if skipped:
        notes.append(f"{skipped} already written")
    if result.invalid:
        notes.append(f"{result.invalid} rows with a null, empty or non-string text kept with a null result")
    if result.truncated:
        notes.append(f"{result.truncated} texts truncated")
    print(f"wrote {result.total_rows} rows in {result.shards} shards to {result.output} ({'; '.join(notes)}); "
          f"manifest: {result.output / 'manifest.json'}", file=sys.stderr)
    return 0
