"""Predictions as a table (CSV, JSON Lines, Parquet): the input's own columns, then each task's answer.

The columns come from the shape of each kind's answer (its scalar fields, label lists joined,
probability maps spread out on request), so a new kind of task gets its columns without
this module knowing it exists.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError
from .fileio import atomic_file

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")
LIST_SEPARATOR = "|"


def flat_answer(task: str, answer: dict[str, Any], all_probabilities: bool = False) -> dict[str, Any]:
    """`{task}_{field}` cells of one answer: scalars as they are, lists joined with |, maps only on request."""
    cells: dict[str, Any] = {}
    for key, value in answer.items():
        if isinstance(value, dict):
            if all_probabilities:
                cells.update({f"{task}_{key}_{name}": v for name, v in value.items()})
        elif isinstance(value, (list, tuple)):
            cells[f"{task}_{key}"] = LIST_SEPARATOR.join(map(str, value))
        else:
            cells[f"{task}_{key}"] = value
    return cells


def input_records(path: Path, text_columns: tuple[str, ...], chunk_size: int = 4096) -> Iterator[list[dict[str, Any]]]:
    """The input's records in chunks, every column kept; a .txt file gives one `text` column a line."""
    from .textio import chunked, iter_records, iter_text_chunks

    if path.suffix.lower() == ".txt":
        for texts in iter_text_chunks(path, "text", chunk_size=chunk_size):
            yield [{"text": text} for text in texts]
        return

    def checked() -> Iterator[dict[str, Any]]:
        for line, record in iter_records(path, required=text_columns):
            for column in text_columns:
                if not isinstance(record.get(column), str) or not record[column].strip():
                    raise InputError("empty or missing text", file=path, line=line, field=column)
            yield record

    yield from chunked(checked(), chunk_size, path)  # a file without records: "no texts in file", as a .txt gets


class TableWriter:
    """Appends rows to a .csv/.jsonl/.parquet file; the first rows fix the columns (later new ones are refused)."""

    def __init__(self, handle, suffix: str, path: Path, empty_columns: list[str] | None = None) -> None:
        self.handle, self.suffix, self.path = handle, suffix, path
        self.empty_columns = empty_columns
        """The columns of a file that gets no rows."""
        self.columns: list[str] | None = None
        self._csv = None
        self._parquet = None
        self.rows = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.columns is None:
            self.columns = list(dict.fromkeys(key for row in rows for key in row))
        else:
            extra = {key for row in rows for key in row} - set(self.columns)
            if extra:
                raise InputError(f"new column(s) {sorted(extra)} after the first rows: every record must have the same fields",
                                 file=self.path)
        rows = [{column: row.get(column) for column in self.columns} for row in rows]
        if self.suffix == ".jsonl":
            for row in rows:
                self.handle.write((json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
        elif self.suffix == ".csv":
            if self._csv is None:
                import io

                self._text = io.TextIOWrapper(self.handle, encoding="utf-8", newline="", write_through=True)
                self._csv = csv.DictWriter(self._text, fieldnames=self.columns)
                self._csv.writeheader()
            self._csv.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                table = pa.Table.from_pylist(rows)
                self._parquet = pq.ParquetWriter(self.handle, table.schema)
            else:
                table = pa.Table.from_pylist(rows, schema=self._parquet.schema)
            self._parquet.write_table(table)
        self.rows += len(rows)

    def _write_empty(self, columns: list[str]) -> None:
        if self.suffix == ".csv":
            self.handle.write((",".join(columns) + "\n").encode("utf-8"))
        elif self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({c: pa.array([], pa.string()) for c in columns}), self.handle)

    def close(self) -> None:
        if self.rows == 0 and self.empty_columns:  # no rows: still a valid file that names its columns
            self._write_empty(self.empty_columns)
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._text.flush()
            self._text.detach()


@contextmanager
def table_writer(path: str | Path, empty_columns: list[str] | None = None) -> Iterator[TableWriter]:
    """A TableWriter on `path`, written atomically (a failed run leaves no half file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"unsupported output type {suffix or '(none)'!r}; use {', '.join(TABLE_SUFFIXES)}", file=path)
    with atomic_file(path, "wb") as handle:
        writer = TableWriter(handle, suffix, path, empty_columns)
        try:
            yield writer
        finally:
            writer.close()
