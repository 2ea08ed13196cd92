"""The `polyhead` command: a thin layer over the library, one module per subcommand.

Parsing never imports PyTorch or transformers: command modules import them inside
`run`, so `--help`, argument errors and config errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
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
    "push",
]

# Commands whose register() imports their (heavy) package: registered only when chosen;
# otherwise `polyhead --help` lists them with this line.
DEFERRED_HELP = {
    "study": "train the same tasks under several strategies and write one comparison report",
    "serve": "serve embeddings (OpenAI-compatible) and task predictions over HTTP",
}

EXIT_BAD_INPUT = 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; given `argv`, deferred commands other than the chosen one get a stub."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="polyhead", description="One sentence encoder, many task heads.")
    parser.add_argument("--version", action="version", version=f"polyhead {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _chosen_command(argv) if argv is not None else None
    for name in COMMAND_MODULES:
        command = name.replace("_", "-")
        if argv is not None and command in DEFERRED_HELP and command != chosen:
            subparsers.add_parser(command, help=DEFERRED_HELP[command])
            continue
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The command line, options and positionals in any order after the subcommand.

    Plain `parse_args` ends a `nargs='*'` positional at the first option, so
    `polyhead predict MODEL --backend torch "a text"` would refuse its text; the chosen
    subcommand's own parser reads its arguments intermixed instead.
    """
    parser = build_parser(argv)
    if argv and not argv[0].startswith("-"):
        (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        command = subparsers.choices.get(argv[0])
        if command is not None:
            args = command.parse_intermixed_args(argv[1:])
            args.command = argv[0]
            return args
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(argv)
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warning(args.command)
    try:
        return int(args.func(args) or 0)
    except (InputError, MissingPackageError) as error:
        print(f"polyhead {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
        # A path the checks above did not catch: still one line, not a traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"polyhead {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"polyhead {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = previous


def _one_line_warning(command: str):
    """A Python warning as one line naming the command, not the library's file, line and source text."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        try:
            print(f"polyhead {command}: warning: {text}", file=file or sys.stderr)
        except (OSError, ValueError):  # a closed stream: a warning never ends the command
            pass

    return show


if __name__ == "__main__":
    sys.exit(main())
