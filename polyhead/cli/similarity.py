"""`polyhead similarity TEXT TEXT...`: the cosine matrix of a few texts."""

from __future__ import annotations

import argparse

from .common import add_encoder_arguments, load_encoder, print_table


def register(subparsers) -> None:
    parser = subparsers.add_parser("similarity", help="print the cosine similarity matrix of texts")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="two or more texts")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    encoder = load_encoder(args)
    from ..similarity import cosine_matrix

    scores = cosine_matrix(encoder.encode(args.texts, batch_size=args.batch_size, show_progress=False))
    labels = [f"[{i}]" for i in range(len(args.texts))]
    for label, text in zip(labels, args.texts):
        print(f"{label} {text}")
    print()
    print_table(["", *labels], [[label, *(f"{x:.4f}" for x in row)] for label, row in zip(labels, scores)])
    return 0
