"""Read texts and records from .txt/.csv/.jsonl/.parquet, with errors that name file and line.

Everything is an iterator of chunks so that files larger than memory stream through.
Line numbers are 1-based physical lines for .txt/.jsonl, the line where a record starts
for .csv (header = line 1; a quoted field may span lines), and the 1-based row for .parquet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T")

TEXT_SUFFIXES = (".txt", ".csv", ".jsonl", ".parquet")
DEFAULT_CHUNK = 8192


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(TEXT_SUFFIXES)}", file=path)
    return suffix


def _open_checked(path: Path):
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", file=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", file=path)
    return open(path, encoding="utf-8", newline="")


@dataclass(frozen=True)
class Position:
    """Where a record starts, so a reader can start there instead of at line 1 (a Ray shard of a large file)."""

    cookie: int
    """What the file's own seek takes: a byte offset for .txt/.jsonl, the text layer's tell() for .csv."""
    line: int
    """The line before the record: numbering goes on from it."""


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Physical lines with 1-based numbers; a bad UTF-8 byte names its line.

    A byte-order mark at the start of the file (editors on Windows write one) is dropped.
    """
    for number, line, _ in _positioned_lines(path):
        yield number, line


def _positioned_lines(path: Path, start: Position | None = None) -> Iterator[tuple[int, str, int]]:
    """(number, line, byte offset of the line), from `start` when given."""
    with open(path, "rb") as handle:
        offset, number = (start.cookie, start.line) if start else (0, 0)
        handle.seek(offset)
        for raw in handle:
            number += 1
            try:
                line = raw.decode("utf-8-sig" if offset == 0 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise InputError(f"not valid UTF-8 ({error.reason} at byte {error.start})", file=path, line=number) from None
            yield number, line, offset
            offset += len(raw)


def iter_records(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, record) pairs of a .csv, .jsonl or .parquet file, checking `required` fields."""
    for line, record, _ in positioned_records(path, required):
        yield line, record


def positioned_records(path: str | Path, required: tuple[str, ...] = (), start: Position | None = None,
                       every: int = 0) -> Iterator[tuple[int, dict[str, Any], Position | None]]:
    """(line, record, where it starts) of a .csv, .jsonl or .parquet file, read from `start` (a text file's) when given.

    A record's Position is given for every `every`-th record counted from the first read (None for the others, and for
    Parquet, whose readers skip row groups instead), because asking a text file where it is costs time.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".txt":
        raise InputError("a .txt file has no columns; use .csv, .jsonl or .parquet", file=path)
    _open_checked(path).close()
    if suffix == ".csv":
        yield from _csv_records(path, required, start, every)
    elif suffix == ".jsonl":
        yield from _jsonl_records(path, required, start, every)
    else:
        yield from ((line, record, None) for line, record in _parquet_records(path, required))


def _csv_records(path: Path, required: tuple[str, ...], start: Position | None,
                 every: int) -> Iterator[tuple[int, dict[str, Any], Position | None]]:
    end = 0  # the last line of the previous record: a failing record starts on the next one
    try:
        # utf-8-sig: spreadsheet programs start a UTF-8 CSV with a byte-order mark.
        with open(path, encoding="utf-8-sig", newline="") as handle:
            # readline, not iteration, feeds the reader: a text file answers tell() only then.
            reader = csv.reader(iter(handle.readline, ""))
            header = next(reader, None)
            if not header:
                raise InputError("no header row", file=path, line=1)
            _check_columns(path, header, required, line=1)
            shift = 0  # lines skipped by seeking to `start`
            if start is not None:
                handle.seek(start.cookie)
                shift = start.line - reader.line_num
            end = reader.line_num + shift
            count = 0
            while True:
                position = Position(handle.tell(), end) if every and count % every == 0 else None
                row = next(reader, None)
                if row is None:
                    return
                begin, end = end + 1, reader.line_num + shift  # a quoted field may span lines: name the first
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(f"{len(row)} fields where the header has {len(header)}", file=path, line=begin)
                count += 1
                yield begin, dict(zip(header, row)), position
    except UnicodeDecodeError as error:
        raise InputError(f"not valid UTF-8 ({error.reason})", file=path, line=_first_undecodable_line(path)) from None
    except csv.Error as error:
        if "field limit" in str(error):
            raise InputError(
                f"a field is longer than the csv module's limit of {csv.field_size_limit():,} characters; "
                "shorten it, or give the data as .jsonl", file=path, line=end + 1,
            ) from None
        raise InputError(f"malformed CSV: {error}", file=path, line=end + 1) from None


def _first_undecodable_line(path: Path) -> int | None:
    """The csv module decodes in blocks and loses the position; find the bad line again."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _jsonl_records(path: Path, required: tuple[str, ...], start: Position | None = None,
                   every: int = 0) -> Iterator[tuple[int, dict[str, Any], Position | None]]:
    count = 0
    for number, line, offset in _positioned_lines(path, start):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            # Some messages end in "at" and expect the position after them ("Unterminated string starting at").
            message = error.msg if error.msg.endswith(" at") else f"{error.msg} at"
            raise InputError(f"not valid JSON: {message} column {error.colno}", file=path, line=number) from None
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", file=path, line=number)
        _check_columns(path, list(record), required, line=number)
        yield number, record, Position(offset, number - 1) if every and count % every == 0 else None
        count += 1


def _parquet_records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a bad file
        raise InputError(f"not a readable parquet file ({error})", file=path) from None
    _check_columns(path, parquet.schema_arrow.names, required, line=None)
    row = 0
    columns = list(required) or None
    for batch in parquet.iter_batches(columns=columns):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def _check_columns(path: Path, present: list[str], required: tuple[str, ...], line: int | None) -> None:
    for name in required:
        if name not in present:
            raise InputError(f"missing column; the file has {', '.join(map(repr, present)) or 'none'}", file=path, line=line, field=name)


def iter_text_chunks(path: str | Path, text_column: str = "text", chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[str]]:
    """Texts of a file in chunks: one text a line for .txt, the `text_column` otherwise."""
    path = Path(path)
    if _suffix(path) == ".txt":
        _open_checked(path).close()
        rows: Iterator[tuple[str, ...]] = ((line,) for _, line in _lines(path))
    else:
        rows = _text_rows(path, (text_column,))
    for chunk in chunked(rows, chunk_size, path):
        yield [text for text, in chunk]


def iter_pair_chunks(path: str | Path, text_column: str = "text", pair_column: str = "text_pair",
                     chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[tuple[str, str]]]:
    """(text, pair) rows of a .csv/.jsonl/.parquet file in chunks, for the tasks that answer pairs of texts."""
    path = Path(path)
    if _suffix(path) == ".txt":
        raise InputError(f"a pair of texts needs two columns ({text_column}, {pair_column}): give a .csv, .jsonl or .parquet file",
                         file=path)
    yield from chunked(_text_rows(path, (text_column, pair_column)), chunk_size, path)


def _text_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for number, record in iter_records(path, columns):
        for column in columns:
            if not isinstance(record[column], str):
                raise InputError(f"expected a string, got {type(record[column]).__name__}", file=path, line=number, field=column)
        yield tuple(record[column] for column in columns)


def chunked(rows: Iterator[T], chunk_size: int, path: Path) -> Iterator[list[T]]:
    """Rows in lists of `chunk_size`; a source without rows is an error naming the file."""
    chunk: list[T] = []
    count = 0
    for row in rows:
        chunk.append(row)
        count += 1
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
    if count == 0:
        raise InputError("no texts in file", file=path)


def read_texts(path: str | Path, text_column: str = "text") -> list[str]:
    """All texts of a file in one list."""
    return [text for chunk in iter_text_chunks(path, text_column) for text in chunk]
