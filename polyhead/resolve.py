"""Resolve a model source (local directory or hub name) and files inside it."""

from __future__ import annotations

from pathlib import Path

from .assets import default_model_path


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
