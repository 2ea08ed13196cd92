"""The input files of a job (a folder, a glob or one file) and their rows, read with polyhead's own readers.

A row's text is whatever the file holds there (a string, null, a number), so that rows a
model cannot embed are reported by the job, with their file and line, instead of vanishing.
"""

from __future__ import annotations

import glob
import itertools
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..textio import TEXT_SUFFIXES, _check_columns, _lines, _open_checked, _suffix, iter_records


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


def iter_values(path: Path, column: str) -> Iterator[tuple[int, object]]:
    """(line, text) of every row: a .txt line, or `column` of a .csv/.jsonl/.parquet record (null stays None)."""
    if _suffix(path) == ".txt":
        _open_checked(path).close()
        yield from _lines(path)
        return
    for line, record in iter_records(path, (column,)):
        yield line, record.get(column)


def count_rows(path: Path, column: str) -> int:
    """Rows of a file (Parquet: from its metadata); reading a text file through also checks it parses."""
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
        rows = sum(1 for _ in iter_values(path, column))
    if rows == 0:
        raise InputError("no texts in file", file=path)
    return rows


def read_range(path: Path, column: str, start: int, end: int) -> tuple[list[int], list[object]]:
    """Lines and texts of rows [start, end) (0-based); Parquet skips whole row groups before `start`."""
    if _suffix(path) == ".parquet":
        return _parquet_range(path, column, start, end)
    lines, values = [], []
    for line, value in itertools.islice(iter_values(path, column), start, end):
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
