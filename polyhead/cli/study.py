"""`polyhead study CONFIG`: compare training strategies on the same tasks, over several seeds."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    from ..study.strategies import DEFAULT_STRATEGIES, Budget

    budget = Budget()
    parser = subparsers.add_parser(
        "study",
        help="train the same tasks under several strategies and seeds and write one comparison report",
        description="Train CONFIG's tasks under each strategy with each seed, each up to its epoch budget with early "
        "stopping on validation, then write study.md and study.png: per-task test macro-F1 and accuracy (mean ± std "
        "over seeds, winners only beyond two standard errors), best validation point, wall and CPU time, examples "
        "seen, trainable parameters and forgetting (lee similarity before/after), plus a logistic-regression baseline "
        f"on frozen embeddings. Strategies: {', '.join(DEFAULT_STRATEGIES)} (single_task runs each task alone, "
        "single_task:NAME one; recipe:NAME a config of configs/recipes/ or any config file; pretrained evaluates fresh "
        "heads untrained). Re-running the same command continues an interrupted study.",
    )
    parser.add_argument("config", help="YAML run config: its tasks, data, model and seed")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES), help="comma-separated strategies (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per strategy: the config's seed, +1, ... (default: 3)")
    parser.add_argument("--epochs", type=float, default=budget.epochs, help=f"most epochs of fine-tuning strategies (default: {budget.epochs:g})")
    parser.add_argument("--probe-epochs", type=float, default=budget.probe_epochs,
                        help=f"most epochs of heads-only strategies (default: {budget.probe_epochs:g})")
    parser.add_argument("--evals-per-epoch", type=float, default=budget.evals_per_epoch,
                        help=f"validations per epoch of fine-tuning strategies (default: {budget.evals_per_epoch:g})")
    parser.add_argument("--patience", type=int, default=budget.patience,
                        help=f"validations without improvement before a run stops (default: {budget.patience})")
    parser.add_argument("-o", "--output", default="runs/study", help="study directory (default: runs/study)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    parser.add_argument("--no-progress", action="store_true", help="turn off progress bars")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: one run after another in this process; ray: each (strategy, seed) run is a Ray task, one GPU "
                        "each where the cluster has GPUs, else one CPU (needs polyhead[ray]; default: local)")
    parser.add_argument("--address", default=None, help="with --engine ray: join this running Ray cluster (default: start a local one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..study.strategies import Budget
    from ..training.config import load_config
    from .common import quiet_library_progress

    if args.seeds < 1 or args.epochs <= 0 or args.probe_epochs <= 0 or args.evals_per_epoch <= 0 or args.patience < 1:
        raise InputError("--seeds and --patience must be >= 1; --epochs, --probe-epochs and --evals-per-epoch > 0")
    if args.address and args.engine != "ray":
        raise InputError("--address applies to --engine ray", field="--address")
    if args.engine == "ray":
        from ..ray.require import require_ray

        require_ray("study --engine ray")
    overrides = list(args.overrides) + (["training.progress=false"] if args.no_progress else [])
    config_path = Path(args.config)
    base = load_config(config_path, overrides)
    from .train import check_run_model

    check_run_model(base)  # pooling, model name, device and precision: before the first run loads anything
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    from ..study import run_study, write_study_report  # the config is valid: now the heavy libraries

    quiet_library_progress()
    seeds = [base.training.seed + i for i in range(args.seeds)]
    budget = Budget(args.epochs, args.probe_epochs, args.evals_per_epoch, args.patience)
    command = "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["study"] else "polyhead study " + args.config
    from ..study.runner import StudyInterrupted

    try:
        results = run_study(base, names, Path(args.output), config_path.parent, seeds=seeds, budget=budget,
                            baseline=not args.no_baseline, command=command, engine=args.engine, address=args.address,
                            on_progress=lambda partial: write_study_report(partial, Path(args.output), command))
    except StudyInterrupted as stopped:
        print(f"polyhead study: {stopped}: {command}", file=sys.stderr)
        return 130
    report = write_study_report(results, Path(args.output), command)
    print(report.read_text())
    return 0
