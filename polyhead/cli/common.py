"""Arguments and helpers shared by the `polyhead` subcommands."""

from __future__ import annotations

import argparse
import sys

POOLING_CHOICES = ("mean", "cls", "max", "cls_pooler")
"""pooling.POOLING_MODES, repeated here so that parsing arguments never imports torch (a test keeps them equal)."""


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --pooling, --normalize/--no-normalize, --batch-size, --no-progress."""
    group = parser.add_argument_group("encoder")
    group.add_argument("--model", default=None, help="model directory or hub name (default: built-in all-MiniLM-L6-v2)")
    group.add_argument("--pooling", choices=POOLING_CHOICES, default=None, help="pooling mode (default: the model's own, else mean)")
    group.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="L2-normalize embeddings (default: the model's own setting)",
    )
    group.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to this many tokens")
    group.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default: 32)")
    add_progress_argument(parser)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="turn off progress bars")


def quiet_library_progress() -> None:
    """transformers prints a weight-loading bar on every load; the CLI has its own bars."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    disable_progress_bars()


def encoder_from_args(args: argparse.Namespace):
    """The encoder that --model/--pooling/... name; a model that cannot be loaded is an InputError."""
    from ..encoder import SentenceEncoder
    from ..errors import InputError

    quiet_library_progress()
    try:
        return SentenceEncoder(
            args.model, pooling=args.pooling, normalize=args.normalize, max_seq_length=args.max_seq_length
        )
    except (OSError, ValueError) as error:
        if args.model is None:  # the built-in model failing is not the user's input
            raise
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InputError(f"cannot load the model: {reason}", file=args.model) from None


def show_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A plain aligned text table on stdout."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
