"""The input files of a job (a folder, a glob or one file) and their rows, read with polyhead's own readers.

A row's text is whatever the file holds there (a string, null, a number), so that rows a
model cannot embed are reported by the job, with their file and line, instead of vanishing.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ..errors import InputError
from ..textio import TEXT_SUFFIXES, Position, _check_columns, _open_checked, _positioned_lines, _suffix, positioned_records


def expand_inputs(pattern: str | Path) -> list[Path]:
    """The files a job reads, sorted: every supported file of a folder, the matches of a glob, or one file."""
    path = Path(pattern)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise InputError(f"no {'/'.join(TEXT_SUFFIXES)} files in this folder", file=path)
        return files
    if path.is_file():
        _suffix(path)
        return [path]
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
    if not matches:
        raise InputError("no such file or folder, and no file matches it as a pattern", file=pattern)
    for match in matches:
        _suffix(match)  # a pattern that also matches other files is a mistake worth one line
    return matches


def iter_values(path: Path, column: str, start: Position | None = None,
                every: int = 0) -> Iterator[tuple[int, object, Position | None]]:
    """(line, text, where the row starts) of every row from `start`: a .txt line, or `column` of a .csv/.jsonl/.parquet
    record (null stays None). Every `every`-th row's Position is given (see `positioned_records`)."""
    if _suffix(path) == ".txt":
        _open_checked(path).close()
        for count, (number, line, offset) in enumerate(_positioned_lines(path, start)):
            yield number, line, Position(offset, number - 1) if every and count % every == 0 else None
        return
    for line, record, position in positioned_records(path, (column,), start, every):
        yield line, record.get(column), position


def count_rows(path: Path, column: str, every: int = 0) -> tuple[int, list[dict | None]]:
    """Rows of a file (Parquet: from its metadata), and where rows 0, every, 2 x every... start (text files), so each
    shard's reader seeks there instead of parsing the file from line 1. Reading a text file through also checks it parses."""
    starts: list[dict | None] = []
    if _suffix(path) == ".parquet":
        import pyarrow.parquet as pq

        _open_checked(path).close()
        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises several types for a bad file
            raise InputError(f"not a readable parquet file ({error})", file=path) from None
        _check_columns(path, parquet.schema_arrow.names, (column,), line=None)
        rows = parquet.metadata.num_rows
    else:
        rows = 0
        for _, _, position in iter_values(path, column, every=every):
            if position is not None:
                starts.append(asdict(position))
            rows += 1
    if rows == 0:
        raise InputError("no texts in file", file=path)
    return rows, starts


def read_range(path: Path, column: str, start: int, end: int, seek: dict | None = None) -> tuple[list[int], list[object]]:
    """Lines and texts of rows [start, end) (0-based). `seek`: where row `start` begins in a text file (from count_rows);
    without it the rows before are parsed and skipped. Parquet skips whole row groups before `start`."""
    if _suffix(path) == ".parquet":
        return _parquet_range(path, column, start, end)
    rows = iter_values(path, column, Position(**seek)) if seek else itertools.islice(iter_values(path, column), start, None)
    lines, values = [], []
    for line, value, _ in itertools.islice(rows, end - start):
        lines.append(line)
        values.append(value)
    return lines, values


def _parquet_range(path: Path, column: str, start: int, end: int) -> tuple[list[int], list[object]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    first = 0
    groups: list[int] = []
    group_start = 0  # the first row of the first group read
    for group in range(parquet.metadata.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        if first + rows > start and first < end:
            if not groups:
                group_start = first
            groups.append(group)
        first += rows
    if not groups:
        return [], []
    table = parquet.read_row_groups(groups, columns=[column]).slice(start - group_start, end - start)
    return list(range(start + 1, end + 1)), table.column(column).to_pylist()
