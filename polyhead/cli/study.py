"""`polyhead study CONFIG --strategies ...`: compare training strategies on the same tasks."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(subparsers) -> None:
    from ..study import DEFAULT_STRATEGIES

    parser = subparsers.add_parser(
        "study",
        help="train the same tasks under several strategies and write one comparison report",
        description="Train CONFIG's tasks once per strategy with the same step budget and seed, then write "
        "study.md and study.png: per-task test accuracy and macro-F1, training time, trainable parameters and "
        "forgetting (lee similarity before/after), plus a logistic-regression baseline on frozen embeddings. "
        f"Strategies: {', '.join(DEFAULT_STRATEGIES)} (single_task runs each task alone; single_task:NAME one). "
        "Re-running the same command continues an interrupted study.",
    )
    parser.add_argument("config", help="YAML run config; training.max_steps is the budget of every strategy")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES), help="comma-separated strategies (default: all)")
    parser.add_argument("-o", "--output", default="runs/study", help="study directory (default: runs/study)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    parser.add_argument("--no-progress", action="store_true", help="turn off progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..study import run_study, write_study_report
    from ..training import load_config
    from .common import quiet_library_progress

    quiet_library_progress()
    overrides = list(args.overrides) + (["training.progress=false"] if args.no_progress else [])
    config_path = Path(args.config)
    base = load_config(config_path, overrides)
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    results = run_study(base, names, Path(args.output), config_path.parent, baseline=not args.no_baseline)
    command = "polyhead " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["study"] else "polyhead study " + args.config
    report = write_study_report(results, Path(args.output), command)
    print(report.read_text())
    return 0
