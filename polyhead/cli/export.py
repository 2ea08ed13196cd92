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
        "checked against PyTorch before it is written. --quantize adds model_int8.onnx and prints its "
        "measured accuracy cost.",
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

    options = ExportOptions(
        opset=args.opset,
        optimize=not args.no_optimize,
        quantize=args.quantize,
        reference_texts=texts,
        reference_source=str(args.reference or ""),
    )
    try:
        result = export_onnx(args.model, args.output, options)
    except (OSError, ExportError) as error:
        raise InputError(f"cannot export: {error}", file=args.model) from None
    manifest = result.manifest
    fp32 = manifest.graphs["fp32"]
    fused = ", ".join(f"{name} x{count}" for name, count in fp32.fused_operators.items()) or "none"
    print(f"wrote {result.directory / fp32.file}: outputs {', '.join(manifest.outputs)}", file=sys.stderr)
    print(f"  fused ops: {fused}; largest difference from PyTorch: {fp32.max_abs_diff:.2g}", file=sys.stderr)
    for task_index, task in enumerate(manifest.tasks):
        print(f"  probabilities_{task_index}: task {task['name']!r} ({', '.join(task['labels'])})", file=sys.stderr)
    int8 = manifest.graphs.get("int8")
    if int8 is not None and int8.cost is not None:
        print(f"wrote {result.directory / int8.file} (lossy, opt-in: --backend onnx-int8)", file=sys.stderr)
        print(f"  accuracy cost: {int8.cost.summary()}", file=sys.stderr)
    return 0
