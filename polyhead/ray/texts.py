"""Texts a model cannot embed (null, empty, not a string): found, counted, and never dropped silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError

INVALID_CHOICES = ("error", "null")
"""What to do with an invalid text: fail naming its row, or keep the row with a null result."""


class InvalidTextError(InputError):
    """A row whose text is null, empty or not a string (with `on_invalid="error"`)."""


@dataclass(frozen=True)
class InvalidText:
    """One row that was not embedded."""

    index: int
    """Its position in the batch (or shard)."""
    reason: str
    """`null`, `empty`, or `not a string (TYPE)`."""


def invalid_reason(value: object) -> str | None:
    """Why `value` cannot be embedded, or None when it is a text with something in it."""
    if value is None:
        return "null"
    if not isinstance(value, str):
        return f"not a string ({type(value).__name__})"
    if not value.strip():
        return "empty"
    return None


def split_valid(values: Sequence[object]) -> tuple[list[int], list[InvalidText]]:
    """Positions of the embeddable texts, and the others with their reason."""
    valid: list[int] = []
    invalid: list[InvalidText] = []
    for index, value in enumerate(values):
        reason = invalid_reason(value)
        if reason is None:
            valid.append(index)
        else:
            invalid.append(InvalidText(index, reason))
    return valid, invalid


def check_on_invalid(on_invalid: str) -> str:
    if on_invalid not in INVALID_CHOICES:
        raise InputError(f"on_invalid must be one of {', '.join(INVALID_CHOICES)}, got {on_invalid!r}", field="on_invalid")
    return on_invalid


def invalid_error(first: InvalidText, count: int, where: str, column: str) -> InvalidTextError:
    """The error for the first invalid text; `where` names its row (a file and line, or a row id)."""
    more = f" ({count - 1} more invalid text(s) in the same batch)" if count > 1 else ""
    return InvalidTextError(f"{where}: text is {first.reason}{more}; fix the row, or keep such rows with a null "
                            "result (on_invalid='null', --invalid null on the command line)", field=column)
