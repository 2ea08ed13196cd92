"""`polyhead encode INPUT -o OUT`: embed every text of a file."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from .common import add_encoder_arguments, check_input_columns, check_output_suffix, load_encoder, show_progress
from .ray_jobs import add_engine_arguments, engine_is_ray, run_encode


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="embed the texts of a .txt/.csv/.jsonl/.parquet file into .npy or .parquet",
        description="Embed every text of INPUT (.txt: one text a line; .csv/.jsonl/.parquet: --text-column) "
        "and write the vectors to OUT (.npy, or .parquet with the text and its embedding). Streams in chunks, "
        "so memory stays flat however long the file is. --model may also be a directory written by "
        "`polyhead export`.",
    )
    parser.add_argument("input", help="input file: .txt, .csv, .jsonl or .parquet (--engine ray: also a folder or glob of them)")
    parser.add_argument("-o", "--output", required=True, help="output file: .npy or .parquet (--engine ray: an output folder)")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    add_encoder_arguments(parser)
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if engine_is_ray(args):
        return run_encode(args)
    # Everything about the files is checked before the model loads.
    check_output_suffix(args.output, (".npy", ".parquet"))
    check_input_columns(args.input, args.text_column)
    from ..encode_file import encode_file
    from ..encoder import SentenceEncoder, TruncationWarning
    from ..inference import LossyBackendWarning

    encoder = load_encoder(args)
    cost = getattr(encoder, "quantization_cost", None)
    if cost is not None and getattr(encoder, "backend", None) == "onnx-int8":
        print(f"note: backend onnx-int8 is lossy: {cost.summary()}", file=sys.stderr)
    ticker = contextlib.nullcontext()
    if args.backend in ("onnx", "onnx-int8") and isinstance(encoder, SentenceEncoder):
        # The graph is built (and for int8 calibrated and measured) inside the first batch: minutes, not silence.
        from .build_ticker import graph_build_ticker

        int8 = args.backend == "onnx-int8"
        ticker = graph_build_ticker(encoder, f"the ONNX graph ({'int8, calibrated and measured: minutes on a CPU; `polyhead export --quantize` saves it once' if int8 else 'fp32'})")
    with ticker, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossyBackendWarning)
        result = encode_file(
            encoder, args.input, args.output, text_column=args.text_column, batch_size=args.batch_size,
            show_progress=show_progress(args), normalize=args.normalize,
        )
    for warning in caught:
        if issubclass(warning.category, LossyBackendWarning):
            print(f"note: {warning.message}", file=sys.stderr)
        elif not issubclass(warning.category, TruncationWarning):  # one total below instead of one per chunk
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    backend = encoder.last_encode_stats.backend or args.backend
    note = f"; {result.truncated} truncated at {encoder.max_seq_length} tokens" if result.truncated else ""
    print(f"wrote {result.rows} embeddings of dimension {result.dim} to {args.output} (backend {backend}){note}", file=sys.stderr)
    return 0
