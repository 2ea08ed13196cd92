"""`polyhead export MODEL_DIR -o OUT`: one ONNX graph with pooling, normalization and task heads."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export an encoder or multi-task model to ONNX (optionally int8) for ONNX Runtime",
        description="Write OUT/model.onnx (transformer + pooling + normalization, plus every task head's "
        "probabilities for a multi-task model), the tokenizer files and polyhead_onnx.json. The graph is "
        "checked against PyTorch before it is written. --quantize adds model_int8.onnx (static int8 calibrated on "
        "the model's own task data, else Rotten Tomatoes reviews, with the products that cost most accuracy kept in fp32 "
        "until the budget --int8-min-cosine/--int8-mean-cosine holds) and prints its measured accuracy cost.",
    )
    parser.add_argument("model", help="model directory: a sentence-transformers/encoder dir or a polyhead multi-task model dir")
    parser.add_argument("-o", "--output", required=True, help="output directory (replaced only once complete)")
    parser.add_argument("--quantize", action="store_true", help="also write an int8 graph and measure its accuracy cost")
    parser.add_argument(
        "--reference",
        default=None,
        help="file of texts (.txt/.csv/.jsonl/.parquet) to measure the int8 cost on "
        "(default: 500 built-in Rotten Tomatoes validation texts)",
    )
    parser.add_argument("--text-column", default="text", help="column of --reference holding the text (default: text)")
    parser.add_argument("--int8-method", choices=("static", "dynamic"), default="static",
                        help="static: calibrated ranges, searched to meet the budget (default); dynamic: ranges per batch, "
                        "every product int8, no budget")
    parser.add_argument("--int8-min-cosine", type=float, default=0.99,
                        help="static int8 budget: lowest cosine of any embedding to its fp32 vector (default: 0.99)")
    parser.add_argument("--int8-mean-cosine", type=float, default=0.998,
                        help="static int8 budget: lowest mean cosine to fp32 (default: 0.998)")
    parser.add_argument("--calibration-data", action="append", default=[], metavar="NAME",
                        help="built-in dataset to calibrate static int8 on (repeatable; default: the model's own tasks' "
                        "data, else rotten_tomatoes:sentiment)")
    parser.add_argument("--no-optimize", action="store_true", help="skip ONNX Runtime's transformer fusions")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..resolve import check_model_source
    from ..textio import read_texts
    from .common import quiet_library_progress

    check_model_source(args.model)
    texts = read_texts(args.reference, args.text_column) if args.reference else []
    quiet_library_progress()
    from ..inference import ExportError, ExportOptions, export_onnx

    from ..datasets import is_builtin
    from ..inference.static_int8 import Int8Budget, StaticInt8Options

    unknown = [name for name in args.calibration_data if not is_builtin(name)]
    if unknown:
        raise InputError(f"--calibration-data {unknown[0]!r} is not a built-in dataset")
    try:
        budget = Int8Budget(min_cosine=args.int8_min_cosine, mean_cosine=args.int8_mean_cosine)
    except ValueError as error:
        raise InputError(str(error).replace("Int8Budget.", "--int8-").replace("_", "-")) from None
    options = ExportOptions(
        opset=args.opset,
        optimize=not args.no_optimize,
        quantize=args.quantize,
        reference_texts=texts,
        reference_source=str(args.reference or ""),
        int8_method=args.int8_method,
        int8=StaticInt8Options(budget=budget),
        calibration_data=list(args.calibration_data),
    )
    try:
        result = export_onnx(args.model, args.output, options)
    except (OSError, ExportError, LookupError) as error:
        raise InputError(f"cannot export: {error}", file=args.model) from None
    manifest = result.manifest
    fp32 = manifest.graphs["fp32"]
    fused = ", ".join(f"{name} x{count}" for name, count in fp32.fused_operators.items()) or "none"
    print(f"wrote {result.directory / fp32.file}: outputs {', '.join(manifest.outputs)}", file=sys.stderr)
    print(f"  fused ops: {fused}; largest difference from PyTorch: {fp32.max_abs_diff:.2g}", file=sys.stderr)
    for task_index, task in enumerate(manifest.tasks):
        print(f"  probabilities_{task_index}: task {task['name']!r} ({', '.join(task['labels'])})", file=sys.stderr)
    if manifest.pair_graph is not None:
        print(f"wrote {result.directory / manifest.pair_graph.file}: pair task(s) "
              f"{', '.join(t['name'] for t in manifest.pair_tasks)} on two embeddings; largest difference from PyTorch: "
              f"{manifest.pair_graph.max_abs_diff:.2g}", file=sys.stderr)
    int8 = manifest.graphs.get("int8")
    if int8 is not None and int8.cost is not None:
        cost = int8.cost
        print(f"wrote {result.directory / int8.file} (lossy, opt-in: --backend onnx-int8, or auto with --max-int8-loss)", file=sys.stderr)
        print(f"  accuracy cost: {cost.summary()}; loss {cost.loss:.4f}", file=sys.stderr)
        if cost.method == "static":
            print(f"  calibrated on {cost.calibration}", file=sys.stderr)
            if not cost.budget_met:
                print(f"  note: the budget (min cosine {cost.budget['min_cosine']}, mean {cost.budget['mean_cosine']}) held on the "
                      "probe texts but not on these reference texts; a tighter budget or --max-int8-loss guards against it",
                      file=sys.stderr)
    return 0
