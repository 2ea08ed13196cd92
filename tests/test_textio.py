"""Reading texts from .txt/.csv/.jsonl/.parquet, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polyhead.errors import InputError
from polyhead.textio import iter_records, iter_text_chunks, read_texts

TEXTS = ["A gripping, funny film.", 'He said "no, thanks".', "Line with, commas", "Ünïcödé ✓", "last one"]


def write_texts(path: Path, texts: list[str], column: str = "text") -> Path:
    """Write `texts` in the format that `path`'s suffix names (test helper shared with the CLI tests)."""
    suffix = path.suffix
    if suffix == ".txt":
        path.write_text("".join(f"{t}\n" for t in texts), encoding="utf-8")
    elif suffix == ".csv":
        import csv

        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", column])
            writer.writerows([i, t] for i, t in enumerate(texts))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, column: t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    elif suffix == ".parquet":
        pq.write_table(pa.table({"id": list(range(len(texts))), column: texts}), path)
    else:
        raise ValueError(suffix)
    return path


def located(error: pytest.ExceptionInfo, path: Path, line: int | None) -> str:
    message = str(error.value)
    where = f"{path}:{line}" if line is not None else str(path)
    assert message.startswith(where + ":") or message.startswith(where + ","), message
    assert "\n" not in message
    return message


# --------------------------------------------------------------- reading
@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_every_format_reads_the_texts_in_order(tmp_path, suffix):
    assert read_texts(write_texts(tmp_path / f"in{suffix}", TEXTS)) == TEXTS


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_text_column_is_chosen_by_name(tmp_path, suffix):
    path = write_texts(tmp_path / f"in{suffix}", TEXTS, column="review")
    assert read_texts(path, text_column="review") == TEXTS
    with pytest.raises(InputError, match="field 'text': missing column"):
        read_texts(path)


def test_txt_handles_crlf_and_a_last_line_without_newline(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"first\r\nsecond\r\nthird")
    assert read_texts(path) == ["first", "second", "third"]


def test_csv_quoted_fields_may_hold_newlines(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text,label\n"two\nlines, one text",1\nplain,0\n', encoding="utf-8")
    assert read_texts(path) == ["two\nlines, one text", "plain"]


def test_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n\n   \n{"text": "b"}\n', encoding="utf-8")
    assert read_texts(path) == ["a", "b"]
    assert [line for line, _ in iter_records(path, ("text",))] == [1, 4]


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path, suffix):
    path = write_texts(tmp_path / f"in{suffix}", TEXTS)
    if suffix == ".csv":  # the text column first, where the mark would stick to its name
        path.write_text("text\n" + "".join(f'"{t.replace(chr(34), 2 * chr(34))}"\n' for t in TEXTS), encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_texts(path) == TEXTS


def test_chunks_stream_the_file(tmp_path):
    path = write_texts(tmp_path / "in.jsonl", TEXTS)
    chunks = list(iter_text_chunks(path, chunk_size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [t for c in chunks for t in c] == TEXTS


def test_records_keep_every_field(tmp_path):
    path = write_texts(tmp_path / "in.csv", TEXTS)
    records = list(iter_records(path, ("text", "id")))
    assert records[0] == (2, {"id": "0", "text": TEXTS[0]})  # line 1 is the header
    assert len(records) == len(TEXTS)


# --------------------------------------------------------------- errors name the file and line
def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert "file not found" in located(error, path, None)


def test_a_directory_is_not_a_file(tmp_path):
    path = tmp_path / "dir.csv"
    path.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        read_texts(path)


@pytest.mark.parametrize("name", ["in.xlsx", "in.json", "noext"])
def test_unsupported_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("text\n")
    with pytest.raises(InputError) as error:
        read_texts(path)
    message = located(error, path, None)
    assert "unsupported file type" in message and ".txt, .csv, .jsonl, .parquet" in message


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl", ".parquet"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert "file is empty" in located(error, path, None)


@pytest.mark.parametrize(
    ("name", "content"),
    [("header.csv", "id,text\n"), ("blank.jsonl", "\n\n")],
)
def test_a_file_without_texts(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match="no texts in file"):
        read_texts(path)


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_invalid_utf8_names_its_line(tmp_path, suffix):
    path = write_texts(tmp_path / f"in{suffix}", ["fine", "also fine", "bad", "after"])
    path.write_bytes(path.read_bytes().replace(b"bad", b"b\xff\xfed"))
    bad_line = 4 if suffix == ".csv" else 3  # the CSV header is line 1
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert "not valid UTF-8" in located(error, path, bad_line)


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("in.jsonl", '{"text": "ok"}\n{"text": "unclosed\n{"text": "ok"}\n', 2, "not valid JSON: Unterminated string starting at column 10"),
        ("in.jsonl", '{"text": "ok"}\n["a", "list"]\n', 2, "expected a JSON object, got list"),
        ("in.jsonl", '{"text": "ok"}\n\n{"body": "where is text?"}\n', 3, "field 'text': missing column; the file has 'body'"),
        ("in.csv", "id,body\n1,hello\n", 1, "field 'text': missing column; the file has 'id', 'body'"),
        ("in.csv", "id,text\n1,fine\n2,too,many\n", 3, "3 fields where the header has 2"),
    ],
)
def test_bad_content_names_its_line(tmp_path, name, content, line, reason):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert reason in located(error, path, line)


def test_missing_parquet_column(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": ["x"]}), path)
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert "field 'text': missing column" in located(error, path, None)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_text_that_is_not_a_string(tmp_path, suffix):
    path = tmp_path / f"in{suffix}"
    if suffix == ".jsonl":
        path.write_text('{"text": "ok"}\n{"text": 12}\n', encoding="utf-8")
    else:
        pq.write_table(pa.table({"text": ["ok", None]}), path)
    with pytest.raises(InputError) as error:
        read_texts(path)
    assert "field 'text': expected a string" in located(error, path, 2)


def test_a_corrupt_parquet_file(tmp_path):
    path = tmp_path / "in.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(InputError, match="not a readable parquet file"):
        read_texts(path)


def test_a_txt_file_has_no_columns(tmp_path):
    path = write_texts(tmp_path / "in.txt", TEXTS)
    with pytest.raises(InputError, match="a .txt file has no columns"):
        list(iter_records(path))


def test_input_error_is_a_value_error_with_its_parts():
    error = InputError("bad thing", file="data.csv", line=7, field="text")
    assert isinstance(error, ValueError)
    assert str(error) == "data.csv:7, field 'text': bad thing"
    assert (error.file, error.line, error.field, error.reason) == ("data.csv", 7, "text", "bad thing")
    assert str(InputError("no place")) == "no place"
    assert str(InputError("oops", line=3)) == "line 3: oops"


def test_a_csv_record_spanning_lines_is_named_by_its_first_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text,label\n"two\nlines",a\nok,\n', encoding="utf-8")
    assert [line for line, _ in iter_records(path, ("text",))] == [2, 4]


def test_a_csv_field_over_the_csv_modules_limit_names_its_line(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("text,label\nfine,a\n\"two\nlines\",b\n" + "x" * 140_000 + ",c\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(iter_records(path, ("text", "label")))
    assert caught.value.line == 5 and "131,072" in str(caught.value) and ".jsonl" in str(caught.value)
