"""`polyhead train CONFIG [key=value ...]` and `polyhead train --resume RUN_DIR`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import InputError
from .common import add_device_argument, existing_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one encoder with several task heads from a YAML config",
        description="Train the tasks of CONFIG jointly. Overrides are dotted key=value pairs "
        "(training.max_steps=200 tasks.topic.weight=2). Runs on several processes under "
        "`accelerate launch --multi_gpu --num_processes N -m polyhead train ...` (--multi_gpu also on CPUs).",
    )
    parser.add_argument("config", nargs="?", help="YAML run config (not needed with --resume)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--output-dir", help="run directory (overrides output_dir)")
    parser.add_argument("--no-progress", action="store_true", help="turn off progress bars")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config
    from ..training.data import load_task_data
    from ..training.extending import add_saved_tasks

    _check_launcher()
    overrides = list(args.overrides)
    if args.resume:
        # The run's own resolved config; file paths in it are already absolute.
        config_path, base = existing_dir(args.resume, "run directory") / "config.yaml", Path(".")
        if args.config:
            if "=" not in args.config:
                raise InputError("with --resume, give only KEY=VALUE overrides (the run's config.yaml is used)")
            overrides.insert(0, args.config)
        overrides.append(f"output_dir={args.resume}")
    else:
        if not args.config:
            raise InputError("give a CONFIG file, or --resume RUN_DIR")
        config_path = Path(args.config)
        base = config_path.parent
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.no_progress:
        overrides.append("training.progress=false")
    if args.device:
        overrides.append(f"training.device={args.device}")
    config = load_config(config_path, overrides)
    check_run_model(config)
    if args.resume:
        _check_not_finished(Path(args.resume), config, overrides)
    # Every data file is read and checked before PyTorch, transformers and the model load (a starting model's
    # tasks too: they are evaluated before and after, see `guard`).
    add_saved_tasks(config)
    task_data = {name: load_task_data(name, task, base) for name, task in config.tasks.items()}
    _print_paths(config, task_data)

    from ..tasks.tables import format_metrics_table
    from ..training.loop import TrainingError, TrainingInterrupted, train
    from .common import quiet_library_progress

    quiet_library_progress()
    try:
        result = train(config, resume=bool(args.resume), base_dir=base, task_data=task_data)
    except TrainingInterrupted as stopped:
        print(f"polyhead train: {stopped}", file=sys.stderr)
        return 130
    except TrainingError as error:
        print(f"polyhead train: error: {error}", file=sys.stderr)
        return 1
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0
    # With progress on, the trainer's "stopped at" line has just said why and which step is kept.
    why = "" if config.training.progress else f" ({result.stop_reason}); best validation step {result.best_step}"
    print(f"\n{result.steps} steps in {result.elapsed_s:.0f}s{why}")
    if result.test_metrics:
        print(f"test metrics of the best model ({result.model_dir}):")
        print(format_metrics_table(result.test_metrics))
    else:
        kept = f"the best validation step {result.best_step}" if result.best_step is not None else "the last step"
        print(f"no task has test data; validation metrics of the kept model ({kept}: {result.model_dir}):")
        print(format_metrics_table(result.validation_metrics))
    _print_guard(result.run_dir)
    print(f"report: {result.run_dir / 'report.md'}")
    return 0


def check_run_model(config) -> None:
    """What can be wrong with the model and where it trains, found before anything loads."""
    from ..devices import check_precision_on, resolve_device
    from ..resolve import check_model_source
    from .common import POOLING_CHOICES

    if config.model.pooling is not None and config.model.pooling not in POOLING_CHOICES:
        raise InputError(f"unknown pooling {config.model.pooling!r}; choose one of {', '.join(POOLING_CHOICES)}",
                         field="model.pooling")
    if config.model.name is not None:
        check_model_source(config.model.name)  # a name that is neither a directory nor reachable: at once, not after retries
    if config.training.device is not None or config.training.mixed_precision == "fp16":  # else no torch needed yet
        device = resolve_device(config.training.device, "training.device")
        check_precision_on(config.training.mixed_precision, device.type)


MULTI_PROCESS_COMMAND = "accelerate launch --multi_gpu --num_processes N -m polyhead train ..."


def _check_launcher(environ=None) -> None:
    """`accelerate launch --num_processes 2` without a multi-process launcher starts ONE process.

    Accelerate picks its multi-process launcher only for --multi_gpu (or a config file saying so);
    otherwise its simple launcher runs the script once, yet still sets MASTER_PORT for the
    processes that never start. That combination (no WORLD_SIZE) is caught here, before any work.
    """
    env = os.environ if environ is None else environ
    launched_by_accelerate = "ACCELERATE_MIXED_PRECISION" in env or "ACCELERATE_USE_CPU" in env
    if launched_by_accelerate and "MASTER_PORT" in env and "WORLD_SIZE" not in env:
        raise InputError(
            "accelerate launch was given several processes but started one: add --multi_gpu, Accelerate's "
            f"multi-process launcher (it also runs CPU processes, over gloo): {MULTI_PROCESS_COMMAND}"
        )


def _print_guard(run_dir: Path) -> None:
    """A run that extended a trained model: its old tasks before and after (the guard passed to get here)."""
    guard = run_dir / "guard.json"
    if not guard.is_file():
        return
    data = json.loads(guard.read_text(encoding="utf-8"))
    print(f"old tasks of {data['starting_model']} ({data['metric']}, test split; before -> after):")
    for row in data["rows"]:
        if row["split"] == "test":
            print(f"  {row['task']:<14} {row['before']:.4f} -> {row['after']:.4f}  (drop {row['drop']:+.4f})")
    lee = data["lee_spearman"]
    print(f"  {'lee (embed.)':<14} {lee['before']:.4f} -> {lee['after']:.4f}  (drop {lee['before'] - lee['after']:+.4f})")


def _check_not_finished(run_dir: Path, config, overrides: list[str]) -> None:
    """Resuming a finished run would only evaluate it again and append another test record: say so instead."""
    finished = run_dir / "test_metrics.json"
    if not finished.is_file():
        return
    try:
        steps = int(json.loads(finished.read_text(encoding="utf-8"))["steps"])
    except (ValueError, KeyError, TypeError):
        return
    longer = config.training.max_steps is not None and config.training.max_steps > steps
    rescheduled = any(o.split("=", 1)[0].strip().startswith(("training.epochs", "phases")) for o in overrides)
    if not (longer or rescheduled):
        raise InputError(
            f"the run finished at step {steps} (see {run_dir / 'report.md'}); to train further, resume with a larger "
            f"training.max_steps, e.g. training.max_steps={2 * steps}", file=run_dir,
        )


def _print_paths(config, task_data: dict) -> None:
    """The resolved data files and run directory, so a relative path never lands somewhere unexpected."""
    for name, data in task_data.items():
        spec = data.source_spec
        if isinstance(spec, dict) and "hf" in spec:
            splits = ", ".join(f"{split} {hf_split}" for split, hf_split in (spec.get("splits") or {}).items())
            print(f"task {name}: Hugging Face dataset {data.source} ({splits})")
        elif isinstance(spec, dict):
            files = ", ".join(f"{split} {spec[split]}" for split in ("train", "validation", "test") if spec.get(split))
            print(f"task {name}: {files}")
    print(f"run directory: {Path(config.output_dir).resolve()}")
