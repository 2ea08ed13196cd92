"""`polyhead search --corpus FILE QUERY`: nearest texts of a corpus."""

from __future__ import annotations

import argparse

from .common import add_encoder_arguments, load_encoder, print_table, show_progress


def register(subparsers) -> None:
    parser = subparsers.add_parser("search", help="find the corpus texts nearest to each query")
    parser.add_argument("queries", nargs="+", metavar="QUERY", help="one or more query texts")
    parser.add_argument("--corpus", required=True, help="corpus file: .txt, .csv, .jsonl or .parquet")
    parser.add_argument("--text-column", default="text", help="corpus column holding the text (default: text)")
    parser.add_argument("-k", "--top-k", type=int, default=5, help="results per query (default: 5)")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..textio import read_texts

    corpus = read_texts(args.corpus, args.text_column)
    encoder = load_encoder(args)
    from ..similarity import top_k

    corpus_vectors = encoder.encode(corpus, batch_size=args.batch_size, show_progress=show_progress(args))
    query_vectors = encoder.encode(args.queries, batch_size=args.batch_size, show_progress=False)
    for query, hits in zip(args.queries, top_k(query_vectors, corpus_vectors, corpus, args.top_k)):
        print(f"query: {query}")
        print_table(["rank", "score", "line", "text"], [[str(r + 1), f"{h.score:.4f}", str(h.index + 1), _clip(h.text)] for r, h in enumerate(hits)])
        print()
    return 0


def _clip(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
