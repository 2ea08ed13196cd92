"""`polyhead eval-similarity`: score an encoder against human similarity ratings (lee)."""

from __future__ import annotations

import argparse
import json

from .common import add_encoder_arguments, load_encoder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-similarity",
        help="Pearson/Spearman of cosine similarities against the lee human ratings",
        description="Encode the 50 lee news documents and correlate the cosine similarity of all 1,225 pairs "
        "with the mean human rating of each pair.",
    )
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    encoder = load_encoder(args)
    from ..similarity import evaluate_similarity

    score = evaluate_similarity(encoder, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"dataset": "lee", "pairs": score.pairs, "pearson": score.pearson, "spearman": score.spearman}))
    else:
        print(f"lee ({score.pairs} pairs), model {encoder.source}, pooling {encoder.pooling_mode}")
        print(f"pearson  {score.pearson:.4f}")
        print(f"spearman {score.spearman:.4f}")
    return 0
