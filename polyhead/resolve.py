"""Resolve a model source (local directory or hub name) and files inside it."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from .assets import default_model_path
from .errors import InputError


def model_source(model_name_or_path: str | Path | None) -> str:
    """The default model's directory when None, else the given name or path as a string."""
    return str(default_model_path() if model_name_or_path is None else model_name_or_path)


def resolve_file(source: str, filename: str) -> Path | None:
    """Local path of `filename` inside a model directory or hub repo; None if it has none.

    Hub names go through transformers' own cache and honour HF_HUB_OFFLINE, so a machine
    without the hub only ever reads local directories.
    """
    local = Path(source)
    if local.is_dir():
        candidate = local / filename
        return candidate if candidate.is_file() else None
    from transformers.utils import cached_file

    found = cached_file(
        source,
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return Path(found) if found else None


def join_source(source: str, sub_path: str) -> str:
    """A module sub-directory inside a model source ('' means the source itself)."""
    if not sub_path:
        return source
    return str(Path(source) / sub_path) if Path(source).is_dir() else f"{source}/{sub_path}"


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
"""A hub model id: `name` or `owner/name` (letters, digits, `-`, `_`, `.`)."""

HUB_HOST = "huggingface.co"


def check_model_source(name: str | Path) -> None:
    """Fail at once, with one clear line, for a model that cannot be there.

    An existing directory passes. A name that cannot be a hub id (`./x`, `runs/a/b`, `~/m`)
    is a missing directory. A plausible hub id is looked up only when the hub answers or the
    local cache holds it; without a network the lookup is switched to offline mode instead of
    waiting for retries (transformers reads HF_HUB_OFFLINE when it is imported).
    """
    text = str(name)
    path = Path(text).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise InputError("is a file; expected a model directory or a hub model id", file=text)
    if not HUB_ID.match(text) or text.endswith((".json", ".yaml", ".onnx", ".safetensors")):
        raise InputError("no such model directory", file=text)
    if hub_is_offline():
        os.environ["HF_HUB_OFFLINE"] = "1"
        if not _in_hub_cache(text):
            raise InputError(
                f"no such model directory, and {text!r} is not in the local hub cache (the hub at {HUB_HOST} cannot be reached)",
                file=text,
            )


def hub_is_offline(timeout_s: float = 3.0) -> bool:
    """True when HF_HUB_OFFLINE is set or the hub's host does not answer within `timeout_s`."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return False
    except OSError:
        return True


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)
