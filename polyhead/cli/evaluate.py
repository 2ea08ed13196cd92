"""`polyhead evaluate MODEL_DIR [--split test]`: per-task metrics of a saved model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="per-task accuracy, F1 and confusion matrices of a saved model",
        description="Evaluate every task of MODEL_DIR on a split of the data it was trained on "
        "(or on files given with --data TASK=FILE), print the metrics and write them as JSON.",
    )
    parser.add_argument("model_dir", help="a model directory written by `polyhead train` or MultiTaskModel.save")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"), help="split to evaluate (default: test)")
    parser.add_argument("--data", action="append", default=[], metavar="TASK=FILE", help="evaluate TASK on this .csv/.jsonl/.parquet file instead")
    parser.add_argument("--text-column", default="text", help="text column of --data files (default: text)")
    parser.add_argument("--label-column", default="label", help="label column of --data files (default: label)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: 64)")
    parser.add_argument("--max-examples", type=int, default=None, help="evaluate at most N examples per task")
    parser.add_argument("-o", "--output", help="write the metrics JSON here (default: MODEL_DIR/eval_<split>.json)")
    parser.add_argument("--per-class", action="store_true", help="also print each task's per-class report")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..fileio import write_json
    from ..metrics import format_classification_report, format_metrics_table
    from ..model import MultiTaskModel
    from ..training.evaluation import evaluate_tasks
    from ..training.saved_data import task_data_for_model
    from .common import quiet_library_progress

    quiet_library_progress()
    model_dir = Path(args.model_dir)
    if not (model_dir / "polyhead_model.json").is_file():
        raise InputError("not a polyhead model directory (no polyhead_model.json)", file=model_dir)
    overrides = {}
    for item in args.data:
        if "=" not in item:
            raise InputError(f"--data {item!r} is not TASK=FILE")
        task, path = item.split("=", 1)
        overrides[task] = path
    model = MultiTaskModel.load(model_dir)
    data = task_data_for_model(model, args.split, overrides, args.text_column, args.label_column, args.max_examples)
    metrics = evaluate_tasks(model, data, args.split, args.batch_size)
    print(f"{args.split} metrics of {model_dir}:")
    print(format_metrics_table(metrics))
    if args.per_class:
        for task, task_metrics in metrics.items():
            print(f"\n{task}:\n{format_classification_report(task_metrics)}")
    output = Path(args.output) if args.output else model_dir / f"eval_{args.split}.json"
    write_json(output, {"model": str(model_dir), "split": args.split, "tasks": metrics})
    print(f"\nwrote {output}")
    return 0
