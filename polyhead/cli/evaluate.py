"""`polyhead evaluate MODEL_DIR [--split test] [--data TASK=FILE --label-map A=B,...]`: per-task metrics.

Metrics on the model's own data go to MODEL_DIR/eval_<split>.json; metrics on other files
(--data) go to MODEL_DIR/eval_<task>-<file name>.json with the file's path and SHA-256, so
evaluating a second domain never overwrites the in-domain result.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..errors import InputError
from .common import add_device_argument, add_speed_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="per-task accuracy, F1 and confusion matrices of a saved model",
        description="Evaluate every task of MODEL_DIR on a split of the data it was trained on "
        "(or only the tasks given with --data TASK=FILE, on those files), print the metrics and write them as JSON "
        "next to the model.",
    )
    parser.add_argument("model_dir", help="a model directory written by `polyhead train` (RUN_DIR/model) or MultiTaskModel.save")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"), help="split to evaluate (default: test)")
    parser.add_argument("--data", action="append", default=[], metavar="TASK=FILE",
                        help="evaluate TASK on this .csv/.jsonl/.parquet file instead (repeatable); writes MODEL_DIR/eval_TASK-FILENAME.json")
    parser.add_argument("--text-column", default="text", help="text column of --data files (default: text)")
    parser.add_argument("--pair-column", default="text_pair",
                        help="second text column of --data files for pair and contrastive tasks (default: text_pair)")
    parser.add_argument("--label-column", default="label",
                        help="label (target) column of --data files, or several separated by commas for a regression task (default: label)")
    parser.add_argument("--label-map", metavar="A=B,...|FILE",
                        help="rename the --data files' labels to the model's (great=fresh,other=rotten), or a .json/.yaml file of such a mapping")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default: 64)")
    parser.add_argument("--max-examples", type=int, default=None, help="evaluate at most N examples per task")
    parser.add_argument("-o", "--output", help="write the metrics JSON here (default: next to the model, see above)")
    parser.add_argument("--per-class", action="store_true", help="also print each task's per-class report")
    parser.add_argument("--errors", metavar="FILE",
                        help="write the misclassified examples (task, text, true and predicted label, confidence; most confident "
                        "first) to this .csv/.jsonl/.parquet file, and print the worst few")
    add_speed_arguments(parser, int8_budget=False)  # evaluates the PyTorch model, which records no int8 cost
    add_device_argument(parser)
    parser.set_defaults(func=run)


def parse_label_map(value: str | None) -> dict[str, str]:
    """`A=B,C=D` or a .json/.yaml file holding {A: B, C: D}."""
    if not value:
        return {}
    path = Path(value)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        if not path.is_file():
            raise InputError("label map file not found", file=path)
        from ..training.yaml_dataclasses import compose_with_lines  # reads JSON too; labels stay as written ("no" is "no")

        mapping = compose_with_lines(path.read_text(encoding="utf-8"), path, scalars_as_written=True)
        if not isinstance(mapping, dict):
            raise InputError("a label map file must hold a mapping {data label: model label}", file=path)
        return {str(k).strip(): str(v).strip() for k, v in mapping.items()}
    mapping = {}
    for item in value.split(","):
        if item.count("=") != 1 or not all(part.strip() for part in item.split("=")):
            raise InputError(f"--label-map item {item!r} is not DATA_LABEL=MODEL_LABEL")
        source, target = (part.strip() for part in item.split("="))
        mapping[source] = target
    return mapping


def _model_tasks(model_dir: Path):
    """Task name -> TaskSpec, read from the model's JSON without loading it (no torch)."""
    from ..fileio import read_json
    from ..task_spec import TaskSpec
    from .common import MODEL_CONFIG

    return {task["name"]: TaskSpec.from_dict(task) for task in read_json(model_dir / MODEL_CONFIG)["tasks"]}


def _label_columns(value: str) -> str | list[str]:
    """`a,b` names several target columns (a regression task with several targets)."""
    columns = [part.strip() for part in value.split(",") if part.strip()]
    return columns[0] if len(columns) == 1 else columns


def _output_name(data_files: dict[str, Path]) -> str:
    parts = [f"{task}-{re.sub(r'[^A-Za-z0-9._-]+', '_', path.stem)}" for task, path in data_files.items()]
    return f"eval_{'_'.join(parts)}.json"


def _print_lengths(encoder, data: dict, split: str) -> None:
    """The same truncation table as at the start of training, for the evaluated texts."""
    from ..truncation import length_report, length_summary_lines

    texts = {task: {split: task_data.texts.get(split, [])} for task, task_data in data.items()}
    report = length_report(texts, encoder.text_tokenizer.token_lengths, encoder.max_seq_length)
    print("\n".join(length_summary_lines(report, encoder.max_seq_length, encoder.truncation, None)))


