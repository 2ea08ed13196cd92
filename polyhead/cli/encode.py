"""`polyhead encode INPUT -o OUT`: embed every text of a file."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import InputError
from ..inference.backends import BACKENDS
from .common import add_encoder_arguments, encoder_from_args, show_progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="embed the texts of a .txt/.csv/.jsonl/.parquet file into .npy or .parquet",
        description="Embed every text of INPUT (.txt: one text a line; .csv/.jsonl/.parquet: --text-column) "
        "and write the vectors to OUT (.npy, or .parquet with the text and its embedding). Streams in chunks, "
        "so memory stays flat however long the file is. --model may also be a directory written by "
        "`polyhead export`.",
    )
    parser.add_argument("input", help="input file: .txt, .csv, .jsonl or .parquet")
    parser.add_argument("-o", "--output", required=True, help="output file: .npy or .parquet")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    add_encoder_arguments(parser)
    add_speed_arguments(parser)
    parser.set_defaults(func=run)


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend and --threads."""
    group = parser.add_argument_group("speed")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="default: $POLYHEAD_BACKEND, else auto. auto: bf16 where the CPU/GPU supports it (embeddings within "
        "cosine 0.999 of fp32); torch: exact fp32; torch-bf16; onnx: ONNX Runtime fp32; onnx-int8: lossy, its "
        "measured cost is printed",
    )
    group.add_argument("--threads", type=int, default=None, help="CPU cores to use (default: all)")


def load_encoder(args: argparse.Namespace):
    """A SentenceEncoder, or an OnnxEncoder when --model is an exported directory."""
    from ..inference import OnnxEncoder, is_exported_dir, set_threads

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        set_threads(args.threads)
    if args.model and is_exported_dir(args.model):
        if args.pooling:
            raise InputError("--pooling cannot change an exported model: its pooling is part of the graph", file=args.model)
        try:
            options = {"backend": args.backend} if args.backend else {}
            return OnnxEncoder(args.model, max_seq_length=args.max_seq_length, **options)
        except ValueError as error:
            raise InputError(str(error)) from None
    encoder = encoder_from_args(args)
    if args.backend is not None:
        encoder.backend = args.backend
    return encoder


def run(args: argparse.Namespace) -> int:
    from ..encode_file import encode_file
    from ..encoder import TruncationWarning
    from ..inference import LossyBackendWarning

    encoder = load_encoder(args)
    cost = getattr(encoder, "quantization_cost", None)
    if cost is not None and getattr(encoder, "backend", None) == "onnx-int8":
        print(f"note: backend onnx-int8 is lossy: {cost.summary()}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
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
