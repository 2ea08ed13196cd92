"""`polyhead encode INPUT -o OUT`: embed every text of a file."""

from __future__ import annotations

import argparse
import sys

from .common import add_encoder_arguments, encoder_from_args, show_progress


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="embed the texts of a .txt/.csv/.jsonl/.parquet file into .npy or .parquet",
        description="Embed every text of INPUT (.txt: one text a line; .csv/.jsonl/.parquet: --text-column) "
        "and write the vectors to OUT (.npy, or .parquet with the text and its embedding). Streams in chunks.",
    )
    parser.add_argument("input", help="input file: .txt, .csv, .jsonl or .parquet")
    parser.add_argument("-o", "--output", required=True, help="output file: .npy or .parquet")
    parser.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..encode_file import encode_file

    encoder = encoder_from_args(args)
    result = encode_file(
        encoder, args.input, args.output, text_column=args.text_column, batch_size=args.batch_size,
        show_progress=show_progress(args),
    )
    note = f"; {result.truncated} truncated at {encoder.max_seq_length} tokens" if result.truncated else ""
    print(f"wrote {result.rows} embeddings of dimension {result.dim} to {args.output}{note}", file=sys.stderr)
    return 0
