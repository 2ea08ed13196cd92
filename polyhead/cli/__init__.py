"""The `polyhead` command: a thin layer over the library, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import InputError, MissingPackageError

# Each module defines register(subparsers), which adds its parser and sets `func`.
COMMAND_MODULES = [
    "encode",
    "similarity",
    "search",
    "eval_similarity",
    "train",
    "evaluate",
    "predict",
    "study",
    "serve",
    "export",
]

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="polyhead", description="One sentence encoder, many task heads.")
    parser.add_argument("--version", action="version", version=f"polyhead {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, MissingPackageError) as error:
        print(f"polyhead {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"polyhead {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
