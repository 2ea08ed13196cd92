"""Prediction tables: an input without records and records that grow new fields are refused, never written half."""

import pytest

from polyhead.errors import InputError
from polyhead.prediction_table import TableWriter, input_records


def test_an_input_with_a_header_and_no_records_is_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("text,id\n")
    with pytest.raises(InputError, match="no texts in file"):
        list(input_records(tmp_path / "empty.csv", ("text",)))


def test_records_come_in_chunks_with_every_column(tmp_path):
    (tmp_path / "in.csv").write_text("text,id\nhello,1\nworld,2\nagain,3\n")
    chunks = list(input_records(tmp_path / "in.csv", ("text",), chunk_size=2))
    assert [len(c) for c in chunks] == [2, 1] and chunks[1] == [{"text": "again", "id": "3"}]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_new_field_after_the_first_rows_is_refused_not_dropped(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with open(path, "wb") as handle:
        writer = TableWriter(handle, suffix, path)
        writer.write([{"a": 1}])
        with pytest.raises(InputError, match=r"new column\(s\) \['b'\]"):
            writer.write([{"a": 2, "b": 3}])
        writer.close()  # the rows before it stay a complete file
