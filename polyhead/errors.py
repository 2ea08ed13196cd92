"""Errors that point at the bad input: which file, which line, which field."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input (a file, a config field, a request), located as precisely as possible.

    The CLI turns it into one line on stderr and exit status 2, so the message must say
    what was wrong and where without a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class MissingPackageError(ImportError):
    """A built-in asset lives in a PyPI package that is not installed; says how to fix it."""

    def __init__(self, what: str, requirement: str, extra: str = "") -> None:
        self.requirement = requirement
        super().__init__(
            f"{what} needs the package {requirement.split('==')[0]!r}, which is not installed. "
            f"Fix: pip install {extra}{requirement}"
        )