def run(args: argparse.Namespace) -> int:
    from .common import apply_threads, task_model_dir

    model_dir = task_model_dir(args.model_dir, allow_exported=False)
    data_files: dict[str, Path] = {}
    for item in args.data:
        if "=" not in item:
            raise InputError(f"--data {item!r} is not TASK=FILE")
        task, path = item.split("=", 1)
        data_files[task.strip()] = Path(path)
    if args.errors:
        from .common import check_output_suffix
        from ..prediction_table import TABLE_SUFFIXES

        check_output_suffix(args.errors, TABLE_SUFFIXES, "--errors file")
    label_map = parse_label_map(args.label_map)
    if label_map and not data_files:
        raise InputError("--label-map applies to --data files; give --data TASK=FILE too")

    # Every file and label is checked before PyTorch, transformers and the model load.
    from ..training.saved_data import read_eval_file

    specs = _model_tasks(model_dir)
    unknown = sorted(set(data_files) - set(specs))
    if unknown:
        raise InputError(f"--data names unknown task(s) {unknown}; the model has {sorted(specs)}")
    for task, path in data_files.items():
        targets = sorted(set(label_map.values()) - set(specs[task].labels))
        if targets:
            raise InputError(f"--label-map maps to {targets}, which task {task!r} does not know (it knows {', '.join(specs[task].labels)})")
    file_data = {task: read_eval_file(specs[task], path, args.split, args.text_column, _label_columns(args.label_column), label_map,
                                      args.max_examples, args.pair_column) for task, path in data_files.items()}

    from ..fileio import sha256_file, write_json
    from ..tasks.tables import format_classification_report, format_metrics_table
    from ..model import MultiTaskModel
    from ..training.evaluation import evaluate_tasks, task_outputs
    from .common import quiet_library_progress

    from .common import resolve_cli_device

    device = resolve_cli_device(args)
    quiet_library_progress()
    apply_threads(args)
    model = MultiTaskModel.load(model_dir, device=device)
    if args.backend is not None:
        model.encoder.backend = args.backend
    if file_data:
        data = file_data
        for task, path in data_files.items():
            mapped = f", labels mapped {', '.join(f'{a}->{b}' for a, b in label_map.items())}" if label_map else ""
            print(f"{task}: {path} ({data[task].size(args.split)} examples{mapped})")
    else:
        from ..training.saved_data import task_data_for_model

        data = task_data_for_model(model, args.split, args.max_examples)
    _print_lengths(model.encoder, data, args.split)
    outputs = task_outputs(model, data, args.split, args.batch_size)
    metrics = evaluate_tasks(model, data, args.split, outputs=outputs)
    what = "metrics on the --data files" if file_data else f"{args.split} metrics on the model's own data"
    print(f"{what}, model {model_dir}:")
    print(format_metrics_table(metrics))
    if args.per_class:
        for task, task_metrics in metrics.items():
            print(f"\n{task}:\n{format_classification_report(task_metrics)}")
    record: dict = {"model": str(model_dir.resolve()), "split": args.split, "tasks": metrics}
    if file_data:
        record["data"] = {
            task: {"file": str(path.resolve()), "sha256": sha256_file(path), "examples": data[task].size(args.split),
                   "text_column": args.text_column, "label_column": args.label_column, "label_map": label_map,
                   **({"pair_column": args.pair_column} if specs[task].task_kind.text_columns > 1 else {})}
            for task, path in data_files.items()
        }
        default_output = model_dir / _output_name(data_files)
    else:
        default_output = model_dir / f"eval_{args.split}.json"
    output = Path(args.output) if args.output else default_output
    write_json(output, record)
    print(f"\nwrote {output}")
    if args.errors:
        _write_errors(model, data, args, outputs)
    return 0


def _write_errors(model, data: dict, args: argparse.Namespace, outputs: dict) -> None:
    """The misclassified examples to --errors (from the answers the metrics came from), the worst few printed."""
    from ..prediction_errors import find_errors, worst_lines, write_errors

    errors = find_errors(model, data, args.split, outputs=outputs)
    write_errors(Path(args.errors), errors)
    if errors:
        print("\nworst errors (the most confident wrong answers; true, predicted (confidence)):")
        print("\n".join(worst_lines(errors)))
    print(f"wrote {len(errors)} misclassified examples to {args.errors}")
