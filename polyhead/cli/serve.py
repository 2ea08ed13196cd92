"""`polyhead serve [MODEL_DIR]`: the HTTP server; one flag per ServeConfig field."""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from dataclasses import MISSING, fields

API_KEY_ENV = "POLYHEAD_API_KEY"
POSITIONAL = "model_dir"


def _flag_type(annotation: object) -> type:
    """int, float, str or bool from a field's annotation (Optional unwrapped)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    return annotation  # type: ignore[return-value]


def register(subparsers) -> None:
    from ..serve.config import ServeConfig, field_docs

    parser = subparsers.add_parser(
        "serve",
        help="serve embeddings (OpenAI-compatible) and task predictions over HTTP",
        description="Serve MODEL_DIR over HTTP: POST /v1/embeddings (OpenAI shape), POST /v1/predict, GET /v1/models, "
        f"GET /health, API docs at /docs. Requests are grouped into shared batches. The API key may come from ${API_KEY_ENV}.",
    )
    parser.add_argument(POSITIONAL, nargs="?", default=None, metavar="MODEL_DIR", help=field_docs()[POSITIONAL])
    hints = typing.get_type_hints(ServeConfig)
    docs = field_docs()
    for item in fields(ServeConfig):
        if item.name == POSITIONAL:
            continue
        flag = "--" + item.name.replace("_", "-")
        kind = _flag_type(hints[item.name])
        default = item.default if item.default is not MISSING else None
        help_text = docs.get(item.name, "") + (f" (default: {default})" if default is not None else "")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif item.name == "backend":
            from ..inference.backends import BACKENDS

            parser.add_argument(flag, choices=BACKENDS, default=default, help=help_text)
        elif item.name == "log_level":
            parser.add_argument(flag, choices=("critical", "error", "warning", "info", "debug"), default=default, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=default, help=help_text)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """A ServeConfig from parsed flags; the API key falls back to the environment."""
    from ..errors import InputError
    from ..serve.config import ServeConfig

    values = {item.name: getattr(args, item.name) for item in fields(ServeConfig)}
    if values["api_key"] is None and API_KEY_ENV in os.environ:
        if not os.environ[API_KEY_ENV].strip():
            # An empty key must not quietly turn authentication off.
            raise InputError(f"${API_KEY_ENV} is set but empty: set it to the key, or unset it to serve without one")
        values["api_key"] = os.environ[API_KEY_ENV]
    model_dir = values[POSITIONAL]
    if model_dir is not None and os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise InputError(f"{model_dir} is a file; MODEL_DIR must be a model directory")
    try:
        return ServeConfig(**values)
    except ValueError as error:
        raise InputError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from ..serve.server import serve

    status = serve(config)
    if status:
        print("polyhead serve: error: the model could not be loaded (see the log above)", file=sys.stderr)
    return status
