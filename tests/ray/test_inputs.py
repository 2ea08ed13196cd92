"""A shard's reader starts where its first row begins (found while counting), not at line 1, and reads the same rows."""

from __future__ import annotations

import csv
import json

import pytest

from polyhead import datasets
from polyhead.ray.inputs import count_rows, read_range

AWKWARD = ["plain", "a, with comma", "two\nlines", 'a "quote"', "", "ünïcode ✓", "three\r\nline\nfield", "last"]


def _write(path, texts, *, bom: bool = False, crlf: bool = False, blank_lines: bool = False) -> None:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n" if crlf else "\n")
            writer.writerow(["id", "text"])
            for i, text in enumerate(texts):
                writer.writerow([i, text])
                if blank_lines and i % 5 == 0:
                    handle.write("\r\n" if crlf else "\n")
    elif path.suffix == ".jsonl":
        end = "\r\n" if crlf else "\n"
        lines = [json.dumps({"id": i, "text": t}) + end + (end if blank_lines and i % 5 == 0 else "") for i, t in enumerate(texts)]
        path.write_text(("\ufeff" if bom else "") + "".join(lines), encoding="utf-8", newline="")
    else:
        end = "\r\n" if crlf else "\n"
        path.write_text(("\ufeff" if bom else "") + end.join(t.replace("\n", " ").replace("\r", " ") for t in texts) + end,
                        encoding="utf-8", newline="")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt"])
@pytest.mark.parametrize("style", [{}, {"bom": True, "crlf": True}, {"blank_lines": True}], ids=["plain", "bom-crlf", "blank-lines"])
@pytest.mark.parametrize("chunk", [1, 7, 50])
def test_every_shard_read_from_its_start_equals_the_rows_read_from_line_1(tmp_path, suffix, style, chunk):
    """Real review texts plus awkward ones: quoted newlines, commas, quotes, empty text, non-ASCII."""
    texts = AWKWARD + list(datasets.get("rotten_tomatoes:sentiment").splits["test"].texts[:120])
    path = tmp_path / f"input{suffix}"
    _write(path, texts, **style)
    rows, starts = count_rows(path, "text", every=chunk)
    assert rows == len(texts) and len(starts) == -(-rows // chunk)
    for k, seek in enumerate(starts):
        start, end = k * chunk, min(rows, (k + 1) * chunk)
        assert read_range(path, "text", start, end, seek) == read_range(path, "text", start, end)
    lines, values = read_range(path, "text", 0, rows, starts[0])
    expected = texts if suffix != ".txt" else [t.replace("\n", " ").replace("\r", " ") for t in texts]
    assert values == expected and lines == sorted(lines)


def test_parquet_has_no_seek_positions_and_reads_by_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "input.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(100)]}), path, row_group_size=16)
    rows, starts = count_rows(path, "text", every=10)
    assert rows == 100 and starts == []
    assert read_range(path, "text", 35, 47) == (list(range(36, 48)), [f"t{i}" for i in range(35, 47)])
