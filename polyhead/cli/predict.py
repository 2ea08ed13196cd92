"""`polyhead predict MODEL_DIR TEXT... | --input FILE`: JSON lines of per-task predictions (`--pairs`: of text pairs)."""

from __future__ import annotations

import argparse
import json
import sys

from .common import add_device_argument, add_speed_arguments
from .ray_jobs import add_engine_arguments, engine_is_ray, run_predict


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="print each task's label and probability for texts, as JSON lines",
        description="Predict every task (or --tasks) of MODEL_DIR for the given TEXTs or the texts of --input. "
        "Prints one JSON object per text: {\"text\": ..., TASK: {\"label\": ..., \"probability\": ...}}.",
    )
    parser.add_argument("model_dir", help="a model directory written by `polyhead train` (RUN_DIR/model), MultiTaskModel.save or `polyhead export`")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    parser.add_argument("--input", help="read texts from this .txt/.csv/.jsonl/.parquet file")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    parser.add_argument("--pairs", action="store_true",
                        help="answer the pair tasks (pair_classification, pair_regression): TEXT arguments are taken two at a "
                        "time, or --input rows give --text-column and --pair-column")
    parser.add_argument("--pair-column", default="text_pair", help="with --pairs and --input: the second text's column (default: text_pair)")
    parser.add_argument("--tasks", help="comma-separated tasks to predict (default: all)")
    parser.add_argument("--all-probabilities", action="store_true", help="include every class's (or label's) probability")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="with --input: write a table (.csv, .jsonl or .parquet) of the input's columns (ids and all) plus "
                        "TASK_label, TASK_probability (each kind's answer fields; --all-probabilities adds one column per class) "
                        "instead of printing JSON lines")
    add_speed_arguments(parser)
    add_device_argument(parser)
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if engine_is_ray(args):
        return run_predict(args)
    from ..errors import InputError
    from .common import (apply_threads, check_input_columns, check_output_suffix, check_task_names, load_task_model,
                         resolve_cli_device, task_model_dir)
    from ..prediction_table import TABLE_SUFFIXES

    # Every argument, file and task name is checked before the model loads.
    if bool(args.texts) == bool(args.input):
        raise InputError("give either TEXT arguments or --input FILE")
    if args.pairs and len(args.texts) % 2:
        raise InputError(f"--pairs takes TEXT arguments two at a time (first, second), got {len(args.texts)}")
    if args.output and not args.input:
        raise InputError("-o writes the predictions of an --input file; TEXT arguments are printed", field="--output")
    if args.output:
        check_output_suffix(args.output, TABLE_SUFFIXES)
    columns = (args.text_column, args.pair_column) if args.pairs else (args.text_column,)
    if args.input:
        check_input_columns(args.input, *columns)
    model_dir = task_model_dir(args.model_dir, allow_exported=True)
    tasks = check_task_names(args.tasks, model_dir)
    device = resolve_cli_device(args)
    apply_threads(args)
    model = load_task_model(model_dir, args.backend, args.max_int8_loss, device=device)
    offered = model.pair_tasks if args.pairs else model.answering_tasks
    if tasks:
        unknown = [t for t in tasks if t not in model.tasks]
        if unknown:
            raise InputError(f"unknown task(s) {unknown}; the model has {model.task_names}", field="--tasks")
    elif not offered:
        other = "tasks of single texts: leave out --pairs" if args.pairs else f"pair tasks ({', '.join(model.pair_tasks)}): add --pairs"
        raise InputError(f"the model has no {'pair tasks' if args.pairs else 'tasks that answer one text'}; it has {other}",
                         file=model_dir)
    wrong = [t for t in tasks or [] if t not in offered]
    if wrong:
        hint = "they answer single texts: leave out --pairs" if args.pairs else "they answer pairs of texts: add --pairs"
        raise InputError(f"task(s) {wrong}: {hint}", field="--tasks")
    predict = model.predict_pairs if args.pairs else model.predict
    with _graph_ticker(args, model):
        if args.output:
            return _write_table(args, predict, columns, tasks)
        _print_predictions(args, predict, tasks)
    return 0


def _graph_ticker(args: argparse.Namespace, model):
    """A heartbeat while an ONNX backend builds its graph for a PyTorch model (int8: minutes on a CPU)."""
    import contextlib

    from ..encoder import SentenceEncoder

    encoder = getattr(model, "encoder", None)
    if args.backend not in ("onnx", "onnx-int8") or not isinstance(encoder, SentenceEncoder):
        return contextlib.nullcontext()
    from .build_ticker import graph_build_ticker

    return graph_build_ticker(encoder, f"the ONNX graph ({'int8' if args.backend == 'onnx-int8' else 'fp32'})")


def _print_predictions(args: argparse.Namespace, predict, tasks: list[str] | None) -> None:
    """One JSON line per text (or pair) on stdout."""
    from ..textio import iter_pair_chunks, iter_text_chunks

    if args.pairs:
        chunks = ([list(zip(args.texts[::2], args.texts[1::2]))] if args.texts
                  else iter_pair_chunks(args.input, args.text_column, args.pair_column, chunk_size=4096))
    else:
        chunks = [args.texts] if args.texts else iter_text_chunks(args.input, args.text_column, chunk_size=4096)
    for chunk in chunks:
        answers = predict(chunk, tasks=tasks, batch_size=args.batch_size)
        for item, prediction in zip(chunk, answers):
            record: dict = {"text": item[0], "text_pair": item[1]} if args.pairs else {"text": item}
            for task, result in prediction.items():
                answer = result.to_dict()
                record[task] = answer if args.all_probabilities else {k: v for k, v in answer.items() if k != "probabilities"}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_table(args: argparse.Namespace, predict, columns: tuple[str, ...], tasks: list[str] | None) -> int:
    """--input rows with every column kept, each task's answer beside them, to -o."""
    from pathlib import Path

    from ..prediction_table import flat_answer, input_records, table_writer

    answered: dict[str, None] = {}
    with table_writer(args.output) as writer:
        for records in input_records(Path(args.input), columns):
            items = [tuple(r[c] for c in columns) if args.pairs else r[columns[0]] for r in records]
            for record, prediction in zip(records, predict(items, tasks=tasks, batch_size=args.batch_size)):
                for task, result in prediction.items():
                    answered[task] = None
                    record.update(flat_answer(task, result.to_dict(), args.all_probabilities))
            writer.write(records)
    print(f"wrote {writer.rows} rows with the predictions of {', '.join(answered) or 'no task'} to {args.output}", file=sys.stderr)
    return 0
